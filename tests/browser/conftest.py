"""Fixtures for the viewer tests in a real headless Chromium (Debian's /usr/bin/chromium,
driven by Python Playwright; never a browser download).

The tests run on one Python version only (3.11 by default, or the one in
VIZVIEWER_BROWSER_PYTHON), since they test the page, not the interpreter. Where
Playwright or Chromium is missing they are skipped, except when CI=true: there a
missing browser is a failure.
"""

import os
import sys
import tempfile

import pytest

CHROMIUM = os.environ.get("VIZVIEWER_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BROWSER_PYTHON = os.environ.get("VIZVIEWER_BROWSER_PYTHON", "3.11")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"browser tests can't run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


# Module scope: Playwright's sync API keeps an asyncio loop marked as running in this
# thread while it is started, which would break asyncio.run() in later test modules.
@pytest.fixture(scope="module")
def browser():
    here = "%d.%d" % sys.version_info[:2]
    if here != BROWSER_PYTHON:
        pytest.skip(f"the browser tests run on Python {BROWSER_PYTHON} only (this is {here})")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Python Playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium, or make browser-deps)")
    pw = sync_playwright().start()
    # Playwright gives every launch a new, empty profile directory of its own.
    b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="session")
def screenshot_dir():
    d = os.environ.get("VIZVIEWER_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="vizviewer-shots-")
    os.makedirs(d, exist_ok=True)
    return d


class PageWatch:
    """A page plus everything it logged and requested."""

    def __init__(self, page):
        self.page = page
        self.console_errors = []
        self.page_errors = []
        self.requests = []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def check_clean(self, allowed_prefixes):
        assert self.page_errors == [], self.page_errors
        assert self.console_errors == [], self.console_errors
        outside = [u for u in self.requests if not u.startswith(tuple(allowed_prefixes))]
        assert outside == [], f"requests that left the local server: {outside}"


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30000)
    w = PageWatch(page)
    yield w
    context.close()


@pytest.fixture
def serve():
    """serve(path) -> URL of a vizviewer server (in a thread) for that file."""
    from viztracer.viewer import TraceServer

    servers = []

    def start(path):
        s = TraceServer(path, port=0).start()
        servers.append(s)
        return s.url
    yield start
    for s in servers:
        s.stop(wait_inflight=0.5)


def wait_ready(page):
    page.wait_for_function("window.vizviewer && (window.vizviewer.ready || window.vizviewer.error !== null)")
    err = page.evaluate("window.vizviewer.error")
    assert err is None, err


@pytest.fixture
def open_trace(watched, serve):
    """open_trace(path) serves the trace, opens the viewer on it and waits until it
    is drawn; returns the base URL."""
    def open_(path):
        if path.endswith(".html") and not path.startswith("http"):
            url = "file://" + os.path.abspath(path)
        else:
            url = serve(path)
        watched.page.goto(url)
        wait_ready(watched.page)
        return url
    return open_
