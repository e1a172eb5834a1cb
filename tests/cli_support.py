"""Helpers for the command-line tests: run the real ``viztracer`` console script (or
``python -m viztracer``) and plain ``python`` in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any, Dict, List, Optional, Sequence

VIZTRACER = os.path.join(os.path.dirname(sys.executable), "viztracer")


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of the test process without what would change the programs'
    behaviour (a collection of an outer viztracer run, unbuffered output)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIZTRACER_COLLECT", "PYTHONUNBUFFERED", "COLUMNS", "PYTHONSAFEPATH")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


def write(path: Any, source: str) -> str:
    path = str(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(source))
    return path


def run_viztracer(args: Sequence[str], cwd: Any, module: bool = False, timeout: float = 60,
                  env: Optional[Dict[str, str]] = None, **kwargs: Any) -> subprocess.CompletedProcess:
    """``viztracer args...`` (or ``python -m viztracer args...``) in ``cwd``."""
    cmd: List[str] = [sys.executable, "-m", "viztracer"] if module else [VIZTRACER]
    return subprocess.run(cmd + list(args), cwd=str(cwd), capture_output=True, text=True,
                          timeout=timeout, env=clean_env(env), **kwargs)


def run_python(args: Sequence[str], cwd: Any, timeout: float = 60, env: Optional[Dict[str, str]] = None,
               **kwargs: Any) -> subprocess.CompletedProcess:
    """The same program untraced: ``python args...``."""
    return subprocess.run([sys.executable] + list(args), cwd=str(cwd), capture_output=True, text=True,
                          timeout=timeout, env=clean_env(env), **kwargs)


def ours(stdout: str) -> List[str]:
    """The lines of viztracer's own summary in an output."""
    return [line for line in stdout.splitlines() if line.startswith("Saved ") and "trace entries" in line]


def program_output(stdout: str) -> str:
    """An output without viztracer's own summary line."""
    return "".join(line for line in stdout.splitlines(keepends=True)
                   if not (line.startswith("Saved ") and "trace entries" in line))
