"""Fixtures for every test."""

import builtins
import os
import signal

import pytest

from viztracer import VizTracer

# tests/installed/ tries the wheels and the sdist of `make dist`: `make dist-test` runs it
# (setting VIZTRACER_DIST), never the suite of each Python version.
collect_ignore = [] if os.environ.get("VIZTRACER_DIST") else ["installed"]

# A shell without job control starts background commands with SIGINT ignored, and the
# processes the tests start would inherit that (Python then installs no KeyboardInterrupt
# handler). The tests that send SIGINT compare with Python's default behaviour: give
# this process (and so, through exec, its children) the default back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def tracer(tmp_path):
    """A quiet tracer writing to ``<tmp_path>/result.json`` (stopped after the test)."""
    t = VizTracer(output_file=str(tmp_path / "result.json"), verbose=0)
    yield t
    t.stop()


@pytest.fixture(autouse=True)
def _no_tracer_left_behind():
    """A test must not leave a tracer collecting (it would trace the next tests)."""
    yield
    tracer = builtins.__dict__.pop("__viz_tracer__", None)
    if tracer is not None and tracer.enable:
        tracer.stop()
        pytest.fail("the test left a tracer running")
