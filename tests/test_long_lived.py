"""A traced program's test suite, a notebook or a server runs for hours in one process:
the API, the cell magic, the viewer and the command line's in-process entry point, run
one after another there, leave nothing behind (threads, servers, ports, hooks,
patched builtins, signal handlers, exit callbacks, environment, argv, sys.path)."""

import json

import pytest

from support import run_script

SOURCE = r"""
import atexit, builtins, gc, json, os, signal, socket, sys, threading

def state():
    s = {
        "threads": sorted(t.name for t in threading.enumerate()),
        "profile": repr(sys.getprofile()), "trace": repr(sys.gettrace()),
        "compile": builtins.compile is REAL["compile"], "print": builtins.print is REAL["print"],
        "os_exit": os._exit is REAL["os_exit"],
        "sigterm": repr(signal.getsignal(signal.SIGTERM)), "sigint": repr(signal.getsignal(signal.SIGINT)),
        "atexit": atexit._ncallbacks(), "threading_atexits": len(threading._threading_atexits),
        "env": {k: os.environ.get(k) for k in ("PYTHONPATH", "VIZTRACER_COLLECT")},
        "argv": list(sys.argv), "path": list(sys.path), "main": sys.modules["__main__"].__name__,
        "excepthook": sys.excepthook is sys.__excepthook__, "gc_callbacks": len(gc.callbacks),
    }
    if sys.version_info >= (3, 12):
        s["tools"] = [sys.monitoring.get_tool(i) for i in range(6)]
    return s

REAL = {"compile": builtins.compile, "print": builtins.print, "os_exit": os._exit}
work = sys.argv[1]
before = state()

# 1. the API, with a child process collected
from viztracer import VizTracer
def f(n):
    return n if n < 2 else f(n - 1) + f(n - 2)
with VizTracer(output_file=os.path.join(work, "api.json"), verbose=0, ignore_multiprocess=False,
               log_print=True, log_gc=True):
    f(10)
    import subprocess
    subprocess.run([sys.executable, "-c", "print('child')"], check=True, capture_output=True)
after_api = state()

# 2. the cell magic
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
shell = InteractiveShell.instance()
ipython_ready = state()  # what IPython itself changes is IPython's
shell.run_line_magic("load_ext", "viztracer")
with capture_output():
    shell.run_cell_magic("viztracer", "--output_file " + os.path.join(work, "cell.json"), "x = sum(range(10))")
shell.run_line_magic("unload_ext", "viztracer")

# 3. the viewer, on the default port (the magic left it free)
from viztracer.viewer import viewer_main
assert viewer_main(["-s", "--once", "--timeout", "0.2", "-p", "9001", os.path.join(work, "api.json")]) == 0

# 4. the command line, in this process
with open(os.path.join(work, "prog.py"), "w") as p:
    p.write("import atexit, threading, sys\n"
            "t = threading.Thread(target=print, args=('thread',)); t.start()\n"
            "atexit.register(print, 'program atexit')\n"
            "sys.argv.append('changed')\n")
from viztracer.main import main
assert main(["--quiet", "-o", os.path.join(work, "cli.json"), os.path.join(work, "prog.py")]) == 0
after = state()

for name in ("api.json", "cell.json", "cli.json"):
    with open(os.path.join(work, name)) as t:
        assert json.load(t)["traceEvents"], name
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 9001))
print("STATES", json.dumps({"before": before, "after_api": after_api, "ipython_ready": ipython_ready,
                            "after": after}))
"""


def test_everything_in_one_process_leaves_nothing_behind(tmp_path):
    pytest.importorskip("IPython")
    result = run_script(tmp_path, SOURCE, str(tmp_path))
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("STATES ")]
    states = json.loads(line[len("STATES "):])
    assert states["after_api"] == states["before"]
    after, ready = dict(states["after"]), dict(states["ipython_ready"])
    # one atexit callback more: the program's own, left to this process's exit (below)
    assert after.pop("atexit") == ready.pop("atexit") + 1
    assert after == ready
    assert states["after"]["gc_callbacks"] == states["before"]["gc_callbacks"]
    # the program's own atexit callback runs when this process exits, as any code's would
    assert result.stdout.splitlines()[-1] == "program atexit"


HELD_SOURCE = r"""
import gc, os, sys, weakref
from viztracer import VizTracer

class Repr:
    def __call__(self, value):
        return "r"

class Payload:
    pass

namespace = {}
exec("def traced(x):\n    return x\n", namespace)
traced = namespace.pop("traced")
refs = {"code object": weakref.ref(traced.__code__)}
custom_repr, payload = Repr(), Payload()
refs["log_func_repr"], refs["event payload"] = weakref.ref(custom_repr), weakref.ref(payload)

tracer = VizTracer(verbose=0, log_func_args=True, log_func_repr=custom_repr, register_global=False)
tracer.start()
traced(1)
tracer.log_instant("payload", args={"n": 1}); tracer.add_func_args("obj", 1)
tracer._tracer.add_raw({"ph": "i", "name": "raw", "ts": 0, "args": {"p": repr(payload)}, "keep": payload})
tracer.stop()
snapshot = tracer._tracer.snapshot()
snapshot.release()
del tracer, snapshot, traced, custom_repr, payload
gc.collect()
print("ALIVE", sorted(name for name, ref in refs.items() if ref() is not None))
"""


def test_objects_a_tracer_held_go_with_it(tmp_path):
    # The tracer's state releases Python objects at safe points (rust/ffi/held.rs):
    # what it held (code objects of its function table, options, event payloads) must
    # still go when the snapshot and the tracer go, not wait for another tracer's call.
    result = run_script(tmp_path, HELD_SOURCE)
    assert result.returncode == 0, result.stderr
    assert "ALIVE []" in result.stdout.splitlines(), result.stdout
