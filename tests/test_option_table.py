"""The option table (viztracer/options.py) and everything made from it: VizTracer's
constructor and attributes, init_kwargs, the stub of the native tracer, the command
line and rcfile, the child hand-over, and the docs. The blocks tools/options_gen.py
writes out are checked by running it with --check; the tests at the end add an option
to a copy of the project and show that the table and the generator are all it takes."""

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest

import viztracer
from support import missing, write_sample_plugin
from viztracer import VizTracer, _snaptrace
from viztracer.cli.arguments import parse_command_line, tracer_kwargs
from viztracer.options import DEFAULT, OPTION, OPTIONS, OptionAttribute, child_kwargs, member_kwargs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def available(spec):
    if spec.requires is not None and missing(spec.requires):
        pytest.skip(f"{spec.name} needs {spec.requires}, which is not installed")


@pytest.fixture
def sample_plugin(tmp_path, monkeypatch):
    write_sample_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_names_are_unique_and_samples_differ_from_defaults():
    assert len(OPTION) == len(OPTIONS)
    for spec in OPTIONS:
        assert spec.sample != spec.default, spec.name
        assert spec.store in ("attr", "property", "readonly", "init"), spec.name
        assert spec.help and spec.doc, spec.name


# --------------------------------------------------------------------------- VizTracer

def test_class_attributes_come_from_the_table():
    for spec in OPTIONS:
        attr = VizTracer.__dict__.get(spec.name)
        if spec.store == "attr":
            assert isinstance(attr, OptionAttribute) and attr.spec is spec, spec.name
        elif spec.store == "property":
            assert isinstance(attr, property) and attr.fset is not None, spec.name
        elif spec.store == "readonly":
            assert isinstance(attr, property) and attr.fset is None, spec.name
        else:
            assert not isinstance(attr, (OptionAttribute, property)), spec.name


@pytest.mark.parametrize("spec", OPTIONS, ids=lambda spec: spec.name)
def test_sample_round_trips(spec, sample_plugin):
    """Every option takes its sample in the constructor and gives it back."""
    available(spec)
    tracer = VizTracer(**{"verbose": 0, spec.name: spec.sample})
    if spec.store != "init":
        assert spec.to_kwarg(getattr(tracer, spec.name)) == spec.sample
    if spec.native is not None and spec.store != "property":
        assert getattr(tracer._tracer, spec.native) == spec.to_native(spec.sample)


@pytest.mark.parametrize("spec", [s for s in OPTIONS if s.store in ("attr", "property")],
                         ids=lambda spec: spec.name)
def test_assignment_validates(spec, sample_plugin):
    available(spec)
    tracer = VizTracer(verbose=0)
    setattr(tracer, spec.name, spec.sample)
    assert spec.to_kwarg(getattr(tracer, spec.name)) == spec.sample
    with pytest.raises((TypeError, ValueError), match=spec.name):
        setattr(tracer, spec.name, object() if spec.type != "Optional[Sequence[Any]]" else [object()])


def sample_kwargs(exclude=()):
    """Every option at its sample that can be set together with the others (not
    exclude_files, which excludes include_files; not log_func_repr, which excludes
    log_func_with_objprint; not what needs a package that is missing)."""
    return {spec.name: spec.sample for spec in OPTIONS
            if spec.store != "init" and spec.name not in ("exclude_files", "log_func_repr", *exclude)
            and not (spec.requires and missing(spec.requires))}


def test_init_kwargs_reproduce_the_tracer(sample_plugin):
    defaults = {spec.name: spec.default for spec in OPTIONS if spec.data and spec.store != "init"}
    assert VizTracer().init_kwargs == defaults
    kwargs = sample_kwargs()
    expected = dict(defaults, **{k: v for k, v in kwargs.items() if OPTION[k].data})
    tracer = VizTracer(**kwargs)
    assert tracer.init_kwargs == expected
    assert VizTracer(**tracer.init_kwargs).init_kwargs == expected


# --------------------------------------------------------------------------- native tracer

def test_native_options_are_in_the_extension():
    """The Rust side of a native option is written by hand (rust/api/tracer.rs)."""
    native = _snaptrace.Tracer()
    lacking = [f"{spec.native} (option {spec.name})" for spec in OPTIONS
               if spec.native is not None and not hasattr(native, spec.native)]
    assert not lacking, f"_snaptrace.Tracer has no attribute {', '.join(lacking)}: see rust/api/tracer.rs"


def test_stub_declares_each_native_option_once():
    """The generated block of _snaptrace.pyi declares the native options; a hand-written
    line outside it would declare one again."""
    path = os.path.join(os.path.dirname(viztracer.__file__), "_snaptrace.pyi")
    with open(path) as f:
        tree = ast.parse(f.read())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tracer"]
    declared = [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    declared += [n.name for n in cls.body if isinstance(n, ast.FunctionDef)
                 and any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)]
    for spec in OPTIONS:
        if spec.native is not None:
            assert declared.count(spec.native) == 1, spec.name


# --------------------------------------------------------------------------- command line, rcfile

def cli_words(spec):
    """How the sample is written on the command line (and in an rcfile, joined)."""
    kind = spec.cli.kind
    if kind in ("flag", "compat"):
        return []
    if kind == "time":
        return [f"{spec.sample}us"]
    if kind == "list":
        return list(spec.sample)
    return [str(spec.sample)]


def cli_expected(spec):
    kind = spec.cli.kind
    if kind == "flag":
        return True
    if kind == "compat":
        return spec.default
    return spec.sample


CLI_OPTIONS = [spec for spec in OPTIONS if spec.cli is not None]


@pytest.mark.parametrize("spec", CLI_OPTIONS, ids=lambda spec: spec.name)
def test_command_line_flag(spec):
    ns, command, _ = parse_command_line([spec.flag, *cli_words(spec), "--", "prog.py"])
    assert command == ["prog.py"]
    if spec.name == "output_file":
        assert ns.output_file == spec.sample
        return
    assert tracer_kwargs(ns, "out.json")[spec.name] == cli_expected(spec)
    if spec.cli.short:
        ns, _, _ = parse_command_line([spec.cli.short, *cli_words(spec), "--", "prog.py"])
        assert getattr(ns, spec.name) == spec.sample


@pytest.mark.parametrize("spec", CLI_OPTIONS, ids=lambda spec: spec.name)
def test_rcfile_key(spec, tmp_path):
    value = "True" if not spec.cli.takes_value else " ".join(cli_words(spec))
    rc = tmp_path / "rc"
    rc.write_text(f"[default]\n{spec.name} = {value}\n")
    ns, _, _ = parse_command_line(["--rcfile", str(rc), "--", "prog.py"])
    if spec.name == "output_file":
        assert ns.output_file == spec.sample
        return
    assert tracer_kwargs(ns, "out.json")[spec.name] == cli_expected(spec)


def test_command_line_without_options_gives_the_defaults():
    ns, _, _ = parse_command_line(["--", "prog.py"])
    kwargs = tracer_kwargs(ns, "out.json")
    changed = {k: v for k, v in kwargs.items() if v != OPTION[k].default}
    # The command line traces child processes unless --ignore_multiprocess is given.
    assert changed == {"output_file": "out.json", "ignore_multiprocess": False}
    ns, _, _ = parse_command_line(["--quiet", "--", "prog.py"])
    assert tracer_kwargs(ns, "out.json")["verbose"] == 0


# --------------------------------------------------------------------------- child hand-over

def test_child_kwargs_are_the_inherited_options_as_json(sample_plugin):
    kwargs = sample_kwargs()
    tracer = VizTracer(**kwargs)
    sent = json.loads(json.dumps(child_kwargs(tracer)))
    assert set(sent) == {spec.name for spec in OPTIONS if spec.inherited}
    member = VizTracer(**member_kwargs(sent))
    for spec in OPTIONS:
        if spec.inherited:
            value = spec.to_child(kwargs.get(spec.name, spec.default))
            assert sent[spec.name] == value, spec.name
            assert spec.to_kwarg(getattr(member, spec.name)) == value, spec.name
        elif spec.child is not DEFAULT and spec.store != "init":
            assert getattr(member, spec.name) == spec.child, spec.name


def test_child_kwargs_keep_plugin_strings_only():
    from viztracer.vizplugin import VizPluginBase

    class Plugin(VizPluginBase):
        def support_version(self):
            return "0.10.0"

    tracer = VizTracer(verbose=0, plugins=[Plugin()])
    assert child_kwargs(tracer)["plugins"] == []


# --------------------------------------------------------------------------- generated blocks

GENERATOR = os.path.join(ROOT, "tools", "options_gen.py")


def generator(*args):
    if not os.path.exists(GENERATOR):
        pytest.skip("tools/ is not part of this copy")
    return subprocess.run([sys.executable, GENERATOR, *args], capture_output=True, text=True, timeout=60)


def test_generated_blocks_are_current():
    """VizTracer's parameters and attributes, _snaptrace.pyi's options, the docs' tables."""
    run = generator("--check")
    assert run.returncode == 0, run.stdout + run.stderr


# --------------------------------------------------------------------------- adding an option

def project_copy(tmp_path, entry):
    """A copy of what adding an option touches (the package with its built extension,
    the generator and the docs pages with generated blocks) with ``entry`` added at
    the end of the option table, and nothing else edited."""
    if not os.path.exists(GENERATOR):
        pytest.skip("tools/ is not part of this copy")
    root = tmp_path / "project"
    shutil.copytree(os.path.dirname(viztracer.__file__), root / "viztracer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for directory, names in (("tools", ["options_gen.py"]), ("docs", ["api.md", "cli.md"])):
        (root / directory).mkdir()
        for name in names:
            shutil.copy(os.path.join(ROOT, directory, name), root / directory / name)
    table = root / "viztracer" / "options.py"
    end = "\n)\n\nOPTION: Dict[str, Spec]"
    text = table.read_text()
    assert text.count(end) == 1
    table.write_text(text.replace(end, "\n" + entry + end))
    return root


def run_in_copy(root, *args, cwd=None):
    """Python with the copy in front of the installed package."""
    return subprocess.run([sys.executable, *args], cwd=cwd or root, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])))


def table_rows(path, *words):
    """The rows of the Markdown tables of ``path`` that hold every one of ``words``."""
    with open(path, encoding="utf-8") as f:
        return [line for line in f if line.startswith("|") and all(w in line for w in words)]


# Table entries as someone adding an option writes them (names of viztracer/options.py).
FAKE_OPTION = """\
    Spec("fake_option", "int", 3, check_int, help="a fake option", doc="A fake option.",
         sample=5, cli=Cli("int", EXTRA, "N")),"""
FAKE_NATIVE_OPTION = """\
    _flag("fake_native", "a fake native option", "A fake native option.", RECORDED, native=True),"""

# What the copy's VizTracer does with fake_option, as JSON.
API_PROBE = """\
import json
from viztracer import VizTracer

def rejected(**kwargs):
    try:
        VizTracer(verbose=0, **kwargs)
    except (TypeError, ValueError) as e:
        return "fake_option" in str(e)
    return False

tracer = VizTracer(verbose=0, fake_option=5)
seen = {"default": VizTracer(verbose=0).fake_option, "given": tracer.fake_option,
        "init_kwargs": tracer.init_kwargs.get("fake_option"), "rejects_a_str": rejected(fake_option="five"),
        "rejects_a_float": rejected(fake_option=1.5)}
tracer.fake_option = 7
seen["assigned"] = tracer.fake_option
try:
    tracer.fake_option = "seven"
except (TypeError, ValueError) as e:
    seen["assignment_rejected"] = "fake_option" in str(e)
print(json.dumps(seen))
"""

# A program run by the copy's command line: it and each kind of child process write
# the fake_option of their tracer (get_tracer()) to a file of their own.
CLI_PROGRAM = """\
import json
import multiprocessing
import os
import subprocess
import sys

from viztracer import get_tracer


def report(path):
    tracer = get_tracer()
    with open(path + ".tmp", "w") as f:
        json.dump(None if tracer is None else tracer.fake_option, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    out = sys.argv[1]
    report(os.path.join(out, "program"))
    pid = os.fork()
    if pid == 0:
        report(os.path.join(out, "os.fork"))
        os._exit(0)
    os.waitpid(pid, 0)
    p = multiprocessing.get_context("spawn").Process(target=report, args=(os.path.join(out, "spawn"),))
    p.start()
    p.join()
    subprocess.run([sys.executable, "-c", "import sys, prog; prog.report(sys.argv[1])",
                    os.path.join(out, "subprocess")], check=True)
"""


def fake_option_seen(root, tmp_path, name, args, rcfile=None):
    """Runs CLI_PROGRAM under the copy's ``viztracer ARGS``; what the program and its
    children found as their tracer's fake_option."""
    work = tmp_path / name
    out = work / "seen"
    out.mkdir(parents=True)
    (work / "prog.py").write_text(CLI_PROGRAM)
    if rcfile is not None:
        (work / ".viztracerrc").write_text(rcfile)
    run = run_in_copy(root, "-m", "viztracer", "--quiet", "-o", str(work / "trace.json"), *args,
                      "prog.py", str(out), cwd=work)
    assert run.returncode == 0, run.stdout + run.stderr
    return {kind: json.loads((out / kind).read_text()) for kind in os.listdir(out)}


def test_project_copy_new_option_needs_the_table_and_the_generator(tmp_path):
    root = project_copy(tmp_path, FAKE_OPTION)
    # The table alone: the check fails and names the files whose blocks are stale
    # (not the stub: the option is not native).
    stale = run_in_copy(root, "tools/options_gen.py", "--check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    for path in ("viztracer/viztracer.py", "docs/api.md", "docs/cli.md"):
        assert path in stale.stdout, stale.stdout
    assert "_snaptrace.pyi" not in stale.stdout
    # Then the generator: the blocks are current, and the docs' option tables have a row for it.
    run = run_in_copy(root, "tools/options_gen.py")
    assert run.returncode == 0, run.stdout + run.stderr
    check = run_in_copy(root, "tools/options_gen.py", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(table_rows(root / "docs" / "api.md", "`fake_option`", "A fake option.")) == 1
    assert len(table_rows(root / "docs" / "cli.md", "--fake_option", "`fake_option`")) == 1

    # The constructor takes it, with its default, validation on every assignment, and init_kwargs.
    api = run_in_copy(root, "-c", API_PROBE)
    assert api.returncode == 0, api.stdout + api.stderr
    assert json.loads(api.stdout) == {"default": 3, "given": 5, "init_kwargs": 5, "rejects_a_str": True,
                                      "rejects_a_float": True, "assigned": 7, "assignment_rejected": True}
    # The command line's flag and the rcfile's key reach the program's tracer, and every
    # kind of child process inherits the value.
    kinds = {"program", "os.fork", "spawn", "subprocess"}
    assert fake_option_seen(root, tmp_path, "flag", ["--fake_option", "5"]) == dict.fromkeys(kinds, 5)
    assert fake_option_seen(root, tmp_path, "rcfile", [], rcfile="[default]\nfake_option = 6\n") == \
        dict.fromkeys(kinds, 6)
    # A value the flag's type refuses is a usage error.
    bad = run_in_copy(root, "-m", "viztracer", "--fake_option", "five", "-c", "pass", cwd=tmp_path)
    assert bad.returncode == 2 and "--fake_option" in bad.stderr, bad.stdout + bad.stderr


def test_project_copy_native_option_needs_its_rust_side(tmp_path):
    """The stub declares a new native option; until the extension has it, no VizTracer
    can be made, and the error names it."""
    root = project_copy(tmp_path, FAKE_NATIVE_OPTION)
    assert run_in_copy(root, "tools/options_gen.py").returncode == 0
    stub = ast.parse((root / "viztracer" / "_snaptrace.pyi").read_text())
    (cls,) = [n for n in stub.body if isinstance(n, ast.ClassDef) and n.name == "Tracer"]
    assert [ast.unparse(n.annotation) for n in cls.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id == "fake_native"] \
        == ["bool"]
    made = run_in_copy(root, "-c", "from viztracer import VizTracer; VizTracer(verbose=0)")
    assert made.returncode == 1 and "fake_native" in made.stderr.strip().splitlines()[-1], made.stderr
