"""Tests for dataflow_cli.io.lock: one holder per output file, who holds it, clean release.

(Two real `dataflow run` processes are in tests/integration/test_outputs.py.)
"""

from __future__ import annotations

import json
import os

import pytest

from dataflow_cli.errors import DataflowError
from dataflow_cli.io.lock import OutputLock, lock_path


def test_second_claim_on_an_output_is_refused_with_the_holder_named(tmp_path):
    output = tmp_path / "out" / "o.jsonl"
    with OutputLock([output], {"spec": "/p/a.yaml", "run_dir": "/p/run-a"}):
        assert json.loads(lock_path(output).read_text()) == {
            "pid": os.getpid(),
            "spec": "/p/a.yaml",
            "run_dir": "/p/run-a",
        }
        with pytest.raises(DataflowError) as caught:
            OutputLock([output], {"spec": "/p/b.yaml"}).acquire()
        assert caught.value.reason == (
            f"another `dataflow run` (pid {os.getpid()}, spec `/p/a.yaml`, run directory `/p/run-a`) "
            f"is writing `{output}`"
        )
        assert "--set output.path=" in caught.value.hint
    assert not lock_path(output).exists()
    with OutputLock([output], {}):  # free again
        pass


def test_a_refused_claim_releases_what_it_had_taken(tmp_path):
    output, rejects = tmp_path / "a.jsonl", tmp_path / "rejects" / "a.rejects.jsonl"
    with OutputLock([rejects], {}):
        with pytest.raises(DataflowError):
            OutputLock([output, rejects], {}).acquire()
        assert not lock_path(output).exists()
        OutputLock([output], {}).acquire()  # not left locked by the refused claim


def test_lock_file_left_by_a_crash_is_taken_over(tmp_path):
    output = tmp_path / "o.jsonl"
    lock_path(output).write_text('{"pid": 999999999, "spec": "crashed.yaml"}\n')  # nobody holds it
    claim = OutputLock([output], {"spec": "new.yaml"})
    claim.acquire()
    assert json.loads(lock_path(output).read_text())["spec"] == "new.yaml"
    claim.release()
    claim.release()  # idempotent
    assert not lock_path(output).exists()


def test_a_holder_that_vanished_between_open_and_lock_is_not_trusted(tmp_path, monkeypatch):
    # The holder unlinks its lock file on release; a taker that opened the old file just
    # before must not believe it holds the lock, or two runs would hold "the" lock at once.
    output = tmp_path / "o.jsonl"
    real_open = os.open
    calls = []

    def open_then_lose_the_race(path, flags, mode=0o777):
        fd = real_open(path, flags, mode)
        calls.append(path)
        if len(calls) == 1:
            os.unlink(path)  # the previous holder releasing right after our open
        return fd

    monkeypatch.setattr(os, "open", open_then_lose_the_race)
    claim = OutputLock([output], {})
    claim.acquire()
    monkeypatch.undo()
    assert len(calls) == 2  # started over with the new file
    with pytest.raises(DataflowError):
        OutputLock([output], {}).acquire()
    claim.release()


def test_unwritable_location_is_a_clear_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    with pytest.raises(DataflowError) as caught:
        OutputLock([tmp_path / "blocker" / "o.jsonl"], {}).acquire()
    assert caught.value.reason.startswith(f"cannot write `{tmp_path / 'blocker' / 'o.jsonl'}`")
