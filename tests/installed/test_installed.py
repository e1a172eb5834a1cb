"""The wheels and the sdist of ``make dist``, installed as a user installs them.

``make dist-test`` runs this (after ``make dist``), on the demo Python, with:

- ``VIZTRACER_DIST``: the dist/ folder;
- ``VIZTRACER_DIST_PYTHONS``: ``VERSION=INTERPRETER`` for each supported version, the
  interpreter being ``sid`` for those of the Debian sid root;
- ``VIZTRACER_SDIST_PYTHON``: the interpreter the sdist is built with.

Each wheel goes into a fresh virtualenv of its own interpreter: pyenv's 3.9-3.13 here,
Debian's 3.14 and 3.15 in the sid root, and Debian 11's own Python 3.9 in a bullseye
root (glibc 2.31), both roots made by tools/debian-root.sh. pip picks the wheel itself
from all of dist/ (``pip install --no-index --find-links``), in a scratch directory
outside the checkout, with a PATH that holds no compiler and no Rust toolchain; inside
a root only the scratch directory is mounted, so the checkout is not even there. Then
smoke.py runs against the installed package, and its ``vizviewer --once`` page is
opened in Chromium from here. The sdist is built once, with Rust on PATH, into a
virtualenv of its own, and passes the same smoke suite.
"""

import glob
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from browser.conftest import PageWatch, wait_ready

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
ROOTS = os.path.join(CHECKOUT, "tools", "debian-root.sh")
DIST = os.environ.get("VIZTRACER_DIST", "")
# A wheel is installed, imported and smoke-tested well within this; the sdist builds.
SMOKE_TIMEOUT = 600


def _version():
    with open(os.path.join(CHECKOUT, "Cargo.toml"), encoding="utf-8") as f:
        return re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)


VERSION = _version()


class Target:
    """Where a distribution is installed: an interpreter, here or inside a root."""

    def __init__(self, name, python, root=None, sdist=False, libc=None):
        self.name, self.python, self.root, self.sdist, self.libc = name, python, root, sdist, libc

    @property
    def tag(self):
        version = re.match(r"\d+\.\d+", self.name).group(0) if not self.sdist else None
        return "cp" + version.replace(".", "") if version else None

    def command(self, scratch, argv, env):
        """argv run with exactly env (plus nothing), in scratch: here, or in the root
        with scratch the only directory of this machine mounted."""
        argv = ["/usr/bin/env", "-i"] + [f"{k}={v}" for k, v in env.items()] + list(argv)
        if self.root:
            return [ROOTS, self.root, "isolated", scratch] + argv
        return argv


def _targets():
    targets = []
    for spec in os.environ.get("VIZTRACER_DIST_PYTHONS", "").split():
        version, python = spec.split("=", 1)
        if python == "sid":
            targets.append(Target(f"{version}-sid", f"/usr/bin/python{version}", root="sid"))
        else:
            targets.append(Target(version, python))
    # an old distribution: Debian 11, glibc 2.31, its own Python 3.9 (when the cp39 wheel is made)
    if any(t.name == "3.9" for t in targets):
        targets.append(Target("3.9-bullseye", "/usr/bin/python3.9", root="bullseye", libc="glibc 2.31"))
    targets.append(Target("sdist", os.environ.get("VIZTRACER_SDIST_PYTHON", sys.executable), sdist=True))
    return targets


@pytest.fixture(scope="session")
def dependency_wheels(tmp_path_factory):
    """objprint (viztracer's one dependency) as a wheel, for the installs without an index."""
    d = tmp_path_factory.mktemp("deps")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                    "-d", str(d), "objprint>=0.3.0"], check=True)
    return str(d)


def _clean_env(scratch, venv):
    return {"PATH": os.path.join(venv, "bin"), "HOME": scratch, "LANG": "C.UTF-8",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=SMOKE_TIMEOUT, **kw)
    assert r.returncode == 0, f"{argv} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


def _install(target, scratch, dependency_wheels):
    """A fresh virtualenv in scratch/venv with viztracer installed; returns its path."""
    venv = os.path.join(scratch, "venv")
    env = _clean_env(scratch, venv)
    _run(target.command(scratch, [target.python, "-m", "venv", venv], env), cwd=scratch)
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q"]
    if target.sdist:
        # built here, with the Rust toolchain on PATH (and maturin from the index)
        sdist = os.path.join(scratch, os.path.basename(_dist_files("*.tar.gz")[0]))
        shutil.copy(_dist_files("*.tar.gz")[0], sdist)
        build_env = dict(os.environ, PIP_FIND_LINKS=dependency_wheels)
        build_env.pop("VIRTUAL_ENV", None)
        build_env.pop("CARGO_TARGET_DIR", None)
        _run(pip + [sdist], cwd=scratch, env=build_env)
    else:
        wheels = os.path.join(scratch, "wheels")
        os.makedirs(wheels)
        for f in _dist_files("*.whl") + glob.glob(os.path.join(dependency_wheels, "*.whl")):
            shutil.copy(f, wheels)
        _run(target.command(scratch, pip + ["--no-index", "--find-links", wheels, "viztracer"], env), cwd=scratch)
    return venv


def _installed_tags(venv):
    infos = glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "viztracer-*.dist-info"))
    assert [os.path.basename(i) for i in infos] == [f"viztracer-{VERSION}.dist-info"], infos
    with open(os.path.join(infos[0], "WHEEL"), encoding="utf-8") as f:
        return [line.split(":", 1)[1].strip() for line in f if line.startswith("Tag:")]


def _dist_files(pattern):
    return sorted(glob.glob(os.path.join(DIST, f"viztracer-{VERSION}{pattern}")))


def _lines(proc):
    """The process's output lines, as they come, through a queue (None at the end)."""
    q = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line.rstrip("\n"))
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


def _check_viewer(browser, url, trace_path):
    """The smoke trace, opened from the installed vizviewer: every slice loaded, both
    processes there, the smoke functions drawn, nothing logged or fetched elsewhere."""
    with open(trace_path, encoding="utf-8") as f:
        trace = json.load(f)
    slices = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(60000)
        watch = PageWatch(page)
        page.goto(url)
        wait_ready(page)
        counts = page.evaluate("window.vizviewer.counts")
        assert counts["slices"] == len(slices)
        assert counts["processes"] >= 2
        for function in ("smoke_thread_work", "smoke_child_work", "smoke_task"):
            first = min((e for e in slices if e["name"].startswith(function + " (")), key=lambda e: e["ts"])
            rect = page.evaluate("(q) => window.vizviewer.rectOf(q)", {"name": first["name"], "ts": first["ts"]})
            assert rect is not None, function
        watch.check_clean([url])
    finally:
        context.close()


@pytest.mark.parametrize("target", _targets(), ids=lambda t: t.name)
def test_installed_package_passes_the_smoke_suite(target, tmp_path, dependency_wheels, browser):
    if target.sdist:
        assert len(_dist_files(".tar.gz")) == 1, f"no sdist of {VERSION} in {DIST}"
    else:
        assert len(_dist_files(f"-{target.tag}-*.whl")) == 1, f"no {target.tag} wheel of {VERSION} in {DIST}"
    scratch = str(tmp_path)
    assert not scratch.startswith(CHECKOUT + os.sep)
    venv = _install(target, scratch, dependency_wheels)
    tags = _installed_tags(venv)
    if target.sdist:
        assert tags and all(t.endswith("-linux_x86_64") for t in tags), tags
    else:
        assert f"{target.tag}-{target.tag}-manylinux_2_17_x86_64" in tags, tags

    shutil.copy(os.path.join(HERE, "smoke.py"), scratch)
    argv = target.command(scratch, [os.path.join(venv, "bin", "python"), "smoke.py", VERSION, CHECKOUT],
                          _clean_env(scratch, venv))
    # a session of its own: a smoke run that hangs is killed whole, inside a root too
    proc = subprocess.Popen(argv, cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines, seen = _lines(proc), []
    deadline = time.monotonic() + SMOKE_TIMEOUT
    try:
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                break
            seen.append(line)
            if line.startswith("VIEWER "):
                _check_viewer(browser, line.split(" ", 1)[1], os.path.join(scratch, "cli.json"))
        assert proc.wait(timeout=max(1, deadline - time.monotonic())) == 0, "\n".join(seen)
    except queue.Empty:
        pytest.fail("the smoke suite did not finish in time:\n" + "\n".join(seen))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print("\n".join(seen))  # shown with -rP, and on a failure below
    assert seen[-1] == "SMOKE OK", "\n".join(seen)
    environment = next(line for line in seen if line.startswith("environment: "))
    if target.libc:
        assert f", {target.libc};" in environment, environment
    if target.root:
        assert "checkout not reachable" in environment, environment
    assert any(line.startswith("viewer: ") for line in seen), "\n".join(seen)
