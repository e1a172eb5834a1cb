"""Fixtures of the installed-package tests (``make dist-test``): the headless Chromium
of the viewer tests, which the smoke suite's ``vizviewer --once`` is opened in."""

from browser.conftest import PageWatch, browser, wait_ready  # noqa: F401  (fixtures and helpers shared)
