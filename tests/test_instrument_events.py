"""Custom events: VizCounter, VizObject, triggerlog, the _EventBase options, and the
tracer's own event helpers used with them. The reference examples run verbatim."""

import gc
import json
import textwrap

import pytest

from support import events, load_trace, run_script, saved
from viztracer import VizCounter, VizObject, VizTracer
from viztracer.event_base import _EventBase, triggerlog
from viztracer.vizcounter import VizCounter as VizCounterFromModule
from viztracer.vizobject import VizObject as VizObjectFromModule


def counters(trace, name=None):
    return [e["args"] for e in events(trace, "C") if name is None or e["name"] == name]


def objects(trace, ph="O"):
    return events(trace, ph)


# ---------------------------------------------------------------------- the reference examples, verbatim

# Each block is copied from the custom-events reference (its "viztraer" typo fixed,
# and "#function" given a body). They run in order in one script; CHECK prints what
# the test asserts on.
SEED_COUNTER = """\
from viztracer import VizTracer, VizCounter
tracer = VizTracer()
tracer.start()
counter = VizCounter(tracer, "counter name")
"""
SEED_COUNTER_WRITES = """\
counter.a = 2
counter.b = 1.2
"""
SEED_COUNTER_MANUAL = """\
counter = VizCounter(tracer, "counter name", trigger_on_change=False)
# OR
counter = VizCounter(tracer, "counter name")
counter.config("trigger_on_change", False)
counter.a = 1
counter.b = 1
# Until here, nothing happens
counter.log() # trigger the log
"""
SEED_SUBCLASS = """\
class MyClass(VizObject):
    def __init__(self, tracer):
        super().__init__(tracer, "my name", trigger_on_change=False)
"""
SEED_SUBCLASS_LOG = """\
obj = MyClass(tracer)
obj.log()
"""
SEED_TRIGGERLOG = """\
class MyClass(VizObject):
    @VizObject.triggerlog
    def log_on_this_function():
        #function
        pass
"""


def test_reference_examples_verbatim(tmp_path):
    script = "\n".join([
        SEED_COUNTER,
        "print('CHECK-1', len(tracer.data))",  # nothing parsed yet
        SEED_COUNTER_WRITES,
        SEED_COUNTER_MANUAL,
        "from viztracer import VizObject",
        SEED_SUBCLASS,
        SEED_SUBCLASS_LOG,
        "obj.x = 'not logged: trigger_on_change is off'",
        SEED_TRIGGERLOG,
        "obj2 = MyClass(tracer)",
        "obj2.y = [1, 2]",
        "obj2.log_on_this_function()",
        "tracer.stop()",
        "tracer.save()",
    ])
    result = run_script(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert "CHECK-1 0" in result.stdout
    trace = load_trace(tmp_path / "result.json")
    assert counters(trace, "counter name") == [
        {"a": 2},                # counter.a = 2
        {"a": 2, "b": 1.2},      # counter.b = 1.2
        {"a": 1, "b": 1},        # counter.log(): nothing before it
    ]
    created = objects(trace, "N")
    assert [e["name"] for e in created] == ["my name", "MyClass"]
    snapshots = objects(trace)
    assert [(e["name"], e["args"]["snapshot"]) for e in snapshots] == [
        ("my name", {}),                 # obj.log() right after creation
        ("MyClass", {"y": [1, 2]}),      # obj2.y = [1, 2] (trigger_on_change)
        ("MyClass", {"y": [1, 2]}),      # after log_on_this_function()
    ]
    assert snapshots[0]["id"] == created[0]["id"] != created[1]["id"]


# ---------------------------------------------------------------------- VizCounter

def test_counter_records_numbers_on_change(tracer):
    tracer.start()
    c = VizCounter(tracer, "cpu")
    c.user = 10
    c.system = 2.5
    c._private = "never recorded, never triggers"
    c.user = 11
    trace = saved(tracer)
    assert counters(trace, "cpu") == [{"user": 10}, {"user": 10, "system": 2.5},
                                      {"user": 11, "system": 2.5}]


def test_counter_default_name_is_the_class_name(tracer):
    tracer.start()
    class Memory(VizCounter):
        pass

    m = Memory(tracer)
    m.rss = 1
    trace = saved(tracer)
    assert [e["name"] for e in events(trace, "C")] == ["Memory"]


def test_counter_rejects_non_numbers(tracer):
    tracer.start()
    c = VizCounter(tracer, "c")
    with pytest.raises(TypeError, match="Counter can only take numeric values"):
        c.label = "text"
    c2 = VizCounter(tracer, "c2")
    with pytest.raises(TypeError, match="numeric"):
        c2.flag = True  # bool is not a counter value


def test_counter_accepts_number_subclasses(tracer):
    tracer.start()
    class MyInt(int):
        pass

    c = VizCounter(tracer, "c")
    c.v = MyInt(3)
    trace = saved(tracer)
    assert counters(trace, "c") == [{"v": 3}]


def test_counter_include_and_exclude(tracer):
    tracer.start()
    inc = VizCounter(tracer, "inc", include_attributes=["a"])
    inc.b = 5   # not watched: no record
    inc.a = 1   # record, with only "a"
    exc = VizCounter(tracer, "exc", exclude_attributes=["b"])
    exc.b = 5   # excluded: no record
    exc.a = 1   # record without "b"
    trace = saved(tracer)
    assert counters(trace, "inc") == [{"a": 1}]
    assert counters(trace, "exc") == [{"a": 1}]


def test_counter_config(tracer):
    tracer.start()
    c = VizCounter(tracer, "c", trigger_on_change=False)
    c.a = 1
    c.config("trigger_on_change", True)
    c.b = 2
    c.config("include_attributes", ["b"])
    c.a = 3     # not included: no record
    c.b = 4
    c.config("include_attributes", [])
    c.config("exclude_attribtues", ["b"])  # the reference's spelling works too
    c.a = 5
    c.config("exclude_attributes", [])
    c.log()
    trace = saved(tracer)
    assert counters(trace, "c") == [{"a": 1, "b": 2}, {"b": 4}, {"a": 5}, {"a": 5, "b": 4}]


def test_config_errors(tracer):
    tracer.start()
    c = VizCounter(tracer, "c")
    with pytest.raises(ValueError, match="No config named wrong"):
        c.config("wrong", 1)
    with pytest.raises(TypeError, match="trigger_on_change must be a bool"):
        c.config("trigger_on_change", 1)
    with pytest.raises(TypeError, match="include_attributes must be a list"):
        c.config("include_attributes", "a")
    with pytest.raises(TypeError, match="exclude_attributes must contain only str"):
        c.config("exclude_attributes", [1])
    with pytest.raises(TypeError, match="trigger_on_change must be a bool"):
        VizCounter(tracer, "c", trigger_on_change="yes")
    with pytest.raises(TypeError, match="name must be a str"):
        VizCounter(tracer, 3)


def test_event_base_is_abstract(tracer):
    tracer.start()
    base = _EventBase(tracer, "base", trigger_on_change=False)
    with pytest.raises(NotImplementedError):
        base.log()
    with pytest.raises(NotImplementedError):
        base._viztracer_log()


def test_private_attributes_and_the_init_never_trigger(tracer):
    tracer.start()
    class Sub(VizCounter):
        def __init__(self, tracer):
            self.early = 1  # before the base init: stored, not recorded
            super().__init__(tracer, "sub")
            self._hidden = "x"

    s = Sub(tracer)
    assert s.early == 1
    trace = saved(tracer)
    assert counters(trace, "sub") == []


def test_same_classes_from_the_modules():
    assert VizCounter is VizCounterFromModule
    assert VizObject is VizObjectFromModule


# ---------------------------------------------------------------------- VizObject

def test_object_lifecycle_and_snapshots(tracer):
    tracer.start()
    o = VizObject(tracer, "obj")
    o.s = "text"
    o.n = 3
    o.nested = {"k": [1, {"x": None}], 2: (1, 2)}
    o.other = object()      # not JSON-able: left out of the snapshot
    obj_id = o._viztracer_id
    del o
    gc.collect()
    trace = saved(tracer)
    assert [e["ph"] for e in trace["traceEvents"] if e.get("name") == "obj"] == ["N", "O", "O", "O", "O", "D"]
    snaps = [e["args"]["snapshot"] for e in objects(trace)]
    assert snaps[0] == {"s": "text"}
    assert snaps[2] == {"s": "text", "n": 3, "nested": {"k": [1, {"x": None}], "2": [1, 2]}}
    assert snaps[3] == snaps[2]
    assert all(e["id"] == obj_id for e in trace["traceEvents"] if e.get("name") == "obj")


def test_object_snapshot_is_taken_when_logged(tracer):
    tracer.start()
    o = VizObject(tracer, "obj")
    o.items = [1]
    o.items.append(2)   # a change inside the list triggers nothing...
    o.log()             # ...until logged
    o.items.append(3)   # later changes do not alter earlier snapshots
    trace = saved(tracer)
    assert [e["args"]["snapshot"]["items"] for e in objects(trace)] == [[1], [1, 2]]


def test_object_count_matches_upstream(tracer):
    """VizObject plus two attribute sets gives N, O, O."""
    tracer.start()
    a = VizObject(tracer, "a")
    a.x = 1
    a.y = 2
    trace = saved(tracer)
    assert [e["ph"] for e in trace["traceEvents"] if e.get("name") == "a"] == ["N", "O", "O"]
    del a


class Hello(VizObject):
    def __init__(self, tracer):
        super().__init__(tracer, "name", trigger_on_change=False)
        self.a = 1
        self.b = "lol"

    @VizObject.triggerlog
    def change_val(self):
        self.a += 1

    @VizObject.triggerlog(when="both")
    def change_val2(self):
        self.a += 2


def test_triggerlog_after_and_both(tracer):
    tracer.start()
    a = Hello(tracer)
    a.change_val()
    a.change_val2()
    b = Hello(tracer)
    b.change_val()
    b.change_val2()
    tracer.stop()
    trace = saved(tracer)
    non_meta = [e for e in trace["traceEvents"] if e["ph"] != "M"]
    # Per instance: N, the user __init__, O after change_val, O before and after
    # change_val2 (the decorated methods themselves are not recorded, as upstream).
    assert len(non_meta) == 10
    assert [e["name"].split(" (")[0].split(".")[-1] for e in events(trace)] == ["__init__"] * 2
    assert [e["args"]["snapshot"]["a"] for e in objects(trace)] == [2, 2, 4, 2, 2, 4]


def test_triggerlog_before(tracer):
    tracer.start()
    class C(VizCounter):
        @triggerlog(when="before")
        def bump(self):
            self.v += 1

    c = C(tracer, "c", trigger_on_change=False)
    c.v = 1
    c.bump()
    c.bump()
    trace = saved(tracer)
    assert counters(trace, "c") == [{"v": 1}, {"v": 2}]
    assert c.v == 3


def test_triggerlog_keeps_the_method(tracer):
    tracer.start()
    class C(VizCounter):
        @VizCounter.triggerlog
        def add(self, x, *, y=0):
            """Add things."""
            self.total = getattr(self, "total", 0) + x + y
            return self.total

    c = C(tracer, "c", trigger_on_change=False)
    assert c.add(1, y=2) == 3
    assert C.add.__doc__ == "Add things." and C.add.__name__ == "add"


def test_triggerlog_errors():
    with pytest.raises(ValueError, match='when must be one of "after", "before" or "both"'):
        VizObject.triggerlog(when="sometimes")
    with pytest.raises(ValueError):
        @VizObject.triggerlog(when="never")
        def f(self):
            pass


def test_triggerlog_skips_the_log_when_the_method_raises(tracer):
    tracer.start()
    class C(VizCounter):
        @VizCounter.triggerlog
        def fail(self):
            self.v = 2
            raise KeyError("x")

    c = C(tracer, "c", trigger_on_change=False)
    c.v = 1
    with pytest.raises(KeyError):
        c.fail()
    trace = saved(tracer)
    assert counters(trace, "c") == []


# ---------------------------------------------------------------------- tracer=None, tracer not recording

def test_none_tracer_makes_everything_a_no_op():
    c = VizCounter(None, "c")
    c.a = "not even a number"   # nothing is checked either
    c.log()
    c.config("trigger_on_change", False)
    o = VizObject(None, "o")
    o.x = 1
    o.log()

    class C(VizObject):
        @VizObject.triggerlog(when="both")
        def work(self):
            return 42

    assert C(None).work() == 42
    del o
    gc.collect()


def test_events_need_a_recording_tracer(tmp_path):
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0)
    c = VizCounter(t, "c")
    c.a = 1          # not started: not recorded
    t.start()
    c.a = 2
    t.stop()
    c.a = 3          # stopped: not recorded
    t.save()
    assert counters(load_trace(tmp_path / "r.json"), "c") == [{"a": 2}]


# ---------------------------------------------------------------------- the tracer's own helpers alongside

def test_log_event_and_add_helpers_together(tracer):
    tracer.start()
    def work():
        tracer.add_func_args("phase", "warm-up")
        counter.n = 1

    counter = VizCounter(tracer, "n")
    with tracer.log_event("block"):
        tracer.add_instant("start", {"k": 1}, scope="p")
        work()
        tracer.add_counter("direct", {"v": 2})
        tracer.add_variable("x", 5)
        tracer.add_variable("y", 6, event="counter")
        tracer.add_raw({"ph": "i", "name": "raw", "ts": tracer.getts(), "s": "t"})
        obj = VizObject(tracer, "o")
        obj.s = "v"
    trace = saved(tracer)
    by_name = {e["name"].split(" (")[0].split(".")[-1]: e for e in trace["traceEvents"] if e["ph"] != "M"}
    block = by_name["block"]
    assert block["ph"] == "X" and block["cat"] == "FEE"
    assert by_name["start"]["args"] == {"k": 1} and by_name["start"]["s"] == "p"
    assert by_name["work"]["args"] == {"phase": "warm-up"}
    assert by_name["n"]["args"] == {"n": 1}
    assert by_name["direct"]["args"] == {"v": 2}
    assert "x = 5" in by_name
    assert by_name["y"]["args"] == {"y": 6}
    assert by_name["raw"]["ph"] == "i"
    assert by_name["o"]["args"] == {"snapshot": {"s": "v"}}
    inside = [e for e in trace["traceEvents"] if e["ph"] in "iCO" and e["name"] != "raw"]
    assert all(block["ts"] <= e["ts"] <= block["ts"] + block["dur"] for e in inside)


def test_counter_and_object_survive_json_round_trip(tmp_path):
    source = textwrap.dedent("""
        from viztracer import VizTracer, VizCounter, VizObject
        with VizTracer(output_file="out.json", verbose=0) as t:
            c = VizCounter(t, "c")
            c.x = 1
            o = VizObject(t, "o")
            o.d = {"a": "\\u00e9", "b": [1.5]}
    """)
    result = run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.json", encoding="utf-8") as f:
        trace = json.load(f)
    assert [e["args"] for e in trace["traceEvents"] if e["ph"] == "O"] == [
        {"snapshot": {"d": {"a": "\u00e9", "b": [1.5]}}}]


def test_custom_events_inside_a_notebook_cell(tmp_path):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from viztracer import cellmagic

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "viztracer")
    out = tmp_path / "cell.json"
    cell = textwrap.dedent("""
        from viztracer import get_tracer, VizCounter, log_sparse

        @log_sparse(dynamic_tracer_check=True)
        def helper():
            return 1

        counter = VizCounter(get_tracer(), "cell counter")
        counter.v = 1
        with get_tracer().log_event("cell block"):
            helper()
    """)
    try:
        with capture_output():
            shell.run_cell_magic("viztracer", f"--output_file {out} -p 0", cell)
    finally:
        cellmagic._stop_servers()
    trace = load_trace(out)
    assert counters(trace, "cell counter") == [{"v": 1}]
    short = [e["name"].split(" (")[0] for e in events(trace)]
    assert "cell block" in short and "helper" in short
