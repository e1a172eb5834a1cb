"""Plugins: the VizPluginBase protocol, loading from strings, and the errors."""

import sys
import textwrap

import pytest

from support import events, load_trace
from viztracer import VizTracer
from viztracer.version import __version__
from viztracer.vizplugin import VizPluginBase, VizPluginError, load_plugin


class Recorder(VizPluginBase):
    def __init__(self, version="0.15.0"):
        super().__init__()
        self.version = version
        self.messages = []

    def support_version(self):
        return self.version

    def message(self, m_type, payload):
        self.messages.append((m_type, dict(payload)))
        return super().message(m_type, payload)


def whens(plugin):
    return [p.get("when", p.get("cmd_type")) for _, p in plugin.messages]


def test_messages_of_start_stop_save(tmp_path):
    p = Recorder()
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, plugins=[p])
    assert whens(p) == ["initialize"]
    t.start()
    t.stop()
    t.save()
    assert p.messages == [("event", {"when": "initialize"}), ("event", {"when": "pre-start"}),
                          ("event", {"when": "post-stop"}), ("event", {"when": "pre-save"})]
    t.terminate()
    assert p.messages[-1] == ("command", {"cmd_type": "terminate"})


def test_context_manager_terminates(tmp_path):
    p = Recorder()
    with VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, plugins=[p]):
        pass
    assert whens(p) == ["initialize", "pre-start", "post-stop", "pre-save", "terminate"]


def test_log_sparse_mode_sends_pre_start_only(tmp_path):
    p = Recorder()
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, plugins=[p], log_sparse=True)
    t.start()
    t.stop()    # nothing was recording: no post-stop
    t.save()
    assert whens(p) == ["initialize", "pre-start", "pre-save"]


class DataPlugin(VizPluginBase):
    def support_version(self):
        return __version__

    def message(self, m_type, payload):
        if m_type == "event" and payload["when"] == "pre-save":
            return {"action": "handle_data", "handler": self.handle}
        return super().message(m_type, payload)

    def handle(self, data):
        pid = data["traceEvents"][0]["pid"]
        data["traceEvents"].append({"ph": "C", "name": "plugin counter", "pid": pid, "tid": pid,
                                    "ts": 1.0, "args": {"v": 7}})


@pytest.mark.parametrize("dump_raw", [False, True])
def test_handle_data_changes_the_saved_trace(tmp_path, dump_raw):
    def f():
        return 1

    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, plugins=[DataPlugin()], dump_raw=dump_raw)
    t.start()
    f()
    t.stop()
    t.save()
    trace = load_trace(tmp_path / "r.json")
    assert [e["args"] for e in events(trace, "C") if e["name"] == "plugin counter"] == [{"v": 7}]
    assert any(e["name"].split(" (")[0].endswith("f") for e in events(trace))
    assert "file_info" in trace


def test_two_plugins_in_order(tmp_path):
    a, b = Recorder(), Recorder()
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, plugins=[a, b])
    t.start()
    t.stop()
    assert whens(a) == whens(b) == ["initialize", "pre-start", "post-stop"]


# ---------------------------------------------------------------------- plugins as strings

PLUGIN_MODULE = '''
from viztracer.vizplugin import VizPluginBase

class StrPlugin(VizPluginBase):
    def __init__(self, arg):
        super().__init__()
        self.arg = arg
        self.messages = []

    def support_version(self):
        return "0.10.0"

    def message(self, m_type, payload):
        self.messages.append(payload)
        return super().message(m_type, payload)

def get_vizplugin(arg):
    return StrPlugin(arg)
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    root = tmp_path / "plugins"
    (root / "vizpkg").mkdir(parents=True)
    (root / "vizpkg" / "__init__.py").write_text("")
    (root / "vizpkg" / "cpu.py").write_text(PLUGIN_MODULE)
    (root / "flatplugin.py").write_text(PLUGIN_MODULE)
    (root / "noentry.py").write_text("x = 1\n")
    (root / "notcallable.py").write_text("get_vizplugin = 3\n")
    (root / "brokendep.py").write_text("import a_module_that_is_not_installed_anywhere\n")
    (root / "raising.py").write_text("def get_vizplugin(arg):\n    raise RuntimeError('bad args: ' + arg)\n")
    (root / "notaplugin.py").write_text("def get_vizplugin(arg):\n    return 42\n")
    (root / "badversion.py").write_text(textwrap.dedent("""
        from viztracer.vizplugin import VizPluginBase
        class P(VizPluginBase):
            def support_version(self):
                return None
        def get_vizplugin(arg):
            return P()
    """))
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in list(sys.modules):
        if name.split(".")[0] in ("vizpkg", "flatplugin", "noentry", "notcallable", "brokendep", "raising",
                                  "notaplugin", "badversion"):
            del sys.modules[name]


def test_plugin_strings(tmp_path, plugin_dir):
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0,
                  plugins=["vizpkg.cpu --interval 0.1", "flatplugin", Recorder()])
    loaded = t._plugin_manager.plugins
    assert [type(p).__name__ for p in loaded] == ["StrPlugin", "StrPlugin", "Recorder"]
    assert loaded[0].arg == "vizpkg.cpu --interval 0.1"  # the whole, unparsed string
    assert loaded[1].arg == "flatplugin"
    t.start()
    t.stop()
    assert [m["when"] for m in loaded[0].messages] == ["initialize", "pre-start", "post-stop"]


@pytest.mark.parametrize("spec, error", [
    ("no_such_plugin_module", "There's no module named no_such_plugin_module"),
    ("vizpkg.nothing_here", "There's no module named vizpkg.nothing_here"),
    ("noentry", "has no get_vizplugin function"),
    ("notcallable", "get_vizplugin is not callable"),
    ("brokendep", "could not be imported: No module named 'a_module_that_is_not_installed_anywhere'"),
    ("raising a b", "get_vizplugin\\('raising a b'\\) failed: RuntimeError: bad args: raising a b"),
    ("notaplugin", "returned 42, which is not a plugin"),
    ("badversion", "reports support version None"),
    ("   ", "Empty plugin string"),
])
def test_plugin_load_errors(plugin_dir, spec, error):
    with pytest.raises(VizPluginError, match=error):
        VizTracer(verbose=0, plugins=[spec])
    if spec != "badversion":  # the version is checked by the tracer, not by load_plugin
        with pytest.raises(VizPluginError, match=error):
            load_plugin(spec)


def test_plugin_type_errors():
    with pytest.raises(TypeError, match="plugins"):
        VizTracer(plugins=[3])
    with pytest.raises(TypeError, match="plugins"):
        VizTracer(plugins="vizpkg.cpu")


def test_support_version_must_be_implemented():
    class NoVersion(VizPluginBase):
        pass

    with pytest.raises(NotImplementedError, match="NoVersion must implement support_version"):
        VizTracer(verbose=0, plugins=[NoVersion()])
    with pytest.raises(VizPluginError):
        VizTracer(verbose=0, plugins=[NoVersion()])


def test_plugin_errors_are_value_errors():
    # so that argument checking (the command line's included) reports them as bad values
    assert issubclass(VizPluginError, ValueError)


def test_newer_support_version_warns(capsys):
    VizTracer(verbose=0, plugins=[Recorder(version="999.0.0")])
    err = capsys.readouterr().err
    assert "support version is higher" in err and "999.0.0" in err
    VizTracer(verbose=0, plugins=[Recorder(version=__version__)])
    assert capsys.readouterr().err == ""
    # a plugin written for upstream's release of the same number is not "newer"
    VizTracer(verbose=0, plugins=[Recorder(version=__version__.split("+")[0])])
    assert capsys.readouterr().err == ""


def test_terminate_needs_success():
    class Stubborn(Recorder):
        def message(self, m_type, payload):
            if m_type == "command":
                return {"success": False}
            return {}

    t = VizTracer(verbose=0, plugins=[Stubborn()])
    with pytest.raises(VizPluginError, match="failed to terminate"):
        t.terminate()


def test_bad_replies_are_errors(tmp_path):
    class Odd(Recorder):
        def __init__(self, reply):
            super().__init__()
            self.reply = reply

        def message(self, m_type, payload):
            return self.reply if payload.get("when") == "pre-start" else {}

    for reply, error in [({"action": "explode"}, "unknown action 'explode'"),
                         ({"action": "handle_data", "handler": None}, "without a callable handler"),
                         (["not", "a", "dict"], "a dict is expected")]:
        t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, plugins=[Odd(reply)])
        with pytest.raises(VizPluginError, match=error):
            t.start()
        t.stop()


def test_a_failed_construction_leaves_no_global_tracer(plugin_dir):
    import builtins

    previous = VizTracer(verbose=0)
    with pytest.raises(VizPluginError):
        VizTracer(verbose=0, plugins=["no_such_plugin_module"])
    assert builtins.__dict__.get("__viz_tracer__") is previous
    builtins.__dict__.pop("__viz_tracer__", None)
    with pytest.raises(VizPluginError):
        VizTracer(verbose=0, plugins=["no_such_plugin_module"])
    assert "__viz_tracer__" not in builtins.__dict__
