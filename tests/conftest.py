"""Fixtures for every test."""

import builtins

import pytest


@pytest.fixture(autouse=True)
def _no_tracer_left_behind():
    """A test must not leave a tracer collecting (it would trace the next tests)."""
    yield
    tracer = builtins.__dict__.pop("__viz_tracer__", None)
    if tracer is not None and tracer.enable:
        tracer.stop()
        pytest.fail("the test left a tracer running")
