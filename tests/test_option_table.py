"""The option table (viztracer/options.py) and everything made from it: VizTracer's
constructor and attributes, init_kwargs, the stub of the native tracer, the command
line and rcfile, the child hand-over, and the docs. The blocks tools/options_gen.py
writes out are checked by running it with --check; the tests at the end add an option
to a copy of the project and show that the table and the generator are all it takes."""

import ast
import json
import os
import re
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
    the generator, the docs pages, these tests) with ``entry`` added at the end of the
    option table, and nothing else edited."""
    if not os.path.exists(GENERATOR):
        pytest.skip("tools/ is not part of this copy")
    root = tmp_path / "project"
    shutil.copytree(os.path.dirname(viztracer.__file__), root / "viztracer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for directory, names in (("tools", ["options_gen.py"]), ("docs", ["api.md", "cli.md"]),
                             ("tests", ["conftest.py", "support.py", "test_option_table.py",
                                        "test_option_inheritance.py"])):
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


# Table entries as someone adding an option writes them (names of viztracer/options.py).
FAKE_OPTION = """\
    Spec("fake_option", "int", 3, check_int, help="a fake option", doc="A fake option.",
         sample=5, cli=Cli("int", EXTRA, "N")),"""
FAKE_NATIVE_OPTION = """\
    _flag("fake_native", "a fake native option", "A fake native option.", RECORDED, native=True),"""


def test_project_copy_new_option_needs_the_table_and_the_generator(tmp_path):
    root = project_copy(tmp_path, FAKE_OPTION)
    stale = run_in_copy(root, "tools/options_gen.py", "--check")
    assert stale.returncode == 1 and stale.stdout.count("\n") == 1, stale.stdout + stale.stderr
    assert "viztracer/viztracer.py, docs/api.md, docs/cli.md" in stale.stdout
    run = run_in_copy(root, "tools/options_gen.py")
    assert run.returncode == 0, run.stdout + run.stderr
    api, cli = (root / "docs/api.md").read_text(), (root / "docs/cli.md").read_text()
    assert "| `fake_option` | `3` | `--fake_option N` | inherited | A fake option. |" in api
    assert "| `--fake_option N` | `fake_option` | A fake option |" in cli
    # The copy's own tests, on the copy, with the option in the table: every test but these.
    tests = run_in_copy(root, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-k", "not project_copy",
                        "test_option_table.py", "test_option_inheritance.py", cwd=root / "tests")
    assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr
    for test in ("test_generated_blocks_are_current", "test_class_attributes_come_from_the_table",
                 "test_sample_round_trips[fake_option]", "test_assignment_validates[fake_option]",
                 "test_command_line_flag[fake_option]", "test_rcfile_key[fake_option]",
                 "test_init_kwargs_reproduce_the_tracer", "test_child_kwargs_are_the_inherited_options_as_json"):
        assert f"test_option_table.py::{test} PASSED" in tests.stdout, test
    arrived = re.findall(r"test_inherited_option_arrives\[fake_option-([^]]*)\] PASSED", tests.stdout)
    assert set(arrived) == {"os.fork", "multiprocessing.fork", "multiprocessing.spawn", "multiprocessing.forkserver",
                            "subprocess"}, tests.stdout[-5000:]


def test_project_copy_native_option_names_the_missing_rust_side(tmp_path):
    root = project_copy(tmp_path, FAKE_NATIVE_OPTION)
    assert run_in_copy(root, "tools/options_gen.py").returncode == 0
    assert "    fake_native: bool\n" in (root / "viztracer" / "_snaptrace.pyi").read_text()
    tests = run_in_copy(root, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "test_option_table.py::test_native_options_are_in_the_extension", cwd=root / "tests")
    assert tests.returncode == 1
    assert "_snaptrace.Tracer has no attribute fake_native (option fake_native)" in tests.stdout, tests.stdout
