"""Saving is atomic: a save that fails (a full disk, a directory gone, a read-only
file system) leaves what was at the path as it was and no temporary file behind, says
why in one line, never a traceback, and the command line exits non-zero.

The full disk is a real one: a 64 KiB tmpfs mounted for the test (root only), which a
trace of a few thousand calls does not fit in."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from cli_support import clean_env, run_python, run_viztracer, write
from support import embedded_trace, load_trace, short_names
from viztracer import VizTracer
from viztracer.trace_writer import SaveError, atomic_file

PREVIOUS = b"the previous trace, which a failed save must leave as it is\n"

FIB = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
"""


def with_fib(body):
    """A program: ``fib``, then ``body`` (dedented)."""
    return FIB + textwrap.dedent(body)


# fib(21) makes 35 421 calls: 4 MB of JSON, more than 64 KiB as .gz or .html too.
CALLS_21 = 35421


def mount_tmpfs(directory, options):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    os.makedirs(directory)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"can't mount a tmpfs here: {r.stderr.strip() or r.returncode}")


@pytest.fixture
def small_fs(tmp_path):
    """``mount(options="size=64k")``: a directory on a fresh tmpfs, unmounted after the test."""
    mounted = []

    def mount(options="size=64k"):
        directory = tmp_path / f"fs{len(mounted)}"
        mount_tmpfs(directory, options)
        mounted.append(directory)
        return directory

    yield mount
    for directory in mounted:
        subprocess.run(["umount", str(directory)], check=True)


def full_disk(small_fs, name, size="64k"):
    """A small file system with the previous trace at ``name``; (directory, path)."""
    directory = small_fs(f"size={size}")
    path = directory / name
    path.write_bytes(PREVIOUS)
    return directory, path


def failure(path, reason="No space left on device"):
    return f"VizTracer: could not save the trace to {path}: {reason} (the previous {path.name} is unchanged)\n"


def assert_untouched(directory, path):
    assert path.read_bytes() == PREVIOUS
    assert os.listdir(directory) == [path.name]  # no temporary file left


# ---------------------------------------------------------------------- the command line

@pytest.mark.parametrize("name, status", [("x.json", 0), ("x.json", 3), ("x.json.gz", 0), ("x.html", 0)])
def test_cli_save_to_a_full_disk(tmp_path, small_fs, name, status):
    directory, path = full_disk(small_fs, name)
    write(tmp_path / "prog.py", with_fib(f"""
        fib(21)
        print("the program's output")
        raise SystemExit({status})
    """))
    r = run_viztracer(["-o", str(path), "prog.py"], tmp_path)
    assert r.stdout == "the program's output\n"
    assert r.stderr == failure(path)
    # A program that failed keeps its status; one that succeeded did not, for the trace is lost.
    assert r.returncode == (status or 1)
    assert_untouched(directory, path)


def test_cli_merge_of_several_processes_to_a_full_disk(tmp_path, small_fs):
    directory, path = full_disk(small_fs, "x.json")
    write(tmp_path / "child.py", FIB + "fib(20)\n")
    write(tmp_path / "prog.py", with_fib("""
        import subprocess, sys
        subprocess.run([sys.executable, "child.py"], check=True)
        fib(20)
        print("both ran")
    """))
    r = run_viztracer(["-o", str(path), "prog.py"], tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (1, "both ran\n", failure(path))
    assert_untouched(directory, path)


@pytest.mark.parametrize("end, status", [
    ("os._exit(0)", 1),  # what the status can still say
    ("os._exit(4)", 4),
    ("os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM),  # dies from the signal, as untraced
])
def test_cli_exit_paths_say_one_line(tmp_path, small_fs, end, status):
    directory, path = full_disk(small_fs, "x.json")
    write(tmp_path / "prog.py", with_fib(f"""
        import os, signal
        fib(21)
        print("ending", flush=True)
        {end}
    """))
    r = run_viztracer(["-o", str(path), "prog.py"], tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (status, "ending\n", failure(path))
    assert_untouched(directory, path)


@pytest.mark.parametrize("mode", ["combine", "compress"])
def test_cli_trace_files_to_a_full_disk(tmp_path, small_fs, mode):
    write(tmp_path / "prog.py", FIB + "fib(21)\n")
    assert run_viztracer(["--quiet", "-o", "big.json", "prog.py"], tmp_path).returncode == 0
    big = str(tmp_path / "big.json")
    if mode == "compress":
        # .cvf is compact: fib(21) takes about 32 KB
        directory, path = full_disk(small_fs, "x.cvf", size="16k")
        args = ["--compress", big, "-o", str(path)]
    else:
        directory, path = full_disk(small_fs, "x.json")
        args = ["--combine", big, "-o", str(path)]
    r = run_viztracer(args, tmp_path)
    assert (r.returncode, r.stderr) == (1, failure(path))
    assert "Traceback" not in r.stdout
    assert_untouched(directory, path)


def test_cli_read_only_file_system(tmp_path, small_fs):
    directory = small_fs("size=1m")
    path = directory / "x.json"
    path.write_bytes(PREVIOUS)
    subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
    write(tmp_path / "prog.py", FIB + "fib(5)\n")
    r = run_viztracer(["-o", str(path), "prog.py"], tmp_path)
    assert (r.returncode, r.stderr) == (1, failure(path, "Read-only file system"))
    assert_untouched(directory, path)


REMOVER = """
import shutil
from viztracer import get_tracer

class RemovesTheDirectory:
    # The trace's payloads are turned into text while it is being saved: this one
    # takes the output directory away at that moment.
    def __repr__(self):
        shutil.rmtree({directory!r}, ignore_errors=True)
        return "gone"
"""


def test_cli_directory_removed_while_saving(tmp_path):
    directory = tmp_path / "out"
    directory.mkdir()
    path = directory / "x.json"
    write(tmp_path / "prog.py", REMOVER.format(directory=str(directory)) + """
get_tracer().add_instant("remover", {"o": RemovesTheDirectory()})
""")
    r = run_viztracer(["-o", str(path), "prog.py"], tmp_path)
    assert r.returncode == 1
    assert r.stderr == (f"VizTracer: could not save the trace to {path}: No such file or directory "
                        "(nothing was written)\n")
    assert not directory.exists()


def test_cli_output_into_a_missing_directory_of_a_trace_file_mode(tmp_path):
    write(tmp_path / "prog.py", FIB + "fib(5)\n")
    assert run_viztracer(["--quiet", "-o", "small.json", "prog.py"], tmp_path).returncode == 0
    r = run_viztracer(["--compress", "small.json", "-o", "missing/x.cvf"], tmp_path)
    assert r.returncode == 1
    assert r.stderr == ("VizTracer: could not save the trace to missing/x.cvf: No such file or directory "
                        "(nothing was written)\n")


# ---------------------------------------------------------------------- the API

def traced_fib(n):
    ns = {}
    exec(FIB, ns)
    tracer = VizTracer(verbose=0)
    tracer.start()
    ns["fib"](n)
    tracer.stop()
    return tracer


@pytest.mark.parametrize("name", ["x.json", "x.json.gz", "x.html"])
def test_api_save_to_a_full_disk(tmp_path, small_fs, name):
    directory, path = full_disk(small_fs, name)
    tracer = traced_fib(21)
    with pytest.raises(OSError) as raised:
        tracer.save(str(path))
    assert isinstance(raised.value, SaveError) and raised.value.errno == errno.ENOSPC
    assert str(raised.value) + "\n" == failure(path)[len("VizTracer: "):]
    assert_untouched(directory, path)
    # What was recorded is still there: saved elsewhere, it is complete.
    tracer.save(str(tmp_path / name))
    if name.endswith(".html"):
        trace, _ = embedded_trace(tmp_path / name)
    else:
        trace = load_trace(tmp_path / name)
    assert short_names(trace).count("fib") == CALLS_21


def test_api_directory_removed_while_saving(tmp_path):
    directory = tmp_path / "out"
    directory.mkdir()
    ns = {}
    exec(REMOVER.format(directory=str(directory)), ns)
    tracer = VizTracer(verbose=0)
    tracer.start()
    tracer.add_instant("remover", {"o": ns["RemovesTheDirectory"]()})
    tracer.stop()
    with pytest.raises(SaveError, match="No such file or directory"):
        tracer.save(str(directory / "x.json"))
    assert not directory.exists()


def test_api_directory_removed_before_saving_is_made_again(tmp_path):
    directory = tmp_path / "out"
    directory.mkdir()
    tracer = traced_fib(5)
    shutil.rmtree(directory)
    tracer.save(str(directory / "x.json"))
    assert os.listdir(directory) == ["x.json"]
    assert short_names(load_trace(directory / "x.json")).count("fib") == 15


@pytest.mark.parametrize("end, status", [
    ("", 0),  # at interpreter exit: the status is the program's
    ("os._exit(0)", 1),
    ("os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM),
])
def test_register_exit_says_one_line(tmp_path, small_fs, end, status):
    directory, path = full_disk(small_fs, "x.json")
    write(tmp_path / "prog.py", with_fib(f"""
        import os, signal
        from viztracer import VizTracer
        tracer = VizTracer(output_file={str(path)!r}, verbose=0)
        tracer.register_exit()
        tracer.start()
        fib(21)
        print("ending", flush=True)
        {end}
    """))
    r = run_python(["prog.py"], tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (status, "ending\n", failure(path))
    assert_untouched(directory, path)


# ---------------------------------------------------------------------- the helper

def test_atomic_file_keeps_the_target_until_it_is_complete(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(PREVIOUS)
    os.chmod(path, 0o600)
    with pytest.raises(KeyError):
        with atomic_file(str(path)) as f:
            f.write(b"half")
            assert path.read_bytes() == PREVIOUS  # written elsewhere meanwhile
            raise KeyError("the writer failed")
    assert_untouched(tmp_path, path)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with atomic_file(str(link)) as f:
        f.write(b"whole")
    # Through a link, the link stays and its target is replaced, with its permissions.
    assert link.is_symlink() and path.read_bytes() == b"whole"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["link.json", "x.json"]


def test_no_temporary_file_is_left_by_an_interrupted_save(tmp_path):
    path = tmp_path / "x.json"
    r = subprocess.run([sys.executable, "-c", f"""
from viztracer.trace_writer import atomic_file
with atomic_file({str(path)!r}) as f:
    f.write(b"half")
    raise KeyboardInterrupt
"""], capture_output=True, text=True)
    assert r.returncode != 0 and "KeyboardInterrupt" in r.stderr
    assert os.listdir(tmp_path) == []


def test_install_stop_signal_says_one_line_and_the_program_goes_on(tmp_path, small_fs):
    directory, path = full_disk(small_fs, "x.json")
    write(tmp_path / "prog.py", with_fib(f"""
        import time
        from viztracer import VizTracer
        tracer = VizTracer(output_file={str(path)!r}, verbose=0)
        tracer.install()
        print("ready", flush=True)
        while True:
            fib(15)
            time.sleep(0.001)
    """))
    proc = subprocess.Popen([sys.executable, "prog.py"], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert proc.stdout.readline() == "ready\n"
        r = run_viztracer(["--attach_installed", str(proc.pid), "-t", "0.3"], tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        # The save failed inside the program's signal handler: it says so, and the
        # program is not interrupted by an exception.
        assert proc.stderr.readline() == failure(path)
        assert proc.poll() is None
        assert_untouched(directory, path)
    finally:
        proc.kill()
        _, rest = proc.communicate()
    assert "Traceback" not in rest
