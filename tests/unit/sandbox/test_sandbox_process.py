"""The process sandbox: policy, results, limits, channel, isolation detection and the fallbacks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from dataflow_cli.sandbox.process import (
    Isolation,
    Sandbox,
    SandboxError,
    SandboxPolicy,
    detect_isolation,
)
from tests.unit.sandbox.isolation import require


@pytest.fixture(scope="module")
def box() -> Sandbox:
    require("bwrap")
    return Sandbox(SandboxPolicy(timeout_s=5, max_output_kb=8))


def test_policy_is_validated():
    assert SandboxPolicy().model_dump() == {
        "timeout_s": 10.0,
        "cpu_s": None,
        "memory_mb": 1024,
        "max_output_kb": 256,
        "processes": 32,
        "file_size_mb": 16,
        "open_files": 64,
        "disk_mb": 64,
        "network": "off",
        "filesystem": "isolated",
    }
    with pytest.raises(ValidationError, match="timeout_s"):
        SandboxPolicy(timeout_s=0)
    with pytest.raises(ValidationError, match="network"):
        SandboxPolicy(network="on")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SandboxPolicy(timeout=3)
    assert SandboxPolicy(timeout_s=4).cpu_seconds == 4
    assert SandboxPolicy(timeout_s=4, cpu_s=1).cpu_seconds == 1


def test_required_isolation_fails_with_a_clear_message():
    none = Isolation("none", False, False, False, True, True, "/usr/bin/python3")
    with pytest.raises(SandboxError) as err:
        Sandbox(SandboxPolicy(filesystem="best_effort"), isolation=none)
    assert err.value.reason == (
        "the sandbox policy requires `network: off` but this machine cannot give a run its own network namespace"
    )
    assert "apt-get install bubblewrap" in err.value.hint and "network: best_effort" in err.value.hint
    unshare = Isolation("unshare", True, False, True, True, True, "/usr/bin/python3")
    with pytest.raises(
        SandboxError, match=r"requires `filesystem: isolated` but bubblewrap is not available"
    ):
        Sandbox(SandboxPolicy(), isolation=unshare)
    Sandbox(SandboxPolicy(network="best_effort", filesystem="best_effort"), isolation=none)


def test_isolation_is_detected_and_described(box):
    assert detect_isolation() is detect_isolation()  # probed once per process
    described = box.describe()
    assert described["timeout_s"] == 5 and described["network"] == "off"
    assert described["isolation"] == {
        "mechanism": "bwrap",
        "network": "isolated",
        "filesystem": "private scratch only",
        "pid_namespace": True,
        "unprivileged": True,
        "process_limit": True,
        "python": box.isolation.python,
    }


def test_result_of_a_normal_run(box):
    result = box.run_python(
        "import os, sys\nprint(sys.stdin.read().upper(), sys.argv[1:], sorted(os.listdir('.')))\n"
        "print('warn', file=sys.stderr)\nprint(open('data/in.txt').read())\n",
        files={"data/in.txt": "file content", "bin.dat": b"\x00\x01"},
        stdin=b"hello",
        argv=["a", "b"],
    )
    assert result.ok and result.status == "ok" and result.reason is None and result.exit_code == 0
    assert result.stdout == b"HELLO ['a', 'b'] ['bin.dat', 'data']\nfile content\n"
    assert result.stderr == b"warn\n"
    assert 0 < result.wall_s < 5 and result.cpu_s > 0 and result.peak_memory_mb > 1


def test_large_stdin_and_files(box):
    data = b"x" * 300_000
    result = box.run_python(
        "import sys\nprint(len(sys.stdin.buffer.read()), len(open('f', 'rb').read()))\n",
        stdin=data,
        files={"f": data},
    )
    assert result.stdout == b"300000 300000\n"


def test_exit_codes_and_exceptions_are_named(box):
    assert box.run_python("raise SystemExit(3)").reason == "exit code 3"
    failed = box.run_python("def f():\n    return 1 / 0\nf()\n")
    assert failed.status == "exit" and failed.reason == "exit code 1"
    assert failed.stderr.decode().splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert "_boot" not in failed.stderr.decode()  # the traceback is the program's own
    assert failed.excerpt(20).startswith("...")


def test_output_is_capped_and_the_run_stopped(box):
    result = box.run_python("import time\nprint('x' * 100000, flush=True)\ntime.sleep(30)\n")
    assert result.status == "output_limit" and result.reason == "output limit (8 KiB)"
    assert len(result.stdout) + len(result.stderr) == 8 * 1024
    assert result.wall_s < 3


def test_timeout_is_exact(box):
    fast = Sandbox(SandboxPolicy(timeout_s=0.5), isolation=box.isolation)
    result = fast.run_python("import time\ntime.sleep(30)\n")
    assert result.status == "timeout" and result.reason == "timeout (0.5 s)"
    assert 0.5 <= result.wall_s < 1.0


def test_channel_carries_results_beside_stdout(box):
    result = box.run_python(
        "import os, sys\nfd = int(sys.argv[1])\nos.write(fd, b'result')\nprint('log')\nprint(sys.argv[2:])\n",
        channel=True,
        argv=["x"],
    )
    assert result.channel == b"result" and result.stdout == b"log\n['x']\n"
    capped = box.run_python(
        "import os, sys\nos.write(int(sys.argv[1]), b'y' * 5000)\n", channel=True, channel_limit=1000
    )
    assert capped.status == "output_limit" and capped.reason == "result too large"
    assert capped.channel == b"y" * 1000


def test_commands_run_under_the_same_limits(box):
    result = box.run_command(["sh", "-c", "echo $HOME; cat in.txt; ulimit -n"], files={"in.txt": "hi\n"})
    assert result.ok and result.stdout == b"/tmp/work\nhi\n64\n"


def test_unsafe_file_names_are_refused(box):
    for name in ("/etc/x", "../x", "a/../../x"):
        with pytest.raises(ValueError, match="must be relative"):
            box.run_python("pass", files={name: "x"})


def test_parent_memory_and_descriptors_stay_flat(box):
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    box.run_python("pass")
    before = fds()
    for _ in range(30):
        box.run_python("print(1)", channel=True)
    assert fds() == before


# --- the fallbacks: what they contain ------------------------------------------------------------
def _fallback(mechanism: str, **policy) -> Sandbox:
    require(mechanism)
    iso = detect_isolation(mechanism)
    return Sandbox(SandboxPolicy(timeout_s=2, filesystem="best_effort", **policy), isolation=iso)


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["unshare", "none"])
def test_fallback_contains_processes_and_secrets(mechanism, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback-secret")
    box = _fallback(mechanism, network="best_effort")
    result = box.run_python(
        "import os, sys\nprint(dict(os.environ))\nfor pid in (os.getppid(), int(sys.argv[1])):\n"
        "    try:\n        print(open(f'/proc/{pid}/environ').read())\n    except OSError as exc:\n"
        "        print(type(exc).__name__)\nprint(os.getcwd())\n",
        argv=[str(os.getpid())],
    )
    assert result.ok, result.excerpt()
    assert b"sk-fallback-secret" not in result.stdout
    workdir = Path(result.stdout.decode().splitlines()[-1])
    assert workdir.name.startswith("dataflow-sandbox-") and not workdir.exists()  # removed afterwards
    marker = f"dffallback{os.getpid()}{mechanism}"
    daemon = (
        "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n"
        "    os._exit(0)\ntime.sleep(0.3)\n"
    )
    assert box.run_python(daemon).ok
    bomb = box.run_python(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    assert bomb.status == "timeout"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _has(p, marker)]
        if not left:
            break
        time.sleep(0.05)
    assert not left


def _has(proc: Path, marker: str) -> bool:
    try:
        return marker.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
def test_unshare_cuts_the_network():
    box = _fallback("unshare")
    result = box.run_python("import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n")
    assert result.stdout == b"['lo']\n"
    assert box.describe()["isolation"]["network"] == "isolated"
