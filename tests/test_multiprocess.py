"""Child processes end up in one trace (VizTracer(ignore_multiprocess=False); the
command line does the same by default)."""

import collections
import json
import os
import sys
import textwrap

import pytest

from support import run_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process model")

HEADER = """
    import os, sys, json, subprocess, signal, time, threading
    import multiprocessing as mp
    from viztracer import VizTracer

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
"""

MAIN = """
    if __name__ == "__main__":
        tracer = VizTracer(output_file="out.json", ignore_multiprocess=False, verbose=0)
        tracer.start()
        run()
        tracer.stop()
        tracer.save()
"""


def run_program(tmp_path, body, *args, timeout=120):
    # A temporary directory of its own: the collection directory must be gone after.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    result = run_script(tmp_path, HEADER + body + MAIN, *args, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp) == [], "a collection directory was left behind"
    with open(tmp_path / "out.json", encoding="utf-8") as f:
        return result, json.load(f)


def processes(trace):
    return {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
            if e.get("ph") == "M" and e["name"] == "process_name"}


def calls_per_pid(trace, prefix="fib "):
    return collections.Counter(e["pid"] for e in trace["traceEvents"]
                               if e.get("ph") == "X" and e["name"].startswith(prefix))


def test_subprocess_children(tmp_path):
    body = """
    def run():
        fib(4)
        code = "def f(n):\\n    return n if n < 2 else f(n - 1) + f(n - 2)\\nprint(f(5))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        print("child said", out.strip())
        subprocess.run(sys.executable + " -c 'import sys; sys.exit(3)'", shell=True)
        os.system(f"{sys.executable} -c 'print(7)'")
    """
    result, trace = run_program(tmp_path, body)
    assert "child said 5" in result.stdout and "7" in result.stdout.split()
    procs = processes(trace)
    assert len(procs) == 4, procs
    assert list(procs.values()).count("python -c") == 3
    counts = calls_per_pid(trace, "f ")
    assert sorted(counts.values()) == [15]
    assert calls_per_pid(trace)[os.getpid()] == 0  # the parent is another process
    assert sorted(calls_per_pid(trace).values()) == [9]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_processes_and_pools(tmp_path, method):
    body = f"""
    def target(n):
        fib(n)

    def run():
        ctx = mp.get_context("{method}")
        ps = [ctx.Process(target=target, args=(5,)) for _ in range(3)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        with ctx.Pool(2) as pool:
            assert pool.map(fib, [4, 5, 6]) == [3, 5, 8]
    """
    _, trace = run_program(tmp_path, body)
    procs = processes(trace)
    counts = calls_per_pid(trace)
    kind = {"fork": "Fork", "spawn": "Spawn", "forkserver": "ForkServer"}[method]
    process_pids = [p for p, n in procs.items() if n.startswith(f"{kind}Process-")]
    assert len(process_pids) == 3
    assert all(counts[p] == 15 for p in process_pids)
    pool_total = sum(counts[p] for p, n in procs.items() if n.startswith(f"{kind}PoolWorker-"))
    assert pool_total == 9 + 15 + 25
    assert "MainProcess" in procs.values()


def test_process_pool_executor(tmp_path):
    body = """
    from concurrent.futures import ProcessPoolExecutor

    def run():
        with ProcessPoolExecutor(max_workers=2) as ex:
            assert list(ex.map(fib, [5, 5, 5, 5])) == [5] * 4
    """
    _, trace = run_program(tmp_path, body)
    assert sum(calls_per_pid(trace).values()) == 4 * 15


def test_os_fork_child_does_not_inherit_the_parent_events(tmp_path):
    body = """
    def run():
        fib(6)
        pid = os.fork()
        if pid == 0:
            fib(3)
            os._exit(0)
        os.waitpid(pid, 0)
    """
    _, trace = run_program(tmp_path, body)
    counts = calls_per_pid(trace)
    assert sorted(counts.values()) == [5, 25]


DEPTH_PROGRAM = """
    import os, sys
    import multiprocessing as mp
    from viztracer import VizTracer

    def factorial(n):
        return 1 if n < 2 else n * factorial(n - 1)

    def deep(levels, then):
        # Starts the child from further down the parent's stack than the tracer began.
        return deep(levels - 1, then) if levels else then()

    def forked():
        pid = os.fork()
        if pid == 0:
            factorial(15)  # called from the frame the child starts in
            os._exit(0)
        os.waitpid(pid, 0)

    def process(method):
        p = mp.get_context(method).Process(target=factorial, args=(15,))
        p.start()
        p.join()

    if __name__ == "__main__":
        tracer = VizTracer(output_file="out.json", ignore_multiprocess=False, verbose=0, max_stack_depth=10)
        tracer.start()
        factorial(15)
        deep(4, lambda: process(sys.argv[1]))
        deep(4, forked)
        tracer.stop()
        tracer.save()
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_max_stack_depth_counts_from_the_frame_a_forked_child_starts_in(tmp_path, method):
    # Depth 10 from the frame that called start(): factorial at depths 1 to 10. A
    # multiprocessing child starts in Process._bootstrap: run() at depth 1, factorial
    # at 2 to 10 (9 frames), however deep the parent was. An os.fork() child starts in
    # the frame that called os.fork(): factorial at 1 to 10 again.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = run_script(tmp_path, DEPTH_PROGRAM, method, env=dict(os.environ, TMPDIR=str(tmp)))
    assert result.returncode == 0, result.stderr
    trace = json.loads((tmp_path / "out.json").read_text())
    procs = processes(trace)
    # (The os.fork() child is named after the program, sys.argv[0].)
    counts = {os.path.basename(procs[pid]): n for pid, n in calls_per_pid(trace, "factorial ").items()}
    kind = {"fork": "Fork", "forkserver": "ForkServer"}[method]
    assert counts == {"MainProcess": 10, f"{kind}Process-1": 9, "script.py": 10}, counts


def test_max_stack_depth_in_a_forked_child_on_the_command_line(tmp_path):
    # The same program traced and untraced by the command line: the script runs under
    # exec (depth 1) and <module> (2), so the parent records factorial at depths 3 to
    # 10; the forked child at 2 to 10, as it does with VizTracer 1.1.1.
    from cli_support import VIZTRACER, clean_env

    (tmp_path / "prog.py").write_text(textwrap.dedent("""
        import multiprocessing as mp

        def factorial(n):
            return 1 if n < 2 else n * factorial(n - 1)

        if __name__ == "__main__":
            factorial(15)
            p = mp.get_context("fork").Process(target=factorial, args=(15,))
            p.start()
            p.join()
    """))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = __import__("subprocess").run([VIZTRACER, "--max_stack_depth", "10", "-o", "all.json", "prog.py"],
                                          cwd=tmp_path, capture_output=True, text=True,
                                          env=clean_env({"TMPDIR": str(tmp)}), timeout=120)
    assert result.returncode == 0, result.stderr
    trace = json.loads((tmp_path / "all.json").read_text())
    procs = processes(trace)
    counts = {procs[pid]: n for pid, n in calls_per_pid(trace, "factorial ").items()}
    assert counts == {"MainProcess": 8, "ForkProcess-1": 9}, counts


def test_children_of_children(tmp_path):
    body = """
    LEAF = "def f(n):\\n    return n if n < 2 else f(n - 1) + f(n - 2)\\nf(4)"
    MIDDLE = ("import subprocess, sys\\n"
              f"subprocess.run([sys.executable, '-c', {LEAF!r}])\\n"
              f"subprocess.run([sys.executable, '-c', {LEAF!r}])\\n")

    def run():
        subprocess.run([sys.executable, "-c", MIDDLE])
    """
    _, trace = run_program(tmp_path, body)
    assert len(processes(trace)) == 4
    assert sorted(calls_per_pid(trace, "f ").values()) == [9, 9]


def test_children_that_raise_are_terminated_or_use_os_exit(tmp_path):
    body = """
    def raiser():
        fib(3)
        raise ValueError("child failed")

    def sleeper(done_with_fib):
        fib(4)
        done_with_fib.set()
        time.sleep(60)  # until terminated

    def quitter():
        fib(5)
        os._exit(7)

    def run():
        ctx = mp.get_context("spawn")
        done_with_fib = ctx.Event()
        a = ctx.Process(target=raiser)
        b = ctx.Process(target=sleeper, args=(done_with_fib,))
        c = ctx.Process(target=quitter)
        for p in (a, b, c):
            p.start()
        a.join()
        c.join()
        assert done_with_fib.wait(60), "the sleeper never got past fib(4)"
        b.terminate()
        b.join()
        print("exit codes", a.exitcode, b.exitcode, c.exitcode)
    """
    result, trace = run_program(tmp_path, body)
    assert f"exit codes 1 {-15} 7" in result.stdout
    assert "ValueError: child failed" in result.stderr
    assert sorted(calls_per_pid(trace).values()) == [5, 9, 15]


def test_a_child_killed_without_saving_does_not_hang_the_parent(tmp_path):
    body = """
    def run():
        # The child's own code runs once it has joined the collection (at start-up).
        code = "import time; print('joined', flush=True); time.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "joined"
        child.kill()
        child.wait()
        fib(3)
    """
    _, trace = run_program(tmp_path, body, timeout=60)
    assert sorted(calls_per_pid(trace).values()) == [5]


def test_stress_many_processes_with_threads(tmp_path):
    body = """
    def worker(n):
        threads = [threading.Thread(target=fib, args=(n,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def run():
        for _ in range(2):
            ctx = mp.get_context("fork")
            ps = [ctx.Process(target=worker, args=(6,)) for _ in range(8)]
            for p in ps:
                p.start()
            for p in ps:
                p.join()
    """
    _, trace = run_program(tmp_path, body, timeout=180)
    counts = calls_per_pid(trace)
    assert len(counts) == 16 and set(counts.values()) == {4 * 25}
    tids = collections.Counter((e["pid"], e["tid"]) for e in trace["traceEvents"]
                               if e.get("ph") == "X" and e["name"].startswith("fib "))
    assert len(tids) == 16 * 4 and set(tids.values()) == {25}


def test_single_process_by_default(tmp_path):
    source = HEADER + """
    if __name__ == "__main__":
        with VizTracer(output_file="out.json", verbose=0):
            subprocess.run([sys.executable, "-c", "print(1)"])
        print(os.environ.get("VIZTRACER_COLLECT"))
    """
    result = run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "None"]
    trace = json.loads((tmp_path / "out.json").read_text())
    assert len(processes(trace)) == 1


def test_a_child_started_just_before_the_end_is_waited_for(tmp_path):
    body = """
    def run():
        code = "def f(n):\\n    return n if n < 2 else f(n - 1) + f(n - 2)\\nf(6)"
        subprocess.Popen([sys.executable, "-c", code])  # not waited for by the program
    """
    _, trace = run_program(tmp_path, body)
    assert sorted(calls_per_pid(trace, "f ").values()) == [25]


# ------------------------------------------------------------------ through the command line

CLI_PROGRAM = """
import multiprocessing as mp, os, subprocess, sys, threading

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def worker(n):
    t = threading.Thread(target=fib, args=(n,), name="helper")
    t.start()
    fib(n)
    t.join()

if __name__ == "__main__":
    fib(4)
    out = subprocess.run([sys.executable, "-c", "print('from child', 6 * 7)"], capture_output=True, text=True)
    print(out.stdout.strip())
    for method in ("fork", "spawn"):
        p = mp.get_context(method).Process(target=worker, args=(5,))
        p.start()
        p.join()
    pid = os.fork()
    if pid == 0:
        fib(3)
        os._exit(0)
    os.waitpid(pid, 0)
    sys.exit(4)
"""


def test_command_line_collects_every_process_by_default(tmp_path):
    from cli_support import VIZTRACER, clean_env

    (tmp_path / "prog.py").write_text(CLI_PROGRAM)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = clean_env({"TMPDIR": str(tmp)})
    plain = __import__("subprocess").run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True,
                                         text=True, env=env, timeout=120)
    traced = __import__("subprocess").run([VIZTRACER, "-o", "all.json", "prog.py"], cwd=tmp_path,
                                          capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == traced.returncode == 4, traced.stderr
    assert plain.stdout.strip() == "from child 42"
    assert traced.stdout.splitlines()[0] == "from child 42"
    assert os.listdir(tmp) == []
    trace = json.loads((tmp_path / "all.json").read_text())
    procs = processes(trace)
    names = sorted(procs.values())
    assert "python -c" in names and "ForkProcess-1" in names and "SpawnProcess-2" in names
    assert "prog.py" in names  # the os.fork child, named after the program
    counts = calls_per_pid(trace)
    by_name = {procs[p]: c for p, c in counts.items()}
    assert by_name["ForkProcess-1"] == by_name["SpawnProcess-2"] == 2 * 15
    assert by_name["prog.py"] == 5
    threads = {(e["pid"], e["args"]["name"]) for e in trace["traceEvents"]
               if e.get("ph") == "M" and e["name"] == "thread_name"}
    spawn_pid = [p for p, n in procs.items() if n == "SpawnProcess-2"][0]
    assert (spawn_pid, "helper") in threads


def test_command_line_ignore_multiprocess(tmp_path):
    from cli_support import VIZTRACER, clean_env

    (tmp_path / "prog.py").write_text(CLI_PROGRAM)
    result = __import__("subprocess").run([VIZTRACER, "--ignore_multiprocess", "-o", "one.json", "prog.py"],
                                          cwd=tmp_path, capture_output=True, text=True, env=clean_env(),
                                          timeout=120)
    assert result.returncode == 4, result.stderr
    trace = json.loads((tmp_path / "one.json").read_text())
    assert list(processes(trace)) == [result_pid(trace)]


def result_pid(trace):
    (pid,) = {e["pid"] for e in trace["traceEvents"]}
    return pid


def test_children_of_a_single_process_trace_leave_its_file_alone(tmp_path):
    source = HEADER + """
    def slow(done_with_fib):
        fib(3)
        done_with_fib.set()
        time.sleep(60)  # until terminated

    if __name__ == "__main__":
        tracer = VizTracer(output_file="out.json", verbose=0)
        tracer.register_exit()
        tracer.start()
        fib(5)
        done_with_fib = mp.get_context("fork").Event()
        p = mp.get_context("fork").Process(target=slow, args=(done_with_fib,))
        p.start()
        q = mp.get_context("fork").Process(target=fib, args=(2,))
        q.start()
        q.join()
        assert done_with_fib.wait(60), "the slow child never got past fib(3)"
        p.terminate()
        p.join()
        print("child exit", p.exitcode, q.exitcode)
    """
    result = run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    assert "child exit -15 0" in result.stdout
    trace = json.loads((tmp_path / "out.json").read_text())
    assert len(processes(trace)) == 1
    assert sorted(calls_per_pid(trace).values()) == [15]


def test_ctrl_c_while_waiting_saves_what_was_collected(tmp_path):
    import signal
    import subprocess
    import time

    source = HEADER + """
    if __name__ == "__main__":
        tracer = VizTracer(output_file="out.json", ignore_multiprocess=False, verbose=1)
        tracer.start()
        fib(5)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        tracer.stop()
        print("saving", flush=True)
        tracer.save()
        print("saved", flush=True)
        child.kill()
    """
    script = tmp_path / "script.py"
    script.write_text(__import__("textwrap").dedent(source))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=str(tmp)))
    assert proc.stdout.readline().strip() == "saving"
    deadline = time.monotonic() + 30
    while "Waiting for" not in proc.stderr.readline() and time.monotonic() < deadline:
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "saved" in out
    trace = json.loads((tmp_path / "out.json").read_text())
    assert sorted(calls_per_pid(trace).values()) == [15]
    assert os.listdir(tmp) == []


LOKY_PROGRAMS = {
    "loky": """
        from loky import get_reusable_executor
        def square(x):
            return x * x
        if __name__ == "__main__":
            print(list(get_reusable_executor(max_workers=4).map(square, range(5))))
    """,
    "joblib": """
        from joblib import Parallel, delayed
        def square(x):
            return x * x
        if __name__ == "__main__":
            print(Parallel(n_jobs=2)(delayed(square)(i) for i in range(5)))
    """,
}


@pytest.mark.parametrize("library", sorted(LOKY_PROGRAMS))
def test_loky_workers_are_collected_and_the_program_exits(tmp_path, library):
    # loky starts each worker's own tracer from the parent's init_kwargs and keeps the
    # workers alive until its exit hook runs: the program must still end as untraced.
    pytest.importorskip(library)
    import subprocess
    import textwrap

    from cli_support import VIZTRACER, clean_env

    (tmp_path / "prog.py").write_text(textwrap.dedent(LOKY_PROGRAMS[library]))
    plain = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                           env=clean_env(), timeout=120)
    traced = subprocess.run([VIZTRACER, "-o", "out.json", "prog.py"], cwd=tmp_path, capture_output=True,
                            text=True, env=clean_env(), timeout=120)
    assert plain.returncode == traced.returncode == 0, traced.stderr
    assert traced.stdout.splitlines()[0] == plain.stdout.strip() == "[0, 1, 4, 9, 16]"
    assert "Overwrite tracer" not in traced.stderr
    assert len([line for line in traced.stdout.splitlines() if line.startswith("Saved ")]) == 1
    trace = json.loads((tmp_path / "out.json").read_text())
    root = trace["traceEvents"][0]["pid"]
    squares = calls_per_pid(trace, "square ")
    assert sum(squares.values()) == 5 and root not in squares, squares
    assert all(processes(trace)[pid].startswith("LokyProcess") for pid in squares)


def test_string_command_without_shell_fails_as_untraced(tmp_path):
    # A command string without shell=True names a program file: untraced it fails
    # (FileNotFoundError). Tracing does not turn it into an argv that runs (upstream
    # VizTracer 1.1.1 does; see docs/differences.md).
    import subprocess

    from cli_support import VIZTRACER, clean_env

    (tmp_path / "prog.py").write_text(
        "import subprocess, sys\n"
        "try:\n"
        "    subprocess.run(sys.executable + ' -c \"print(1)\"')\n"
        "except FileNotFoundError as e:\n"
        "    print('FileNotFoundError', e.filename == sys.executable + ' -c \"print(1)\"')\n")
    plain = subprocess.run([sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                           env=clean_env(), timeout=120)
    traced = subprocess.run([VIZTRACER, "-o", "out.json", "prog.py"], cwd=tmp_path, capture_output=True,
                            text=True, env=clean_env(), timeout=120)
    assert plain.stdout == "FileNotFoundError True\n"
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout.splitlines()[0] == "FileNotFoundError True"
