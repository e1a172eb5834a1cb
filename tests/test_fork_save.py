"""VizTracer.fork_save: a forked child saves what was recorded so far while the
parent goes on tracing."""

import json

from support import run_script


def test_fork_save_in_a_loop_gives_one_growing_file_per_call(tmp_path):
    source = """
        import json, multiprocessing, os, sys
        from viztracer import VizTracer
        multiprocessing.set_start_method("fork")
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        tracer = VizTracer(output_file=os.path.join(sys.argv[1], "final.json"), verbose=0)
        tracer.start()
        children = []
        for i in range(3):
            fib(4)
            child = tracer.fork_save(os.path.join(sys.argv[1], f"{i}.json"))
            children.append(child)
            child.join()
        fib(4)
        tracer.stop()
        tracer.save()
        print(json.dumps({"pid": os.getpid(), "codes": [c.exitcode for c in children],
                          "process": all(isinstance(c, multiprocessing.Process) for c in children),
                          "daemon": any(c.daemon for c in children),
                          "other_pids": [c.pid != os.getpid() for c in children]}))
    """
    result = run_script(tmp_path, source, str(tmp_path))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.splitlines()[-1])
    assert info["codes"] == [0, 0, 0] and info["process"] and not info["daemon"] and all(info["other_pids"])

    def fibs(name):
        with open(tmp_path / name) as f:
            trace = json.load(f)
        calls = [e for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"].startswith("fib ")]
        assert {e["pid"] for e in calls} == {info["pid"]}
        return len(calls)

    # fib(4) makes 9 calls: each file has what was recorded up to its call
    assert [fibs(f"{i}.json") for i in range(3)] == [9, 18, 27]
    assert fibs("final.json") == 36  # the parent kept everything and went on


def test_fork_save_needs_the_fork_start_method(tmp_path):
    source = """
        import multiprocessing
        from viztracer import VizTracer
        multiprocessing.set_start_method("spawn")
        tracer = VizTracer(verbose=0)
        try:
            tracer.fork_save("x.json")
        except RuntimeError as e:
            print("RuntimeError:", e)
    """
    result = run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    assert "RuntimeError: fork_save needs multiprocessing's 'fork' start method" in result.stdout
    assert not (tmp_path / "x.json").exists()
