"""One Python child process that reads a JSON task per line on stdin and answers a JSON line on
stdout: the worker of the process pools that kill a task at its time limit (PDF extraction in
`io/documents.py`, sympy checks in `dataflow_operators/math/pool.py`). The pools keep their own
scheduling; a worker only knows its task, its deadline and how to die."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any


class JsonLineWorker:
    def __init__(self, module: str, package_root: str, env: dict[str, str]):
        """Start `python -m module` with `package_root` first on its path and `env` added."""
        full = dict(os.environ)
        full["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, full.get("PYTHONPATH")) if p)
        full.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=full,
            text=True,
            bufsize=1,
        )
        self.ready = False  # set by the pool when the worker's {"ready": true} line arrives
        self.task: int | None = None
        self.deadline = 0.0
        self.started = time.monotonic()

    def send(self, index: int, payload: dict[str, Any], time_limit: float) -> None:
        self.task = index
        self.deadline = time.monotonic() + time_limit
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:  # already closed by the dead child's side: nothing left to free
                    pass
