"""The smoke suite of an installed viztracer (a wheel from dist/, or the sdist).

test_installed.py copies this file into a scratch directory outside the checkout and
runs it there with the Python of the virtualenv viztracer was installed into, with
PATH holding that virtualenv's bin/ only:

    python smoke.py VERSION CHECKOUT

It uses the standard library and the installed package only (it runs on 3.9 too).
It checks the environment (no compiler or Rust on PATH, the package imported from the
virtualenv, the checkout nowhere on sys.path), then runs, as a user would:

1. the ``viztracer`` command on a program with threads, a multiprocessing child and
   asyncio, compared with the same program run untraced, and reads the trace back;
2. ``VizTracer`` inline with ``get_tracer().add_instant(...)``, saved as .json.gz and
   read back;
3. ``vizviewer --once`` on the first trace: it prints ``VIEWER <url>`` and waits until
   the harness has loaded the page in Chromium and vizviewer has exited.

The last line is ``SMOKE OK``; a failure prints ``SMOKE FAIL: <why>`` and exits 1.
"""

import gzip
import json
import os
import platform
import shutil
import subprocess
import sys

PROGRAM = '''\
import asyncio
import multiprocessing
import sys
import threading


def smoke_thread_work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def smoke_child_work(queue):
    queue.put(smoke_thread_work(1000))


async def smoke_task(i):
    await asyncio.sleep(0.001)
    return i * 2


async def smoke_async_main():
    return await asyncio.gather(*(smoke_task(i) for i in range(3)))


def main():
    threads = [threading.Thread(target=smoke_thread_work, args=(5000,), name="smoke-%d" % i) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=smoke_child_work, args=(queue,))
    child.start()
    result = queue.get(timeout=120)
    child.join()
    print("child", result, "exit", child.exitcode)
    print("async", asyncio.run(smoke_async_main()))
    print("argv", sys.argv[1:])
    sys.exit(3)


if __name__ == "__main__":
    main()
'''

INLINE = '''\
from viztracer import VizTracer, get_tracer


def smoke_inline_work():
    return sorted(range(100), reverse=True)[0]


with VizTracer(output_file="inline.json.gz", verbose=0):
    smoke_inline_work()
    get_tracer().add_instant("smoke-instant", args={"answer": 42})
print("inline done")
'''

# What must not be reachable: a C compiler, a linker driver, the Rust toolchain.
BUILD_TOOLS = ("cc", "gcc", "c++", "g++", "clang", "cargo", "rustc", "rustup", "maturin")


class SmokeFailure(Exception):
    pass


def check(condition, why):
    if not condition:
        raise SmokeFailure(why)


def say(line):
    print(line, flush=True)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)


def inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def environment(version, checkout):
    import importlib.metadata

    import viztracer

    found = {tool: shutil.which(tool) for tool in BUILD_TOOLS}
    check(not any(found.values()), "build tools on PATH: %s" % {k: v for k, v in found.items() if v})
    check(inside(viztracer.__file__, sys.prefix), "viztracer imported from %s, not the virtualenv %s"
          % (viztracer.__file__, sys.prefix))
    on_path = [p for p in sys.path if p and inside(p, checkout)]
    check(not on_path and not inside(os.getcwd(), checkout), "the checkout is reachable: %s" % on_path)
    check(viztracer.__version__ == version, "viztracer.__version__ is %r" % viztracer.__version__)
    check(importlib.metadata.version("viztracer") == version, "metadata version %r"
          % importlib.metadata.version("viztracer"))
    cli = run(["viztracer", "--version"])
    check(cli.returncode == 0 and cli.stdout.strip() == version, "viztracer --version: %r" % (cli.stdout + cli.stderr))
    say("environment: viztracer %s from %s; Python %s, %s %s; checkout %s; no build tools on PATH" % (
        version, os.path.dirname(viztracer.__file__), platform.python_version(), *platform.libc_ver(),
        "present, not on sys.path" if os.path.exists(os.path.join(checkout, "Cargo.toml")) else "not reachable"))


def x_events(trace, function):
    return [e for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"].startswith(function + " (")]


def cli_run(version):
    with open("prog.py", "w") as f:
        f.write(PROGRAM)
    untraced = run([sys.executable, "prog.py", "one", "--two"])
    traced = run(["viztracer", "--quiet", "-o", "cli.json", "prog.py", "one", "--two"])
    check(untraced.returncode == 3, "the program itself failed: %r" % (untraced.stdout + untraced.stderr))
    seen = [(r.returncode, r.stdout, r.stderr) for r in (traced, untraced)]
    check(seen[0] == seen[1], "traced run differs from the untraced one: %r against %r" % tuple(seen))
    with open("cli.json") as f:
        trace = json.load(f)
    check(trace["viztracer_metadata"]["version"] == version, "metadata %r" % trace["viztracer_metadata"])
    main_pids = {e["pid"] for e in x_events(trace, "main")}
    check(len(main_pids) == 1, "main() in %s processes" % len(main_pids))
    main_pid = main_pids.pop()
    workers = x_events(trace, "smoke_thread_work")
    check(len({(e["pid"], e["tid"]) for e in workers if e["pid"] == main_pid}) >= 2,
          "smoke_thread_work not seen on two threads of the main process")
    child = x_events(trace, "smoke_child_work")
    check(child and all(e["pid"] != main_pid for e in child), "the multiprocessing child's events are missing")
    check(len(x_events(trace, "smoke_task")) >= 3, "the asyncio tasks' events are missing")
    pids = {e["pid"] for e in trace["traceEvents"] if e.get("ph") == "M" and e["name"] == "process_name"}
    check(len(pids) >= 2, "process names of %s processes" % len(pids))
    check(any(name.endswith("prog.py") for name in trace["file_info"]["files"]), "prog.py's source is not in file_info")
    say("cli: %d events, %d processes, exit code 3 and output as untraced" % (len(trace["traceEvents"]), len(pids)))


def inline_run():
    with open("inline.py", "w") as f:
        f.write(INLINE)
    r = run([sys.executable, "inline.py"])
    check(r.returncode == 0 and r.stdout == "inline done\n", "inline run: %r" % (r.stdout + r.stderr))
    with gzip.open("inline.json.gz", "rt") as f:
        trace = json.load(f)
    check(len(x_events(trace, "smoke_inline_work")) == 1, "smoke_inline_work is not in inline.json.gz")
    instants = [e for e in trace["traceEvents"] if e.get("ph") == "i" and e["name"] == "smoke-instant"]
    check(len(instants) == 1 and instants[0]["args"] == {"answer": 42}, "the instant event: %r" % instants)
    say("inline: %d events read back from inline.json.gz" % len(trace["traceEvents"]))


def viewer_run():
    viewer = subprocess.Popen(["vizviewer", "-s", "--once", "-p", "0", "--timeout", "300", "cli.json"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    for line in viewer.stdout:
        if "view your trace on " in line:
            url = line.split("view your trace on ", 1)[1].strip()
            break
    check(url is not None, "vizviewer printed no URL")
    say("VIEWER " + url)
    rest = viewer.stdout.read()
    check(viewer.wait(timeout=600) == 0, "vizviewer --once exited with %s: %s" % (viewer.returncode, rest))
    say("viewer: vizviewer --once served the page and exited")


def main():
    version, checkout = sys.argv[1], sys.argv[2]
    try:
        environment(version, checkout)
        cli_run(version)
        inline_run()
        viewer_run()
    except (SmokeFailure, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
        say("SMOKE FAIL: %s: %s" % (type(e).__name__, e))
        return 1
    say("SMOKE OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
