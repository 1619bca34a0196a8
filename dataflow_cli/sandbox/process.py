"""Run untrusted programs in a fresh, isolated, resource-limited child process.

Every operator that executes model-written code goes through `Sandbox.run_python` (or
`Sandbox.run_command`). Each run is a new process tree started for that run alone:

- **Limits** (`SandboxPolicy`, declared in the spec, part of the stage fingerprint): a wall-clock
  limit after which every process of the run is killed (`timeout`); per-process CPU seconds,
  address space, file size and open files; a cap on processes and threads (fork bombs stop
  there); stdout+stderr captured up to `max_output_kb`, beyond which the run is stopped
  (`output limit`); a capped scratch filesystem (`disk_mb`).
- **Isolation**, detected once per process (`detect_isolation`) and recorded in the run stats:

  | mechanism | network | writes | processes | user |
  |-----------|---------|--------|-----------|------|
  | `bwrap` (bubblewrap installed) | own empty network namespace | only a private tmpfs (`/tmp`, also the working directory); the host is invisible except read-only system and Python directories | own PID namespace: nothing outlives the run | a fresh unprivileged uid (as root) or a user namespace |
  | `unshare` (util-linux, root or user namespaces) | own empty network namespace | a fresh host directory, removed afterwards; the rest of the host is readable and, where its permissions allow that uid, writable | own PID namespace | a fresh unprivileged uid (as root) or a user namespace |
  | `none` | **shared with the host** | a fresh host directory; the rest as the user's permissions allow | own process group (a program that leaves its session can outlive the run unless this process is root) | a fresh unprivileged uid only when this process is root |

  `bwrap` is preferred, then `unshare`, then `none` (`DATAFLOW_SANDBOX=<mechanism>` forces one).
  A policy states what must hold: `network: off` (the default) fails the stage when no network
  namespace can be made and `filesystem: isolated` (the default) fails it without bubblewrap,
  each with a message saying what to install; `best_effort` runs anyway and the run stats say
  what was in force. Plainly: under `none` without root, a program runs as this user and can
  read this process's environment through `/proc`, signal it and write wherever this user can;
  it is for trusted code only. `disk_mb` needs bubblewrap >= 0.7 (older ones: per-file limit only).
- **Environment**: the child gets a fixed, minimal environment (PATH, HOME, TMPDIR, LANG), never
  the parent's: no API key or other secret exists in it. With `bwrap`/`unshare` its `/proc` shows
  only its own processes; as root it runs as a uid that cannot read another user's environment.
- **Interpreter**: the base Python in isolated mode without site packages (`-I -S -B`): no
  `PYTHON*` variables, no user site, no current directory on `sys.path`; stdlib only.

The first code in the child (`_boot.py`) reads its configuration from stdin, applies the limits,
drops privileges, writes the program's files and only then runs the program. A run can get a
private result channel (a pipe whose write end is the only descriptor the child keeps besides
0-2); what a program writes there is untrusted data like its stdout (see `verify.py` for how
test verdicts are kept out of the reach of the code under test).
"""

from __future__ import annotations

import contextlib
import functools
import marshal
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.errors import DataflowError

MECHANISMS = ("bwrap", "unshare", "none")
INSIDE_TMP = "/tmp"
INSIDE_WORKDIR = "/tmp/work"
# As root the child runs as a uid drawn from this range: unused by any account, and fresh per
# run, so the kernel's per-user process count is the run's own.
_UID_RANGE = (1_900_000_000, 2_000_000_000)
_SIGNALS: dict[int, str] = {
    signal.SIGXCPU: "cpu time limit",
    signal.SIGXFSZ: "file size limit",
    signal.SIGSEGV: "crashed (SIGSEGV)",
    signal.SIGABRT: "crashed (SIGABRT)",
    signal.SIGBUS: "crashed (SIGBUS)",
    signal.SIGFPE: "crashed (SIGFPE)",
    signal.SIGILL: "crashed (SIGILL)",
}
# The last line of a Python traceback names what ran out; the run's reason says so.
_TRACEBACK_LIMITS = (
    ("MemoryError", "memory limit"),
    ("RecursionError", "recursion limit"),
    ("File too large", "file size limit"),
    ("No space left on device", "disk limit"),
    ("Too many open files", "open files limit"),
    ("Resource temporarily unavailable", "process limit"),
    ("can't start new thread", "process limit"),
)


class SandboxError(DataflowError):
    """The machine cannot give the isolation a policy requires."""


class SandboxPolicy(BaseModel):
    """What untrusted code may use during one run (the spec's `sandbox:` param)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Wall-clock seconds a run may take; then all its processes are killed.",
    )
    cpu_s: float | None = Field(
        None, gt=0, le=3600, description="CPU seconds per process (default: `timeout_s`)."
    )
    memory_mb: int = Field(1024, ge=64, le=1_048_576, description="Address-space cap per process, in MiB.")
    max_output_kb: int = Field(
        256, ge=1, le=1_048_576, description="Most stdout+stderr a run may write (KiB); more stops it."
    )
    processes: int = Field(
        32, ge=1, le=65_536, description="Most processes and threads a run may have at once."
    )
    file_size_mb: int = Field(16, ge=0, le=1_048_576, description="Largest file a run may write, in MiB.")
    open_files: int = Field(64, ge=16, le=65_536, description="Most open file descriptors per process.")
    disk_mb: int = Field(
        64, ge=1, le=1_048_576, description="Size of the run's private scratch filesystem (bwrap), in MiB."
    )
    network: Literal["off", "best_effort"] = Field(
        "off",
        description="`off`: the run has no network, or the stage fails; `best_effort`: cut it where the "
        "machine allows, else run anyway (the run stats say which).",
    )
    filesystem: Literal["isolated", "best_effort"] = Field(
        "isolated",
        description="`isolated`: writes reach only a private scratch filesystem and the host is hidden "
        "(needs bubblewrap), or the stage fails; `best_effort`: the strongest containment available.",
    )

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_s if self.cpu_s is not None else self.timeout_s


@dataclass(frozen=True)
class Isolation:
    """What the sandbox can enforce on this machine."""

    mechanism: str
    network: bool  # the child has no network at all
    filesystem: bool  # only a private scratch filesystem is writable; the host is hidden
    pid_namespace: bool  # every process of a run dies with it
    unprivileged: bool  # the child holds no privilege (as root: a fresh uid)
    process_limit: bool  # the `processes` cap counts only the run's own processes
    python: str  # the interpreter runs use

    def as_dict(self) -> dict[str, Any]:
        return {
            "mechanism": self.mechanism,
            "network": "isolated" if self.network else "shared with the host",
            "filesystem": "private scratch only" if self.filesystem else "host visible",
            "pid_namespace": self.pid_namespace,
            "unprivileged": self.unprivileged,
            "process_limit": self.process_limit,
            "python": self.python,
        }


@dataclass
class ExecResult:
    """How one run ended and what it wrote."""

    status: str  # ok | exit | timeout | output_limit | limit | crash | error
    reason: str | None  # short and low-cardinality; None when the program exited 0
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    channel: bytes
    wall_s: float
    # The program's CPU seconds and peak resident memory, as the kernel accounted them when it
    # ended (reported by the process that waited for it); None when the run was killed first.
    cpu_s: float | None
    peak_memory_mb: float | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def excerpt(self, limit: int = 600) -> str:
        """The end of stderr (where a traceback's last line is), decoded."""
        text = self.stderr.decode("utf-8", "replace")
        return text if len(text) <= limit else "..." + text[-limit:]


def _base_python() -> tuple[str, list[str]]:
    """The base interpreter (not a venv's wrapper) and the folders it needs to run."""
    exe = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    folders = {os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(exe))}
    return exe, sorted(folders)


def _interpreter(mechanism: str, root: bool) -> str | None:
    """The interpreter a run can start. Without bwrap a root parent's child runs as a fresh uid,
    which must be able to reach the interpreter's files (pyenv under a private /root cannot be);
    then a system `python3` is used, or none (the mechanism is unusable)."""
    exe, folders = _base_python()
    if mechanism == "bwrap" or not root or all(_reachable(f) for f in [exe, *folders]):
        return exe
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        real = os.path.realpath(candidate)
        if os.path.exists(real) and _reachable(real):
            return real
    return None


def _reachable(path: str) -> bool:
    """Whether any user can traverse to `path` and read it."""
    parts = Path(path).parts
    for i in range(1, len(parts) + 1):
        try:
            mode = os.stat(Path(*parts[:i])).st_mode
        except OSError:
            return False
        if not mode & (0o001 if i < len(parts) else 0o005):
            return False
    return True


_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")


def _bwrap_prefix(policy: SandboxPolicy, root: bool) -> list[str]:
    """bwrap's arguments up to the interpreter."""
    return list(_bwrap_args(policy.disk_mb, root))


@functools.lru_cache(maxsize=16)
def _bwrap_args(disk_mb: int, root: bool) -> tuple[str, ...]:
    exe, folders = _base_python()
    args = ["bwrap"]
    if root:
        # No user namespace: the child then drops to a fresh uid whose process count is its own
        # (the kernel never applies RLIMIT_NPROC to uid 0, mapped or not).
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-all", "--unshare-user"]
        if "--disable-userns" in _bwrap_options():  # bubblewrap >= 0.8: no nested namespaces
            args += ["--disable-userns"]
    args += ["--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox"]
    for key, value in _child_env(INSIDE_WORKDIR).items():
        args += ["--setenv", key, value]
    bound: list[str] = []
    for folder in _SYSTEM_DIRS:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
            bound.append(folder)
    for path in _SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    for folder in folders:
        if any(folder == b or folder.startswith(b + "/") for b in bound):
            continue
        parts = Path(folder).parts
        for i in range(2, len(parts)):  # parents readable by the child, whatever their host mode
            args += ["--perms", "0755", "--dir", str(Path(*parts[:i]))]
        args += ["--ro-bind", folder, folder]
        bound.append(folder)
    args += ["--proc", "/proc", "--dev", "/dev"]
    size = ["--size", str(disk_mb << 20)] if "--size" in _bwrap_options() else []  # >= 0.7
    args += ["--perms", "1777", *size, "--tmpfs", INSIDE_TMP]
    args += ["--perms", "0777", "--dir", INSIDE_WORKDIR, "--chdir", INSIDE_WORKDIR, "--"]
    return (*args, exe)


def _bwrap_options() -> frozenset[str]:
    """The options the installed bubblewrap knows (older releases lack some)."""
    global _BWRAP_OPTIONS
    if _BWRAP_OPTIONS is None:
        try:
            text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        _BWRAP_OPTIONS = frozenset(word for word in text.split() if word.startswith("--"))
    return _BWRAP_OPTIONS


_BWRAP_OPTIONS: frozenset[str] | None = None


def _child_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": "/tmp", "LANG": "C.UTF-8"}


def _boot_source() -> str:
    global _BOOT
    if _BOOT is None:
        _BOOT = Path(__file__).with_name("_boot.py").read_text(encoding="utf-8")
    return _BOOT


def _compiled(source: str, filename: str) -> bytes:
    """Bytecode of a program this package wrote, compiled once: compiling the test harness in
    every child cost more CPU than the rest of a run. Never used for untrusted source (compiling
    hostile source in this process could crash it)."""
    key = (source, filename)
    if key not in _COMPILED:
        _COMPILED[key] = marshal.dumps(compile(source, filename, "exec"))
    return _COMPILED[key]


# The child's first command when it runs the same interpreter as this process: read the boot's
# bytecode (its length is argv[1]) from stdin, then run it.
_LOADER = (
    "import marshal,os,sys\nn=int(sys.argv[1]);b=b''\nwhile len(b)<n:\n c=os.read(0,n-len(b))\n"
    " if not c:break\n b+=c\nexec(marshal.loads(b))"
)
_BOOT: str | None = None
_COMPILED: dict[tuple[str, str], bytes] = {}
_DETECTED: dict[tuple[str | None, int], Isolation] = {}
_DETECT_LOCK = threading.Lock()


def detect_isolation(mechanism: str | None = None) -> Isolation:
    """The strongest mechanism that works here (or `mechanism`, or `$DATAFLOW_SANDBOX`, if it
    works), probed once."""
    mechanism = mechanism or os.environ.get("DATAFLOW_SANDBOX") or None
    key = (mechanism, os.geteuid())
    with _DETECT_LOCK:
        if key not in _DETECTED:
            _DETECTED[key] = _detect(mechanism)
        return _DETECTED[key]


def _detect(mechanism: str | None) -> Isolation:
    root = os.geteuid() == 0
    tried = [mechanism] if mechanism else list(MECHANISMS)
    for name in tried:
        if name not in MECHANISMS:
            raise SandboxError(
                f"unknown sandbox mechanism `{name}`",
                hint=f"use one of {', '.join(f'`{m}`' for m in MECHANISMS)}",
            )
        python = _interpreter(name, root)
        if python is None:
            continue
        isolation = Isolation(
            mechanism=name,
            network=name != "none",
            filesystem=name == "bwrap",
            pid_namespace=name != "none",
            unprivileged=root or name != "none",
            process_limit=root or name != "none",
            python=python,
        )
        if name == "none" or _probe(isolation):
            return isolation
    raise SandboxError(
        f"no usable sandbox (tried {', '.join(f'`{m}`' for m in tried)})",
        hint="install bubblewrap (`apt-get install bubblewrap`)",
    )


def _probe(isolation: Isolation) -> bool:
    tool = {"bwrap": "bwrap", "unshare": "unshare"}[isolation.mechanism]
    if shutil.which(tool) is None:
        return False
    policy = SandboxPolicy(timeout_s=20, network="best_effort", filesystem="best_effort")
    # The probe checks the namespace really has no network interface but loopback.
    probe = "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))"
    result = Sandbox(policy, isolation=isolation).run_python(probe)
    return result.ok and result.stdout.strip() == b"['lo']"


class Sandbox:
    """Runs programs under one policy. Thread-safe: runs are independent processes."""

    def __init__(
        self,
        policy: SandboxPolicy | None = None,
        *,
        mechanism: str | None = None,
        isolation: Isolation | None = None,
    ):
        self.policy = policy or SandboxPolicy()
        self.isolation = isolation or detect_isolation(mechanism)
        self._same_interpreter = self.isolation.python == _base_python()[0]  # bytecode is compatible
        self._check()

    def _check(self) -> None:
        iso, policy = self.isolation, self.policy
        if policy.network == "off" and not iso.network:
            raise SandboxError(
                "the sandbox policy requires `network: off` but this machine cannot give a run its own "
                "network namespace",
                hint="install bubblewrap (`apt-get install bubblewrap`) or allow user namespaces; or set "
                "`sandbox: {network: best_effort}` to run with the network reachable",
            )
        if policy.filesystem == "isolated" and not iso.filesystem:
            raise SandboxError(
                "the sandbox policy requires `filesystem: isolated` but bubblewrap is not available "
                f"(mechanism in use: `{iso.mechanism}`)",
                hint="install bubblewrap (`apt-get install bubblewrap`); or set "
                "`sandbox: {filesystem: best_effort}` to let runs see the host filesystem",
            )

    def describe(self) -> dict[str, Any]:
        """The policy and the isolation in force, for the run stats."""
        return {**self.policy.model_dump(), "isolation": self.isolation.as_dict()}

    # Running ---------------------------------------------------------------------------
    def run_python(
        self,
        source: str,
        *,
        files: dict[str, bytes | str] | None = None,
        stdin: bytes = b"",
        argv: list[str] | tuple[str, ...] = (),
        filename: str = "main.py",
        channel: bool = False,
        channel_limit: int = 16 << 20,
        trusted_program: bool = False,
    ) -> ExecResult:
        """Run Python `source` as `__main__` (its file is `filename` in the working directory).

        `files` (relative path -> content) are written to the working directory first. With
        `channel`, `sys.argv[1]` is the number of a descriptor the program may write results
        to (at most `channel_limit` bytes); they come back in `ExecResult.channel`.
        `trusted_program` (only for programs of this package, such as the test harness): compile
        it here once and send bytecode, when the child runs this process's interpreter.
        """
        program: dict[str, Any] = {"main": source, "exec": None, "filename": filename, "argv": list(argv)}
        if trusted_program and self._same_interpreter:
            program["code"] = _compiled(source, filename)
        return self._run(program, files, stdin, channel, channel_limit)

    def run_command(
        self, argv: list[str], *, files: dict[str, bytes | str] | None = None, stdin: bytes = b""
    ) -> ExecResult:
        """Run an executable (found on the child's PATH) under the same limits and isolation."""
        return self._run(
            {"main": None, "exec": list(argv), "filename": "", "argv": []}, files, stdin, False, 0
        )

    def _run(
        self,
        program: dict[str, Any],
        files: dict[str, bytes | str] | None,
        stdin: bytes,
        channel: bool,
        channel_limit: int,
    ) -> ExecResult:
        policy, iso = self.policy, self.isolation
        root = os.geteuid() == 0
        uid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0] if root else None
        files_list = []
        for path, content in (files or {}).items():
            if os.path.isabs(path) or ".." in Path(path).parts:
                raise ValueError(f"sandbox file path must be relative and stay inside: {path!r}")
            files_list.append((path, content.encode() if isinstance(content, str) else bytes(content)))
        workdir = tempfile.mkdtemp(prefix="dataflow-sandbox-") if iso.mechanism != "bwrap" else None

        read_channel = write_channel = None
        if channel:
            read_channel, write_channel = os.pipe()
            program = {**program, "argv": [str(write_channel), *program["argv"]]}
        read_status, write_status = os.pipe()
        cpu = max(1, int(policy.cpu_seconds + 0.999))
        limits = [
            ("RLIMIT_CORE", 0, 0),
            ("RLIMIT_CPU", cpu, cpu + 1),
            ("RLIMIT_AS", policy.memory_mb << 20, policy.memory_mb << 20),
            ("RLIMIT_FSIZE", policy.file_size_mb << 20, policy.file_size_mb << 20),
            ("RLIMIT_NOFILE", policy.open_files, policy.open_files),
        ]
        if iso.process_limit:
            limits.append(("RLIMIT_NPROC", policy.processes, policy.processes))
        config = {
            **program,
            "stdin": bytes(stdin),
            "limits": limits,
            "uid": uid,
            "chown": workdir is not None,
            "files": files_list,
            "channel": write_channel,
            "status": write_status,
        }
        payload = marshal.dumps(config)

        exe = iso.python
        if self._same_interpreter:
            boot = _compiled(_boot_source(), "<sandbox boot>")
            interpreter = ["-I", "-S", "-B", "-c", _LOADER, str(len(boot))]
            payload = boot + payload
        else:
            interpreter = ["-I", "-S", "-B", "-c", _boot_source()]
        cwd: str | None
        if iso.mechanism == "bwrap":
            argv, env, cwd = [*_bwrap_prefix(policy, root), *interpreter], {}, "/"
        else:
            argv = [exe, *interpreter]
            if iso.mechanism == "unshare":
                ns = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
                argv = [*ns, *([] if root else ["--user", "--map-root-user"]), "--", *argv]
            env, cwd = _child_env(workdir or "/"), workdir
        try:
            return self._supervise(
                argv,
                env,
                cwd,
                payload,
                (read_channel, write_channel),
                (read_status, write_status),
                channel_limit,
                uid,
            )
        finally:
            if workdir is not None:
                _remove_tree(workdir)

    def _supervise(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str | None,
        payload: bytes,
        channel_pipe: tuple[int | None, int | None],
        status_pipe: tuple[int, int],
        channel_limit: int,
        uid: int | None,
    ) -> ExecResult:
        read_channel, write_channel = channel_pipe
        read_status, write_status = status_pipe
        policy = self.policy
        output_limit = policy.max_output_kb << 10
        started = time.monotonic()
        deadline = started + policy.timeout_s
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_status,) if write_channel is None else (write_status, write_channel),
                start_new_session=True,  # its own process group, killed as one
                env=env,
                cwd=cwd,
            )
        finally:
            os.close(write_status)
            if write_channel is not None:
                os.close(write_channel)
        out: dict[int, bytearray] = {read_status: bytearray()}
        names: dict[int, str] = {read_status: "status"}
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            fd = stream.fileno()  # type: ignore[union-attr]
            out[fd], names[fd] = bytearray(), name
        if read_channel is not None:
            out[read_channel], names[read_channel] = bytearray(), "channel"
        stdin_fd = proc.stdin.fileno()  # type: ignore[union-attr]
        killed: str | None = None
        status = None
        pending = memoryview(payload)
        sel = selectors.DefaultSelector()
        pidfd = os.pidfd_open(proc.pid)  # readable once the child has exited: no polling
        try:
            for fd in out:
                os.set_blocking(fd, False)
                sel.register(fd, selectors.EVENT_READ)
            os.set_blocking(stdin_fd, False)
            sel.register(stdin_fd, selectors.EVENT_WRITE)
            sel.register(pidfd, selectors.EVENT_READ)
            open_fds = set(out)
            while status is None or open_fds:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    killed = "timeout"
                    break
                for key, _ in sel.select(remaining):
                    fd = key.fd
                    if fd == pidfd:
                        sel.unregister(pidfd)
                        _, status = os.waitpid(proc.pid, 0)
                        # Without a PID namespace a descendant may keep the pipes open: what
                        # is written by now is read, the rest is killed with the group.
                        for other in list(open_fds):
                            killed = killed or self._read(
                                other, out, names, open_fds, sel, output_limit, channel_limit
                            )
                        open_fds.clear()
                    elif fd == stdin_fd:
                        try:
                            sent = os.write(fd, pending[:65536])
                            pending = pending[sent:]
                        except BlockingIOError:
                            continue
                        except OSError:  # the child is gone: its exit says why
                            pending = pending[:0]
                        if not pending:
                            sel.unregister(fd)
                            proc.stdin.close()  # type: ignore[union-attr]
                    elif fd in open_fds:
                        killed = self._read(fd, out, names, open_fds, sel, output_limit, channel_limit)
                    if killed:
                        break
                if killed:
                    break
            if killed:
                _kill_group(proc.pid)
            if status is None:
                _, status = os.waitpid(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            sel.close()
            os.close(pidfd)
            _kill_group(proc.pid)  # leftovers of the group (a daemon that kept the group)
            if uid is not None and self.isolation.mechanism == "none":
                _kill_uid(uid)  # a daemon that left the group still has the run's uid
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]
            os.close(read_status)
            if read_channel is not None:
                os.close(read_channel)
            if proc.returncode is None:  # an exception above: never leave the child running
                _kill_group(proc.pid)
                proc.wait()
        wall = time.monotonic() - started
        by_name = {names[fd]: bytes(buf) for fd, buf in out.items()}
        stdout, stderr = by_name["stdout"], by_name["stderr"]
        code, cpu, peak = _report(by_name["status"])
        if code is None:  # the program's supervisor did not report (killed with the run)
            code = proc.returncode
        state, reason = self._verdict(killed, code, stderr, cpu)
        return ExecResult(
            status=state,
            reason=reason,
            exit_code=code,
            stdout=stdout,
            stderr=stderr,
            channel=by_name.get("channel", b""),
            wall_s=wall,
            cpu_s=cpu,
            peak_memory_mb=peak,
        )

    @staticmethod
    def _read(
        fd: int,
        out: dict[int, bytearray],
        names: dict[int, str],
        open_fds: set[int],
        sel: selectors.BaseSelector,
        output_limit: int,
        channel_limit: int,
    ) -> str | None:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                sel.unregister(fd)
                open_fds.discard(fd)
                return None
            buf = out[fd]
            buf += chunk
            if names[fd] == "status":
                del buf[256:]
            elif names[fd] == "channel":
                if len(buf) > channel_limit:
                    del buf[channel_limit:]
                    return "channel limit"
            else:
                total = sum(len(b) for f, b in out.items() if names[f] in ("stdout", "stderr"))
                if total > output_limit:
                    del buf[max(0, len(buf) - (total - output_limit)) :]
                    return "output limit"

    def _verdict(
        self, killed: str | None, code: int | None, stderr: bytes, cpu: float | None
    ) -> tuple[str, str | None]:
        policy = self.policy
        if killed == "timeout":
            return "timeout", f"timeout ({policy.timeout_s:g} s)"
        if killed == "output limit":
            return "output_limit", f"output limit ({policy.max_output_kb} KiB)"
        if killed == "channel limit":
            return "output_limit", "result too large"
        if code == 0:
            return "ok", None
        signum = (
            -code if code is not None and code < 0 else (code - 128 if code and 128 < code < 160 else None)
        )
        if signum == signal.SIGKILL and cpu is not None and cpu >= policy.cpu_seconds:
            # RLIMIT_CPU's hard limit (a program that ignored SIGXCPU); no one else sends SIGKILL
            # to a run that is not being stopped for its time.
            return "limit", "cpu time limit"
        if signum in _SIGNALS:
            label = _SIGNALS[signum]
            return ("limit" if "limit" in label else "crash"), label
        if code == 125 and not stderr:
            return "error", "sandbox could not drop privileges"
        tail = stderr[-2000:].decode("utf-8", "replace").strip().splitlines()
        last = tail[-1] if tail else ""
        for marker, label in _TRACEBACK_LIMITS:
            if marker in last:
                return "limit", label
        if signum is not None:
            try:
                return "crash", f"killed by {signal.Signals(signum).name}"
            except ValueError:
                return "crash", f"killed by signal {signum}"
        return "exit", f"exit code {code}"


def _report(text: bytes) -> tuple[int | None, float | None, float | None]:
    """The supervisor's line: the program's exit code, CPU seconds and peak RSS (MiB)."""
    try:
        status, utime, stime, maxrss = text.decode("ascii").split()
        return os.waitstatus_to_exitcode(int(status)), float(utime) + float(stime), int(maxrss) / 1024
    except (UnicodeDecodeError, ValueError):
        return None, None, None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_uid(uid: int) -> None:
    """Kill every process running as `uid` (a run's fresh uid: only its own processes)."""
    for _ in range(3):  # a fork between the scan and the kill is caught by the next pass
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid == uid:
                    found = True
                    os.kill(int(entry.name), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        if not found:
            return


def _remove_tree(path: str) -> None:
    """Remove a run's host working directory, whatever modes the program left on it."""

    def onerror(func: Any, target: str, exc_info: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            func(target)

    shutil.rmtree(path, onerror=onerror)
