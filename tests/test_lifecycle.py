"""viztracer/lifecycle.py: one ExitSave saves once, on whichever way the process ends
first, and gives back what it replaced (os._exit, the SIGTERM handler) when disarmed."""

import os
import signal

from support import load_trace, run_script
from viztracer.lifecycle import ExitSave


def test_saves_once_and_gives_everything_back():
    calls = []
    before_exit, before_term = os._exit, signal.getsignal(signal.SIGTERM)
    saver = ExitSave(lambda: calls.append("saved"))
    saver.arm()
    assert os._exit is not before_exit
    assert signal.getsignal(signal.SIGTERM) is not before_term
    saver.save()
    saver.save()
    assert calls == ["saved"]
    saver.disarm()
    assert os._exit is before_exit
    assert signal.getsignal(signal.SIGTERM) is before_term


def test_two_armed_os_exit_stays_until_the_last_disarms():
    before = os._exit
    first, second = ExitSave(lambda: None).arm(sigterm=False), ExitSave(lambda: None).arm(sigterm=False)
    first.disarm()
    assert os._exit is not before
    second.disarm()
    assert os._exit is before


def test_ignored_sigterm_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        saver = ExitSave(lambda: None).arm()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        saver.disarm()
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_in_process_cli_run_leaves_nothing_behind(tmp_path):
    # (In a process of its own: the command line runs the process's atexit callbacks.)
    (tmp_path / "prog.py").write_text("x = sum(range(10))\n")
    source = """
        import os, signal, sys
        from viztracer.cli import main
        before_exit, before_term = os._exit, signal.getsignal(signal.SIGTERM)
        status = main(["--quiet", "-o", sys.argv[1], sys.argv[2]])
        print(status, os._exit is before_exit, signal.getsignal(signal.SIGTERM) is before_term)
    """
    result = run_script(tmp_path, source, str(tmp_path / "t.json"), str(tmp_path / "prog.py"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True", "True"]
    assert load_trace(tmp_path / "t.json")["traceEvents"]


def test_register_exit_saves_at_os_exit_and_before_exec(tmp_path):
    source = """
        import os, sys
        from viztracer import VizTracer
        def work():
            return 1
        tracer = VizTracer(output_file=sys.argv[2], verbose=0)
        tracer.register_exit()
        tracer.start()
        work()
        if sys.argv[1] == "os_exit":
            os._exit(4)
        os.execv(sys.executable, [sys.executable, "-c", "import sys; sys.exit(5)"])
    """
    for how, code in (("os_exit", 4), ("exec", 5)):
        out = tmp_path / f"{how}.json"
        result = run_script(tmp_path, source, how, str(out))
        assert result.returncode == code, (how, result.stderr)
        assert any(e.get("name", "").startswith("work ") for e in load_trace(out)["traceEvents"]), how


def test_collection_root_gives_os_exit_back_after_saving(tmp_path):
    source = """
        import os, sys
        from viztracer import VizTracer
        real = os._exit
        tracer = VizTracer(output_file=sys.argv[1], verbose=0, ignore_multiprocess=False)
        tracer.start()
        watched = os._exit is not real
        tracer.stop()
        tracer.save()
        print(watched, os._exit is real)
    """
    result = run_script(tmp_path, source, str(tmp_path / "t.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_sigterm_during_save_is_delivered_after_it(tmp_path):
    source = """
        import os, signal, sys
        from viztracer.lifecycle import ExitSave
        def save():
            os.kill(os.getpid(), signal.SIGTERM)  # handled at once: kept for later
            print("saved", flush=True)
        saver = ExitSave(save).arm()
        saver.save()
        print("not reached")
    """
    result = run_script(tmp_path, source)
    assert result.returncode == -signal.SIGTERM
    assert result.stdout.split() == ["saved"]
