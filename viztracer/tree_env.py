"""The environment the root of a process tree gives its children, so that every Python
process started from it joins the collection:

- ``VIZTRACER_COLLECT`` holds the collection (JSON: the collector's endpoint, the
  tracer options a child inherits, the root's output file), and
- ``PYTHONPATH`` gets ``viztracer/_child`` in front, whose ``sitecustomize`` starts a
  tracer in every Python process started from then on (``subprocess``, ``os.system``,
  ``multiprocessing`` spawn and forkserver, their children in turn: child.py). The
  child's argv, ``sys.path[0]``, ``__main__`` and output are the ones it would have
  untraced.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Optional

ENV_CONFIG = "VIZTRACER_COLLECT"
CHILD_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child")


class TreeEnvironment:
    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        self._saved: Optional[Dict[str, Optional[str]]] = None

    def activate(self) -> None:
        """Children started from now on join the collection."""
        if self._saved is not None:
            return
        self._saved = {k: os.environ.get(k) for k in (ENV_CONFIG, "PYTHONPATH")}
        os.environ[ENV_CONFIG] = json.dumps(self.config)
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = CHILD_PATH + (os.pathsep + old if old else "")

    def deactivate(self) -> None:
        """The environment as it was (children started later run untraced)."""
        if self._saved is None:
            return
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = None


def without_collection(env: Mapping[str, str]) -> Dict[str, str]:
    """``env`` for a process that must not join any collection (a collector)."""
    out = {k: v for k, v in env.items() if k != ENV_CONFIG}
    path = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != CHILD_PATH]
    if path:
        out["PYTHONPATH"] = os.pathsep.join(path)
    else:
        out.pop("PYTHONPATH", None)
    return out
