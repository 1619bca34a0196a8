"""One run at a time per output file.

A run directory lock does not stop two runs with different `--run-dir` from writing the same
output, where the last to finish would silently replace the other's file. `OutputLock` holds
an exclusive `flock` on a hidden file beside each output (`out/.clean.jsonl.lock`) for the
whole run. The kernel drops the lock when the process dies, however it dies, so a crash never
leaves a stale lock; the lock file itself is removed on release. It records who holds it, so
the run that is refused can say which run is in its way.

Removing a lock file is safe only because every taker checks, after `flock` succeeded, that
the path still names the file it locked: a taker that locked a file which its holder had
just unlinked notices and starts over with the new file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from dataflow_cli.errors import DataflowError

_WRITE_HINT = "check that the output directory can be created and is writable, or choose another output path"


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


class OutputLock:
    """Exclusive claim on output files for one run: `acquire()` or a DataflowError naming the
    run that holds one of them; `release()` (idempotent) gives everything back."""

    def __init__(self, paths: list[Path], owner: dict[str, Any]):
        self.paths = sorted({Path(p) for p in paths})
        self.owner = {"pid": os.getpid(), **owner}
        self._held: list[tuple[Path, int]] = []

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            for path in self.paths:
                self._acquire_one(path)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Unlock and delete the lock files."""
        while self._held:
            path, fd = self._held.pop()
            # Unlink while still holding the lock: a taker that opened it meanwhile then sees
            # that the path no longer names the file it locked.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            os.close(fd)

    def _acquire_one(self, path: Path) -> None:
        target = lock_path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataflowError(f"cannot write `{path}`: {exc.strerror or exc}", hint=_WRITE_HINT) from None
        while True:
            try:
                fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise DataflowError(
                    f"cannot write `{path}`: {exc.strerror or exc}", hint=_WRITE_HINT
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_owner(fd)
                os.close(fd)
                raise _busy(path, holder) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(target).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its holder removed it between our open and flock: take the new one
        self._held.append((target, fd))
        record = (json.dumps(self.owner, default=str) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)


def _read_owner(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 64 * 1024, 0)
        owner = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _busy(path: Path, holder: dict[str, Any]) -> DataflowError:
    described = []
    if holder.get("pid"):
        described.append(f"pid {holder['pid']}")
    if holder.get("spec"):
        described.append(f"spec `{holder['spec']}`")
    if holder.get("run_dir"):
        described.append(f"run directory `{holder['run_dir']}`")
    who = f" ({', '.join(described)})" if described else ""
    return DataflowError(
        f"another `dataflow run`{who} is writing `{path}`",
        hint="wait for it to finish, or write this run's output elsewhere, e.g. "
        "`--set output.path=out/other.jsonl`",
    )
