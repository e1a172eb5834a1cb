"""Every option a child process inherits (``Spec.child`` is INHERIT in the option
table) arrives with its parent's value, in every kind of child: ``os.fork``,
multiprocessing's fork, spawn and forkserver, and a Python ``subprocess``.

A parent program sets every option it can to its sample (a non-default value) with
``ignore_multiprocess=False``, starts one child of each kind, and each process writes
the options of its ``get_tracer()`` to a file. ``exclude_files`` can't be set together
with ``include_files``: a second parent run sets it. Each run waits for its children
to exit, never for a fixed time."""

import json
import os
import subprocess
import sys

import pytest

from support import missing, write_sample_plugin
from viztracer.options import DEFAULT, OPTION, OPTIONS

KINDS = ("os.fork", "multiprocessing.fork", "multiprocessing.spawn", "multiprocessing.forkserver", "subprocess")
# Children that run a new interpreter (not a fork of the parent's).
NEW_INTERPRETER = ("multiprocessing.spawn", "multiprocessing.forkserver", "subprocess")

PARENT = """\
import json
import multiprocessing
import os
import subprocess
import sys

from viztracer import VizTracer, get_tracer
from viztracer.options import OPTIONS


def report(path):
    tracer = get_tracer()
    values = None
    if tracer is not None:
        values = {spec.name: spec.to_kwarg(getattr(tracer, spec.name)) for spec in OPTIONS
                  if spec.store != "init"}
    with open(path + ".tmp", "w") as f:
        json.dump(values, f, default=repr)  # (log_func_repr is a function)
    os.replace(path + ".tmp", path)


def main():
    out = sys.argv[1]
    tracer = VizTracer(**json.loads(sys.argv[2]))
    tracer.start()
    report(os.path.join(out, "parent.json"))
    pid = os.fork()
    if pid == 0:
        report(os.path.join(out, "os.fork.json"))
        os._exit(0)
    os.waitpid(pid, 0)
    for method in ("fork", "spawn", "forkserver"):
        path = os.path.join(out, f"multiprocessing.{method}.json")
        p = multiprocessing.get_context(method).Process(target=report, args=(path,))
        p.start()
        p.join()
    subprocess.run([sys.executable, "-c", "import sys, parent; parent.report(sys.argv[1])",
                    os.path.join(out, "subprocess.json")], check=True)
    tracer.stop()
    tracer.save()


if __name__ == "__main__":
    main()
"""

# The run each option is set in (see the module's docstring).
ALT_RUN = ("exclude_files",)


def run_kwargs(alt):
    """The parent's VizTracer arguments: samples (every option but those of the other
    run, log_func_repr, which excludes log_func_with_objprint, and what needs a
    missing package), tracing its children."""
    kwargs = {}
    for spec in OPTIONS:
        if spec.store == "init" or spec.name == "log_func_repr" or (spec.name in ALT_RUN) != alt:
            continue
        if spec.requires is not None and missing(spec.requires):
            continue
        kwargs[spec.name] = spec.sample
    kwargs.update(ignore_multiprocess=False)
    return kwargs


def run_parent(directory, kwargs):
    directory.mkdir()
    (directory / "parent.py").write_text(PARENT)
    write_sample_plugin(directory)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(directory), *filter(None, [os.environ.get("PYTHONPATH")])]))
    run = subprocess.run([sys.executable, "parent.py", str(directory), json.dumps(kwargs)], cwd=directory,
                         env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    reports = {}
    for kind in ("parent", *KINDS):
        path = directory / f"{kind}.json"
        assert path.exists(), f"the {kind} child wrote nothing:\n{run.stdout}{run.stderr}"
        reports[kind] = json.loads(path.read_text())
        assert reports[kind] is not None, f"the {kind} child has no tracer"
    return reports


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{alt: (parent kwargs, {process: its options})}``, one parent run each."""
    out = {}
    for alt in (False, True):
        kwargs = run_kwargs(alt)
        out[alt] = kwargs, run_parent(tmp_path_factory.mktemp("inherit") / ("alt" if alt else "main"), kwargs)
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", [spec.name for spec in OPTIONS if spec.inherited])
def test_inherited_option_arrives(runs, kind, name):
    spec = OPTION[name]
    kwargs, reports = runs[name in ALT_RUN]
    if name not in kwargs:
        pytest.skip(f"{name} needs {spec.requires}, which is not installed")
    parent = reports["parent"][name]
    assert parent == json.loads(json.dumps(spec.sample))  # the parent has the non-default value
    assert reports[kind][name] == parent


@pytest.mark.parametrize("kind", NEW_INTERPRETER)
@pytest.mark.parametrize("name", [spec.name for spec in OPTIONS
                                  if not spec.inherited and spec.child is not DEFAULT and spec.store != "init"])
def test_fixed_option_of_a_new_interpreter(runs, kind, name):
    """verbose, pid_suffix, ignore_multiprocess: a child's own tracer always has the
    table's value, whatever the parent's."""
    _, reports = runs[False]
    assert reports[kind][name] == OPTION[name].child


def test_the_reported_command_line_case(tmp_path):
    """``viztracer --log_func_with_objprint --sanitize_function_name --trace_self
    prog.py``: its spawn, forkserver and subprocess children have the three options on."""
    if missing("objprint"):
        pytest.skip("objprint is not installed")
    (tmp_path / "prog.py").write_text(PARENT.replace(
        "    tracer = VizTracer(**json.loads(sys.argv[2]))\n    tracer.start()\n", "").replace(
        "    tracer.stop()\n    tracer.save()\n", ""))
    (tmp_path / "parent.py").write_text((tmp_path / "prog.py").read_text())
    run = subprocess.run([sys.executable, "-m", "viztracer", "--quiet", "--log_func_with_objprint",
                          "--sanitize_function_name", "--trace_self", "-o", str(tmp_path / "out.json"),
                          "prog.py", str(tmp_path)], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    for kind in ("parent", *KINDS):
        values = json.loads((tmp_path / f"{kind}.json").read_text())
        for name in ("log_func_with_objprint", "sanitize_function_name", "trace_self"):
            assert values[name] is True, (kind, name)
