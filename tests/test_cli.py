"""The ``viztracer`` command line: running programs exactly as python would, and the
trace it writes. Every test runs the real console script (or ``python -m viztracer``)
in a subprocess."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from cli_support import VIZTRACER, clean_env, ours, program_output, run_python, run_viztracer, write
from support import BLOCKED_WAIT_SOURCE, events, load_trace, names, short_names

# A program that reports what it sees of its own launch.
PROBE = """
import json, sys
line = sys.stdin.readline()
info = {
    "argv": sys.argv,
    "path": sys.path,
    "name": __name__,
    "file": globals().get("__file__"),
    "globals": [k for k in globals() if k not in ("json", "sys", "line")],  # in their order
    "package": globals().get("__package__"),
    "spec": getattr(globals().get("__spec__"), "name", None),
    "cached": globals().get("__cached__"),
    "loader": type(globals().get("__loader__")).__name__,
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
    "stdin": line,
}
print(json.dumps(info))
"""


def _probe(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(program_output(result.stdout).splitlines()[0])


# --------------------------------------------------------------------------- help, version

def test_help_is_the_same_for_no_args_h_and_help(tmp_path):
    outputs = [run_viztracer(args, tmp_path, env={"COLUMNS": "100"}) for args in ([], ["-h"], ["--help"])]
    for r in outputs:
        assert r.returncode == 0
        assert r.stderr == ""
    assert outputs[0].stdout == outputs[1].stdout == outputs[2].stdout
    text = outputs[0].stdout
    for flag in ("--output_file", "--log_async", "--attach", "--plugins", "--rcfile", "--tracer_entries",
                 "--unique_output_file", "--output_dir", "--quiet", "--max_stack_depth", "--min_duration",
                 "--include_files", "--exclude_files", "--ignore_c_function", "--ignore_frozen",
                 "--log_func_retval", "--log_func_args", "--log_func_with_objprint", "--pid_suffix",
                 "--minimize_memory", "--dump_raw", "--sanitize_function_name", "--trace_self", "--log_exit",
                 "--fast_calls", "--log_print", "--log_gc", "--log_sparse", "--log_torch", "--log_audit",
                 "--ignore_multiprocess", "--open", "--log_var", "--log_number", "--log_attr",
                 "--log_func_exec", "--log_func_entry", "--log_exception", "--magic_comment", "--combine",
                 "--align_combine", "--compress", "--decompress", "--module", "--cmd_string", "--version"):
        assert flag in text, flag


def test_version(tmp_path):
    from viztracer import __version__
    r = run_viztracer(["--version"], tmp_path)
    assert r.returncode == 0
    assert r.stdout.strip() == __version__


def test_version_is_written_once_and_agrees():
    # Cargo.toml holds it; the native module, the installed metadata and the CLI
    # (above) say the same, and it names this build (a local label), not upstream's 1.1.1
    import importlib.metadata

    from viztracer import __version__, _snaptrace
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Cargo.toml")) as f:
        cargo = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
    assert __version__ == _snaptrace.VERSION == cargo == importlib.metadata.version("viztracer")
    assert re.fullmatch(r"\d+\.\d+\.\d+\+rust\.\d+", __version__)


# --------------------------------------------------------------------------- what the program sees

@pytest.mark.parametrize("module", [False, True], ids=["console-script", "python-m-viztracer"])
def test_script_sees_what_python_gives_it(tmp_path, module):
    write(tmp_path / "sub" / "probe.py", PROBE)
    args = [os.path.join("sub", "probe.py"), "a", "--flag", "-o", "x"]
    plain = _probe(run_python(args, tmp_path, input="line one\n"))
    traced_run = run_viztracer(["-o", "t.json", "--"] + args, tmp_path, module=module, input="line one\n")
    traced = _probe(traced_run)
    assert traced == plain
    assert plain["path"][0] == str(tmp_path / "sub")
    assert plain["name"] == "__main__" and plain["main_is_me"]
    trace = load_trace(tmp_path / "t.json")
    assert any(n.startswith("<module> (" + str(tmp_path / "sub" / "probe.py")) for n in names(trace))


# Heavy modules a plain script does not import, which the traced program must not
# find already imported either (a program that checks sys.modules, or times its
# own imports, behaves as untraced). Upstream VizTracer 1.1.1 imports several.
NOT_PRELOADED = ("dataclasses", "inspect", "dis", "ast", "zipfile", "pathlib", "glob", "asyncio",
                 "multiprocessing", "subprocess", "socket", "logging", "pickle", "traceback", "textwrap")


def test_program_finds_no_heavy_module_imported(tmp_path):
    write(tmp_path / "mods.py", "import sys\nprint(' '.join(sorted(sys.modules)))\n")
    plain = set(run_python(["mods.py"], tmp_path).stdout.split())
    traced = set(program_output(run_viztracer(["--quiet", "mods.py"], tmp_path).stdout).split())
    # The command line needs argparse, which imports more on some versions (from 3.14
    # making a parser imports _colorize, and so dataclasses and inspect): those can't
    # be helped.
    argparse_needs = set(run_python(["-c", "import argparse, sys; argparse.ArgumentParser().add_argument('-x'); "
                                           "print(' '.join(sys.modules))"], tmp_path).stdout.split())
    assert plain and traced > plain
    assert sorted(m for m in NOT_PRELOADED if m in traced and m not in plain | argparse_needs) == []


def test_script_through_a_symlink(tmp_path):
    write(tmp_path / "real" / "probe.py", PROBE)
    os.makedirs(tmp_path / "links")
    os.symlink(tmp_path / "real" / "probe.py", tmp_path / "links" / "probe.py")
    args = [os.path.join("links", "probe.py")]
    plain = _probe(run_python(args, tmp_path, input=""))
    traced = _probe(run_viztracer(["--quiet"] + args, tmp_path, input=""))
    assert traced == plain
    assert plain["path"][0] == str(tmp_path / "real")


def test_module_sees_what_python_m_gives_it(tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "probe.py", PROBE)
    plain = _probe(run_python(["-m", "pkg.probe", "x", "-y"], tmp_path, input="hi\n"))
    r = run_viztracer(["-o", "t.json", "-m", "pkg.probe", "x", "-y"], tmp_path, input="hi\n")
    traced = _probe(r)
    assert traced == plain
    assert plain["argv"][0] == str(tmp_path / "pkg" / "probe.py")
    assert plain["package"] == "pkg" and plain["spec"] == "pkg.probe"
    assert any(n.startswith("<module> (") and "probe.py" in n for n in names(load_trace(tmp_path / "t.json")))


def test_package_main(tmp_path):
    write(tmp_path / "app" / "__init__.py", "")
    write(tmp_path / "app" / "__main__.py", "import sys\nprint('app main', __name__, sys.argv[1:])\n")
    plain = run_python(["-m", "app", "1"], tmp_path)
    r = run_viztracer(["--quiet", "-m", "app", "1"], tmp_path)
    assert r.returncode == plain.returncode == 0
    assert r.stdout == plain.stdout == "app main __main__ ['1']\n"


def test_directory_and_zip_with_main(tmp_path):
    import zipfile
    write(tmp_path / "appdir" / "__main__.py", PROBE)
    with zipfile.ZipFile(tmp_path / "app.zip", "w") as z:
        z.write(tmp_path / "appdir" / "__main__.py", "__main__.py")
    for target in ("appdir", "appdir/", "app.zip"):
        plain = _probe(run_python([target, "x"], tmp_path, input="in\n"))
        traced = _probe(run_viztracer(["--quiet", target, "x"], tmp_path, input="in\n"))
        assert traced == plain, target
    os.makedirs(tmp_path / "empty")
    plain = run_python(["empty"], tmp_path)
    r = run_viztracer(["empty"], tmp_path)
    assert r.returncode == plain.returncode == 1
    assert r.stderr.split(": ", 1)[1] == plain.stderr.split(": ", 1)[1]


def test_missing_module(tmp_path):
    plain = run_python(["-m", "no_such_module_here"], tmp_path)
    r = run_viztracer(["-m", "no_such_module_here"], tmp_path)
    assert r.returncode == plain.returncode == 1
    # "<python>: No module named ..." (how the interpreter path is spelled may differ)
    assert r.stderr.split(": ", 1)[1] == plain.stderr.split(": ", 1)[1] == "No module named no_such_module_here\n"
    assert not os.path.exists(tmp_path / "result.json")


def test_cmd_string_sees_what_python_c_gives_it(tmp_path):
    code = PROBE.replace('globals().get("__file__")', "globals().get('__file__')")
    plain = _probe(run_python(["-c", code, "a", "b"], tmp_path, input="x\n"))
    traced = _probe(run_viztracer(["--quiet", "-c", code, "a", "b"], tmp_path, input="x\n"))
    assert traced == plain
    assert plain["argv"] == ["-c", "a", "b"] and plain["path"][0] == "" and plain["file"] is None


def test_cmd_string_events(tmp_path):
    r = run_viztracer(["-o", "t.json", "-c", "lst = []; lst.append(1)"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(names(load_trace(tmp_path / "t.json"))) == ["<module> (<string>:1)", "builtins.exec", "list.append"]


def test_script_found_on_path(tmp_path):
    write(tmp_path / "bin" / "mytool", "#!/usr/bin/env python3\nimport sys\nprint('tool', sys.argv[1:], sys.argv[0])\n")
    os.chmod(tmp_path / "bin" / "mytool", 0o755)
    write(tmp_path / "bin" / "shelltool", "#!/bin/sh\necho hi\n")
    os.chmod(tmp_path / "bin" / "shelltool", 0o755)
    env = {"PATH": str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", "")}
    work = tmp_path / "work"
    os.makedirs(work)
    r = run_viztracer(["-o", "t.json", "mytool", "run", "--debug"], work, env=env)
    assert r.returncode == 0, r.stderr
    assert program_output(r.stdout) == f"tool ['run', '--debug'] {tmp_path / 'bin' / 'mytool'}\n"
    assert os.path.exists(work / "t.json")
    r = run_viztracer(["shelltool"], work, env=env)
    assert r.returncode == 1
    assert "not a Python script" in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_cwd_script_wins_over_path(tmp_path):
    write(tmp_path / "bin" / "tool.py", "print('from PATH')\n")
    write(tmp_path / "tool.py", "print('from cwd')\n")
    env = {"PATH": str(tmp_path / "bin") + os.pathsep + os.environ.get("PATH", "")}
    r = run_viztracer(["--quiet", "tool.py"], tmp_path, env=env)
    assert r.stdout == "from cwd\n"


# --------------------------------------------------------------------------- how the program ends

ENDINGS = {
    "normal": "print('done')\n",
    "sys_exit_int": "import sys\nprint('x')\nsys.exit(3)\n",
    "sys_exit_none": "import sys\nsys.exit()\n",
    "sys_exit_str": "import sys\nsys.exit('bye bye')\n",
    "exception": "def f():\n    raise ValueError('bad ' + 'value')\ndef g():\n    f()\ng()\n",
    "chained": "try:\n    1/0\nexcept Exception as e:\n    raise KeyError('k') from e\n",
    "keyboard_interrupt": "def f():\n    raise KeyboardInterrupt\nf()\n",
    "os_exit": "import os, sys\nprint('before', flush=True)\nos._exit(4)\n",
    "os_exec": "import os, sys\nprint('before', flush=True)\n"
               "os.execv(sys.executable, [sys.executable, '-c', 'print(42)'])\n",
    "sigterm": "import os, signal\nprint('before', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\n",
    "sigint": "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n",
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_program_end_is_untouched_and_trace_saved(tmp_path, ending):
    write(tmp_path / "prog.py", ENDINGS[ending])
    plain = run_python(["prog.py"], tmp_path)
    r = run_viztracer(["-o", "t.json", "prog.py"], tmp_path)
    assert r.returncode == plain.returncode, (r.stdout, r.stderr)
    assert r.stderr == plain.stderr
    assert program_output(r.stdout) == plain.stdout
    assert len(ours(r.stdout)) == 1, r.stdout
    trace = load_trace(tmp_path / "t.json")
    assert any(n.startswith("<module> (") for n in names(trace))


def test_exit_codes_as_python(tmp_path):
    assert run_viztracer(["--quiet", "-c", "import sys; sys.exit(256 + 7)"], tmp_path).returncode == 7
    assert run_viztracer(["--quiet", "-c", "raise SystemExit(True)"], tmp_path).returncode == 1


def test_syntax_error_like_python(tmp_path):
    write(tmp_path / "bad.py", "x = 1\ndef (:\n")
    plain = run_python(["bad.py"], tmp_path)
    r = run_viztracer(["bad.py"], tmp_path)
    assert r.returncode == plain.returncode == 1
    assert r.stderr == plain.stderr and "SyntaxError" in r.stderr
    assert not os.path.exists(tmp_path / "result.json")


def test_custom_excepthook_is_used(tmp_path):
    write(tmp_path / "prog.py", """
        import sys
        sys.excepthook = lambda t, v, tb: print("hook:", t.__name__, tb.tb_frame.f_code.co_filename.endswith("prog.py"))
        raise RuntimeError("x")
    """)
    r = run_viztracer(["--quiet", "prog.py"], tmp_path)
    assert r.returncode == 1
    assert r.stdout == "hook: RuntimeError True\n"


def _wait_for_line(proc: subprocess.Popen, text: str) -> None:
    line = proc.stdout.readline()
    assert text in line, line


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_from_outside(tmp_path, sig):
    write(tmp_path / "prog.py", """
        import time
        def waiting():
            for i in range(3):
                time.sleep(0.001)
            print("ready", flush=True)
            while True:
                time.sleep(0.01)
        waiting()
    """)
    proc = subprocess.Popen([VIZTRACER, "-o", "t.json", "prog.py"], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env())
    _wait_for_line(proc, "ready")
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -getattr(signal, sig), (out, err)
    assert len(ours(out)) == 1, (out, err)
    if sig == "SIGINT":
        assert err.rstrip().endswith("KeyboardInterrupt") and "prog.py" in err and "viztracer" not in err
    trace = load_trace(tmp_path / "t.json")
    assert any(n.startswith("waiting (") for n in names(trace))
    assert any(n == "time.sleep" for n in names(trace))


def test_sigterm_just_before_a_blocking_wait(tmp_path):
    write(tmp_path / "prog.py", BLOCKED_WAIT_SOURCE + "blocked_wait()\n")
    proc = subprocess.Popen([VIZTRACER, "-o", "t.json", "prog.py"], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM, (out, err)
    assert out.startswith("pending\n") and "woke up" not in out, out
    assert len(ours(out)) == 1, (out, err)
    assert any(n.startswith("blocked_wait (") for n in names(load_trace(tmp_path / "t.json")))


def test_summary_comes_after_program_output(tmp_path):
    write(tmp_path / "prog.py", "print(90)\n")
    r = run_viztracer(["prog.py"], tmp_path)
    assert re.match(r"90\nSaved \d+ trace entries to .*result\.json \(view it with: vizviewer .*result\.json\)\n$",
                    r.stdout), r.stdout


def test_quiet_prints_nothing_of_ours(tmp_path):
    write(tmp_path / "prog.py", "print('only me')\n")
    r = run_viztracer(["--quiet", "prog.py"], tmp_path)
    assert r.stdout == "only me\n" and r.stderr == ""
    assert os.path.exists(tmp_path / "result.json")


# --------------------------------------------------------------------------- shutdown: threads, atexit

def test_threading_atexit_callbacks_run_newest_first(tmp_path):
    write(tmp_path / "prog.py", """
        import threading
        threading._register_atexit(print, "first registered")
        threading._register_atexit(print, "second registered")
    """)
    plain = run_python(["prog.py"], tmp_path)
    r = run_viztracer(["prog.py"], tmp_path)
    assert program_output(r.stdout) == plain.stdout == "second registered\nfirst registered\n"


def test_threads_and_atexit_before_the_summary(tmp_path):
    write(tmp_path / "prog.py", """
        import atexit, threading, time
        from concurrent.futures import ThreadPoolExecutor
        def late():
            time.sleep(0.2)
            print("thread done", flush=True)
        threading.Thread(target=late).start()
        pool = ThreadPoolExecutor(2)
        pool.submit(time.sleep, 0.1)
        atexit.register(print, "atexit ran")
        print("main done")
    """)
    plain = run_python(["prog.py"], tmp_path)
    r = run_viztracer(["prog.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert program_output(r.stdout) == plain.stdout == "main done\nthread done\natexit ran\n"
    assert r.stdout.splitlines()[-1].startswith("Saved ")


def test_log_exit(tmp_path):
    write(tmp_path / "prog.py", """
        import atexit
        def at_exit_handler():
            return sum(range(10))
        def main():
            pass
        atexit.register(at_exit_handler)
        main()
    """)
    r = run_viztracer(["-o", "plain.json", "prog.py"], tmp_path)
    assert r.returncode == 0
    plain = short_names(load_trace(tmp_path / "plain.json"))
    assert "main" in plain and "at_exit_handler" not in plain
    r = run_viztracer(["--log_exit", "-o", "exit.json", "prog.py"], tmp_path)
    assert r.returncode == 0
    logged = short_names(load_trace(tmp_path / "exit.json"))
    assert "main" in logged and "at_exit_handler" in logged


# --------------------------------------------------------------------------- argv splitting

def test_options_after_the_script_are_ours_without_separator(tmp_path):
    write(tmp_path / "prog.py", "import sys\nprint(sys.argv)\n")
    r = run_viztracer(["prog.py", "-o", "mine.json", "--other"], tmp_path)
    assert r.returncode == 0
    assert program_output(r.stdout) == "['prog.py', '--other']\n"
    assert os.path.exists(tmp_path / "mine.json")
    r = run_viztracer(["-o", "t.json", "--", "prog.py", "-o", "theirs.json"], tmp_path)
    assert program_output(r.stdout) == "['prog.py', '-o', 'theirs.json']\n"
    r = run_viztracer(["-o", "t.json", "--run", "prog.py", "--quiet"], tmp_path)
    assert program_output(r.stdout) == "['prog.py', '--quiet']\n"
    assert len(ours(r.stdout)) == 1


def test_unknown_option_before_separator_is_an_error(tmp_path):
    write(tmp_path / "prog.py", "print(1)\n")
    r = run_viztracer(["--no_such_option", "--", "prog.py"], tmp_path)
    assert r.returncode == 2
    assert "unrecognized arguments: --no_such_option" in r.stderr


def test_list_options_swallow_the_script(tmp_path):
    write(tmp_path / "prog.py", "print(1)\n")
    r = run_viztracer(["--include_files", "./abcd", "prog.py"], tmp_path)
    assert r.returncode == 0
    assert "--output_file" in r.stdout and not os.path.exists(tmp_path / "result.json")


def test_abbreviated_options(tmp_path):
    write(tmp_path / "prog.py", "def f():\n    pass\nf()\n")
    r = run_viztracer(["--max_stack", "1", "--quie", "prog.py"], tmp_path)
    assert r.returncode == 0 and r.stdout == ""
    assert names(load_trace(tmp_path / "result.json")) == ["builtins.exec"]


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("args, message", [
    (["missing.py"], "No such file as missing.py"),
    (["result_wrong.json"], 'viztracer can\'t run json file, did you mean "vizviewer result_wrong.json"?'),
    (["-o", "out.txt", "prog.py"], "Only html, json and gz are supported"),
    (["-o", "noext", "prog.py"], "Only html, json and gz are supported"),
    (["--min_duration", "0.0.3s", "prog.py"], "Can't convert 0.0.3s to time. Format should be 0.3ms or 13us"),
    (["--min_duration", "fast", "prog.py"], "Can't convert fast to time. Format should be 0.3ms or 13us"),
    (["--min_duration", "10usx", "prog.py"], "Can't convert 10usx to time. Format should be 0.3ms or 13us"),
    (["--include_files", "a", "--exclude_files", "b", "--", "prog.py"],
     "include_files and exclude_files can't be both specified!"),
    (["--tracer_entries", "0", "prog.py"], "tracer_entries must be between"),
    (["--attach", "0"], "--attach needs the pid of a running process"),
    (["--uninstall", "0"], "--uninstall needs the pid of a running process"),
    (["--compress", "missing.json"], "Unable to find file missing.json"),
    (["--compress", "prog.py"], "Only support compressing json report"),
    (["--decompress", "missing.cvf"], "Unable to find file missing.cvf"),
    (["--combine", "missing.json"], "Unable to find file missing.json"),
    (["--combine", "prog.py"], "is not one"),
])
def test_error_messages(tmp_path, args, message):
    write(tmp_path / "prog.py", "print('ran')\n")
    write(tmp_path / "result_wrong.json", "{}")
    r = run_viztracer(args, tmp_path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert message in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert "ran" not in r.stdout


def test_bad_int_is_an_argparse_error(tmp_path):
    r = run_viztracer(["--tracer_entries", "many", "-c", "pass"], tmp_path)
    assert r.returncode == 2
    assert "invalid int value: 'many'" in r.stderr


def test_log_torch_without_torch(tmp_path):
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed")
    except ImportError:
        pass
    r = run_viztracer(["--log_torch", "-c", "pass"], tmp_path)
    assert r.returncode == 1
    assert "torch is not installed" in r.stdout and "Traceback" not in r.stderr


def test_mutually_exclusive_output_options(tmp_path):
    r = run_viztracer(["-o", "a.json", "-u", "-c", "pass"], tmp_path)
    assert r.returncode == 2 and "not allowed with" in r.stderr


# --------------------------------------------------------------------------- output

FIB = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(5)
"""


@pytest.mark.parametrize("name", ["out.json", "out.json.gz", "out.gz", "sub/dir/out.json"])
def test_json_outputs(tmp_path, name):
    write(tmp_path / "fib.py", FIB)
    r = run_viztracer(["-o", name, "fib.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    path = tmp_path / name
    assert str(path) in ours(r.stdout)[0]
    trace = load_trace(path)
    assert short_names(trace).count("fib") == 15
    assert trace["viztracer_metadata"]["version"]
    assert str(tmp_path / "fib.py") in trace["file_info"]["files"]


def test_html_output(tmp_path):
    write(tmp_path / "fib.py", FIB)
    r = run_viztracer(["-o", "out.html", "fib.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "out.html", encoding="utf-8") as f:
        page = f.read()
    assert page.lstrip().lower().startswith("<!doctype html")
    m = re.search(r'id="vizviewer-data" data-encoding="gzip-base64"[^>]*>([^<]*)</script>', page)
    trace = json.loads(gzip.decompress(base64.b64decode(re.sub(r"\s+", "", m.group(1)))))
    assert short_names(trace).count("fib") == 15


def test_unique_output_file(tmp_path):
    write(tmp_path / "my_prog.py", "pass\n")
    r = run_viztracer(["-u", "my_prog.py"], tmp_path)
    assert r.returncode == 0
    made = [f for f in os.listdir(tmp_path) if f.endswith(".json")]
    assert len(made) == 1 and re.fullmatch(r"my_prog_\d{8}_\d{6}_\d+\.json", made[0]), made
    r = run_viztracer(["-u", "--output_dir", "runs", "-c", "pass"], tmp_path)
    made = os.listdir(tmp_path / "runs")
    assert len(made) == 1 and re.fullmatch(r"python_\d{8}_\d{6}_\d+\.json", made[0]), made


def test_output_dir_and_pid_suffix(tmp_path):
    write(tmp_path / "prog.py", "import os\nprint(os.getpid())\n")
    r = run_viztracer(["--output_dir", "a/b", "--pid_suffix", "prog.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    pid = program_output(r.stdout).strip()
    path = tmp_path / "a" / "b" / f"result_{pid}.json"
    assert path.exists() and str(path) in ours(r.stdout)[0]


def test_output_relative_to_start_directory(tmp_path):
    write(tmp_path / "prog.py", "import os\nos.makedirs('elsewhere')\nos.chdir('elsewhere')\n")
    r = run_viztracer(["-o", "t.json", "prog.py"], tmp_path)
    assert r.returncode == 0
    assert (tmp_path / "t.json").exists() and not (tmp_path / "elsewhere" / "t.json").exists()


def test_open_runs_the_viewer_once(tmp_path):
    fetch = write(tmp_path / "fetch.py", "import sys, urllib.request\nurllib.request.urlopen(sys.argv[1]).read()\n")
    write(tmp_path / "prog.py", "pass\n")
    env = {"BROWSER": f"{sys.executable} {fetch} %s"}
    r = run_viztracer(["--open", "-o", "out.html", "prog.py"], tmp_path, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Running vizviewer" in r.stdout


# --------------------------------------------------------------------------- flags that filter

def test_max_stack_depth(tmp_path):
    write(tmp_path / "fib.py", FIB)
    run_viztracer(["--max_stack_depth", "4", "fib.py"], tmp_path)
    # exec, <module>, fib(5), and its two calls
    assert short_names(load_trace(tmp_path / "result.json")).count("fib") == 3


def test_include_and_exclude_files(tmp_path):
    write(tmp_path / "fib.py", FIB)
    run_viztracer(["--include_files", "./", "--", "fib.py"], tmp_path)
    assert len(names(load_trace(tmp_path / "result.json"))) == 17
    run_viztracer(["--exclude_files", "./", "--", "fib.py"], tmp_path)
    assert names(load_trace(tmp_path / "result.json")) == ["builtins.exec"]
    run_viztracer(["--include_files", "./nowhere", "--", "fib.py"], tmp_path)
    assert names(load_trace(tmp_path / "result.json")) == ["builtins.exec"]


def test_min_duration(tmp_path):
    write(tmp_path / "prog.py", """
        import time
        def slow():
            time.sleep(0.02)
        def quick():
            pass
        slow(); quick()
    """)
    run_viztracer(["--min_duration", "5ms", "prog.py"], tmp_path)
    kept = short_names(load_trace(tmp_path / "result.json"))
    assert "slow" in kept and "quick" not in kept
    run_viztracer(["--min_duration", "5000", "prog.py"], tmp_path)  # µs
    assert "quick" not in short_names(load_trace(tmp_path / "result.json"))


def test_ignore_c_function_and_frozen(tmp_path):
    write(tmp_path / "helper.py", "def h():\n    return len([1])\n")
    write(tmp_path / "prog.py", "import helper\nhelper.h()\n")
    run_viztracer(["prog.py"], tmp_path)
    all_names = names(load_trace(tmp_path / "result.json"))
    assert "builtins.len" in all_names and any("<frozen" in n for n in all_names)
    run_viztracer(["--ignore_c_function", "--ignore_frozen", "prog.py"], tmp_path)
    some = names(load_trace(tmp_path / "result.json"))
    assert "builtins.len" not in some and not any("<frozen" in n for n in some)
    assert any(n.startswith("h (") for n in some)


def test_tracer_entries_overflow(tmp_path):
    write(tmp_path / "fib.py", FIB.replace("fib(5)", "fib(15)"))
    run_viztracer(["--tracer_entries", "100", "fib.py"], tmp_path)
    trace = load_trace(tmp_path / "result.json")
    assert len(events(trace)) == 100
    assert trace["viztracer_metadata"]["overflow"] is True


def test_func_args_and_retval(tmp_path):
    write(tmp_path / "prog.py", "def add(a, b=2):\n    return a + b\nadd(1)\n")
    run_viztracer(["--log_func_args", "--log_func_retval", "prog.py"], tmp_path)
    (add,) = [e for e in events(load_trace(tmp_path / "result.json")) if e["name"].startswith("add (")]
    assert add["args"] == {"func_args": {"a": "1", "b": "2"}, "return_value": "3"}


def test_log_func_with_objprint(tmp_path):
    pytest.importorskip("objprint")
    write(tmp_path / "prog.py", """
        class P:
            def __init__(self):
                self.x = 1
        def take(p):
            return p
        take(P())
    """)
    run_viztracer(["--log_func_args", "--log_func_with_objprint", "prog.py"], tmp_path)
    (take,) = [e for e in events(load_trace(tmp_path / "result.json")) if e["name"].startswith("take (")]
    assert "x" in take["args"]["func_args"]["p"] and "object at" not in take["args"]["func_args"]["p"]


def test_trace_self(tmp_path):
    run_viztracer(["--trace_self", "--log_exit", "-c", "pass"], tmp_path)
    assert any("viztracer" in n and "(" in n for n in names(load_trace(tmp_path / "result.json")))


@pytest.mark.parametrize("flag", ["--minimize_memory", "--dump_raw", "--sanitize_function_name", "--fast_calls",
                                  "--file_info"])
def test_flags_that_keep_the_trace_valid(tmp_path, flag):
    write(tmp_path / "fib.py", FIB)
    r = run_viztracer([flag, "fib.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert short_names(load_trace(tmp_path / "result.json")).count("fib") == 15


# --------------------------------------------------------------------------- options handed to VizTracer

TRACER_PROBE = """
import json
from viztracer import get_tracer
t = get_tracer()
keys = ["tracer_entries", "verbose", "max_stack_depth", "ignore_c_function", "ignore_frozen", "log_func_retval",
        "log_func_args", "log_func_with_objprint", "log_print", "log_gc", "log_sparse", "log_async", "log_audit",
        "pid_suffix", "file_info", "trace_self", "min_duration", "minimize_memory", "dump_raw",
        "sanitize_function_name", "ignore_multiprocess", "fast_calls", "include_files", "exclude_files", "plugins"]
print(json.dumps({k: getattr(t, k) for k in keys}))
"""


def _tracer_options(tmp_path, args):
    write(tmp_path / "probe_tracer.py", TRACER_PROBE)
    r = run_viztracer(args + ["--", "probe_tracer.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    return json.loads(program_output(r.stdout).splitlines()[0])


def test_default_tracer_options(tmp_path):
    opts = _tracer_options(tmp_path, ["-o", "t.json"])
    assert opts["tracer_entries"] == 1000000 and opts["verbose"] == 1 and opts["max_stack_depth"] == -1
    assert opts["ignore_multiprocess"] is False and opts["file_info"] is True and opts["min_duration"] == 0
    for k in ("ignore_c_function", "log_print", "log_gc", "log_sparse", "log_async", "pid_suffix", "trace_self",
              "fast_calls", "log_func_args"):
        assert opts[k] is False, k
    assert opts["log_audit"] is None


def test_every_flag_reaches_the_tracer(tmp_path):
    opts = _tracer_options(tmp_path, [
        "--tracer_entries", "5000", "--quiet", "--max_stack_depth", "7", "--min_duration", "0.3ms",
        "--ignore_c_function", "--ignore_frozen", "--log_func_retval", "--log_func_args", "--log_gc",
        "--log_async", "--log_audit", "builtins.id", "i.*", "--pid_suffix", "--trace_self", "--minimize_memory",
        "--dump_raw", "--sanitize_function_name", "--ignore_multiprocess", "--fast_calls",
        "--exclude_files", "/nowhere/"])
    assert opts["tracer_entries"] == 5000 and opts["verbose"] == 0 and opts["max_stack_depth"] == 7
    assert opts["min_duration"] == pytest.approx(300_000)  # the getter is in ns, as upstream's
    for k in ("ignore_c_function", "ignore_frozen", "log_func_retval", "log_func_args", "log_gc", "log_async",
              "pid_suffix", "trace_self", "minimize_memory", "dump_raw", "sanitize_function_name",
              "ignore_multiprocess", "fast_calls"):
        assert opts[k] is True, k
    assert opts["log_audit"] == ["builtins.id", "i.*"]
    assert "/nowhere/" in opts["exclude_files"]


def test_log_audit_without_regex_means_all(tmp_path):
    assert _tracer_options(tmp_path, ["--log_audit"])["log_audit"] == []


def test_log_print_and_log_sparse_reach_the_tracer(tmp_path):
    write(tmp_path / "prog.py", """
        from viztracer import get_tracer
        t = get_tracer()
        import sys
        sys.stderr.write(f"{t.log_print} {t.log_sparse}\\n")
    """)
    r = run_viztracer(["--log_print", "--log_sparse", "prog.py"], tmp_path)
    assert r.returncode == 0 and r.stderr == "True True\n"


# --------------------------------------------------------------------------- source instrumentation

def test_log_var_through_code_monkey(tmp_path):
    write(tmp_path / "prog.py", "lst = []\nlst.append(1)\nother = 2\n")
    r = run_viztracer(["--log_var", "lst", "--", "prog.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    instants = [e["name"] for e in events(load_trace(tmp_path / "result.json"), "i")]
    assert any(n.startswith("Variable Assign - lst") for n in instants)
    assert not any("other" in n for n in instants)


def test_instrumentation_of_a_module(tmp_path):
    write(tmp_path / "modx.py", "def f():\n    raise ValueError('x')\ntry:\n    f()\nexcept ValueError:\n    pass\n")
    run_python(["-c", "import modx"], tmp_path, env={"PYTHONDONTWRITEBYTECODE": ""})  # a cached .pyc exists
    r = run_viztracer(["--log_exception", "-m", "modx"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert any(n.startswith("Exception") for n in names(load_trace(tmp_path / "result.json"), "i"))


def test_magic_comment(tmp_path):
    write(tmp_path / "prog.py", "a = 3  # !viztracer: log\n")
    r = run_viztracer(["--magic_comment", "prog.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    trace = load_trace(tmp_path / "result.json")
    assert any(e["name"] == "a" for e in trace["traceEvents"] if e.get("ph") == "C")


INSTRUMENTED = """
class S:
    pass

def foo(x):
    y = x + 1
    return y

def bar():
    raise KeyError("k")

abc = 1
abd = 2.5
abe = 3
s = S()
s.attr = 4
s.other = 5
foo(1)
try:
    bar()
except KeyError:
    pass
"""


@pytest.mark.parametrize("flags, check", [
    (["--log_number", "ab[cd]"],
     lambda t: sorted(e["name"] for e in events(t, "C")) == ["Variable Assign - abc", "Variable Assign - abd"]),
    (["--log_attr", "a.*"],
     lambda t: names(t, "i") == ["Attribute Assign - s.attr = 4"]),
    (["--log_func_entry", "fo.*"],
     lambda t: [n.split(" = ")[0] for n in names(t, "i")] == ["Function Entry - foo"]),
    (["--log_func_exec", "foo"],
     lambda t: [e["args"]["exec_steps"] for e in events(t) if e["name"].startswith("foo (")] == [["(6) y = 2"]]),
    (["--log_exception"],
     lambda t: any(n.startswith("Exception - KeyError") for n in names(t, "i"))),
])
def test_instrumentation_flags(tmp_path, flags, check):
    write(tmp_path / "prog.py", INSTRUMENTED)
    r = run_viztracer(flags + ["--", "prog.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    trace = load_trace(tmp_path / "result.json")
    assert check(trace), trace["traceEvents"]


# Calls the command line in its own process, as a test or a notebook may, then tells
# which compile() that process is left with.
IN_PROCESS_DRIVER = """
import builtins, sys
from viztracer.main import main  # the name older code imports (viztracer.cli is the package)
real = builtins.compile
status = main(sys.argv[1:])
sys.__stderr__.write(f"status {status}, compile after: {builtins.compile.__qualname__}, "
                     f"original: {builtins.compile is real}\\n")
"""


DURING = "print('during:', compile.__qualname__)\n"


@pytest.mark.parametrize("program, args, status", [
    (DURING, [], 0),
    (DURING + "raise ValueError('x')\n", [], 1),
    (DURING + "import sys\nsys.exit(3)\n", [], 3),
    (DURING + "import atexit\natexit.register(print, 'at exit')\n", [], 0),
    ("x = (\n", [], 1),                        # never starts: a syntax error
    (DURING, ["-o", "out.txt"], 1),            # never starts: an output name refused
], ids=["normal", "exception", "sys-exit", "atexit", "syntax-error", "bad-output"])
def test_instrumenting_compile_does_not_outlive_the_program(tmp_path, program, args, status):
    write(tmp_path / "driver.py", IN_PROCESS_DRIVER)
    write(tmp_path / "prog.py", program)
    r = run_python(["driver.py", "--quiet", "--log_var", "x", "--magic_comment"] + args + ["--", "prog.py"],
                   tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"status {status}, compile after: compile, original: True\n" in r.stderr, r.stderr
    if program.startswith(DURING) and not args:
        # while the program ran, its compile() was the instrumenting one
        assert r.stdout.startswith("during: CodeMonkey.compile\n"), r.stdout
    else:
        assert "during" not in r.stdout


def test_bad_instrumentation_regex(tmp_path):
    write(tmp_path / "prog.py", "print('ran')\n")
    r = run_viztracer(["--log_var", "(", "--", "prog.py"], tmp_path)
    assert r.returncode == 1
    assert r.stdout.startswith("--log_var: ") and "Traceback" not in r.stdout + r.stderr


def test_viztracer_run_by_a_traced_program(tmp_path):
    write(tmp_path / "inner.py", FIB)
    write(tmp_path / "outer.py", f"""
        import subprocess
        subprocess.run([{VIZTRACER!r}, "-o", "inner.json", "inner.py"], check=True)
    """)
    r = run_viztracer(["-o", "outer.json", "outer.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Overwrite" not in r.stdout + r.stderr
    assert len(ours(r.stdout)) == 2
    assert short_names(load_trace(tmp_path / "inner.json")).count("fib") == 15
    assert "fib" not in short_names(load_trace(tmp_path / "outer.json"))


@pytest.mark.parametrize("module", [False, True], ids=["script", "python-m"])
def test_viztracer_run_by_a_quiet_traced_program_into_the_same_file(tmp_path, module):
    # The inner command writes the file the outer run will write too: it must still be
    # its own run (its summary, its file), not join the outer run as a member would.
    write(tmp_path / "inner.py", FIB)
    inner = [sys.executable, "-m", "viztracer"] if module else [VIZTRACER]
    write(tmp_path / "outer.py", f"""
        import shutil, subprocess
        r = subprocess.run({inner!r} + ["-o", "trace.json", "inner.py"], capture_output=True, text=True)
        print("inner status", r.returncode)
        print(r.stdout + r.stderr, end="")
        shutil.copy("trace.json", "inner_copy.json")
    """)
    r = run_viztracer(["--quiet", "-o", "trace.json", "outer.py"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("inner status 0\n"), r.stdout
    assert ours(r.stdout) == [f"Saved {len(events(load_trace(tmp_path / 'inner_copy.json')))} trace entries to "
                              f"{tmp_path / 'trace.json'} (view it with: vizviewer {tmp_path / 'trace.json'})"]
    assert len(r.stdout.splitlines()) == 2 and r.stderr == ""
    assert short_names(load_trace(tmp_path / "inner_copy.json")).count("fib") == 15
    outer = short_names(load_trace(tmp_path / "trace.json"))
    assert "fib" not in outer and "copy" in outer
