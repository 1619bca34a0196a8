"""Escape attempts against the process sandbox: every one is contained and named; benign
look-alikes run normally.

Each attack is a real program run in the real sandbox (bubblewrap here; `make test` installs
it). After each run the host is checked: no file written outside, no process left behind, no
connection reached the test's listener, no secret of this process in anything the program saw.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dataflow_cli.sandbox.process import Sandbox, SandboxPolicy
from tests.unit.sandbox.isolation import require

REPO = Path(__file__).resolve().parents[3]
SECRET = "sk-test-" + uuid.uuid4().hex
MARK = "dfmark" + uuid.uuid4().hex[:12]  # names this test run's files and daemons on the host


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    require("bwrap")
    return Sandbox(SandboxPolicy(timeout_s=3, cpu_s=2, memory_mb=512, max_output_kb=64, processes=24))


@pytest.fixture(autouse=True)
def secret_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


@pytest.fixture
def listener():
    """A TCP listener on loopback and an abstract unix socket: nothing may reach either."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind("\0" + MARK)
    unix.listen(8)
    unix.setblocking(False)
    yield tcp.getsockname()[1]
    for server in (tcp, unix):
        with pytest.raises(BlockingIOError):
            server.accept()  # no connection ever arrived
        server.close()


def host_processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def no_survivor(marker: str = MARK) -> None:
    deadline = time.monotonic() + 3  # a namespace's processes are reaped asynchronously
    while (left := host_processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes outlived the run: {left}"


ESCAPE_PATHS = [
    f"/tmp/{MARK}-abs",
    f"/var/tmp/{MARK}-var",
    f"/dev/shm/{MARK}-shm",
    f"/root/{MARK}-home",
    f"{REPO}/{MARK}-repo",
    f"/etc/{MARK}-etc",
    f"../../../../../../tmp/{MARK}-dotdot",
]


@dataclass
class Attack:
    name: str
    source: str
    reasons: tuple[str | None, ...]  # acceptable `ExecResult.reason` prefixes (None: it exits 0)
    must_not_print: tuple[str, ...] = ()
    policy: dict = field(default_factory=dict)


WRITE_OUTSIDE = f"""
import os
written = []
for path in {ESCAPE_PATHS!r}:
    try:
        with open(path, "w") as handle:
            handle.write("escaped")
        written.append(path)
    except OSError as exc:
        pass
for target in ("/tmp", "/root", {str(REPO)!r}, "/"):
    link = "link-" + target.strip("/").replace("/", "-")
    try:
        os.symlink(target, link)
        with open(os.path.join(link, "{MARK}-symlink"), "w") as handle:
            handle.write("escaped")
        written.append(link)
    except OSError:
        pass
try:
    os.makedirs("{MARK}-dir")
    os.chdir("/")
    open("{MARK}-root", "w").write("x")
    written.append("/")
except OSError:
    pass
print("WROTE", written)
"""

READ_SECRETS = f"""
import os
seen = [repr(dict(os.environ))]
for path in ["/proc/self/environ", "/proc/1/environ", "/proc/{{}}/environ".format(os.getppid()),
             "/proc/{os.getpid()}/environ", "/proc/{os.getpid()}/cmdline", "/proc/{os.getppid()}/environ"]:
    try:
        seen.append(open(path, "rb").read().decode("latin-1"))
    except OSError as exc:
        seen.append(type(exc).__name__)
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            seen.append(open("/proc/" + entry + "/environ", "rb").read().decode("latin-1"))
        except OSError:
            pass
for path in ["/etc/shadow", "/root/.bash_history", {str(REPO / "pyproject.toml")!r}, "/work"]:
    try:
        seen.append(open(path).read() if not os.path.isdir(path) else repr(os.listdir(path)))
        seen.append("READ " + path)
    except OSError:
        pass
print("\\n".join(seen))
"""

NETWORK = """
import socket, sys
port = int(sys.argv[1])
for family, address in [(socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET, ("10.0.2.2", 80)),
                        (socket.AF_INET, ("8.8.8.8", 53)), (socket.AF_UNIX, "\\0" + sys.argv[2])]:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(address)
        print("CONNECTED", address)
    except OSError as exc:
        print("blocked", address, type(exc).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("CONNECTED dns")
except OSError:
    print("blocked dns")
"""

DAEMON = f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", "{MARK}"])
    os._exit(0)
time.sleep(0.3)
print("parent leaves")
"""

ATTACKS = [
    Attack("write outside the working directory", WRITE_OUTSIDE, (None,), must_not_print=("READ",)),
    Attack("read the parent's secrets", READ_SECRETS, (None,), must_not_print=(SECRET, "READ ")),
    Attack("infinite loop", "while True:\n    pass\n", ("timeout", "cpu time limit")),
    Attack("sleep past the limit", "import time\ntime.sleep(60)\n", ("timeout",)),
    Attack(
        "ignore SIGTERM and sleep",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n",
        ("timeout",),
    ),
    Attack(
        "ignore SIGXCPU and burn cpu",
        "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
        ("cpu time limit", "timeout"),
        policy={"cpu_s": 1, "timeout_s": 5},
    ),
    Attack(
        "burn cpu on many threads",
        "import threading\ndef burn():\n    while True:\n        pass\n"
        "for _ in range(8):\n    threading.Thread(target=burn).start()\n",
        ("cpu time limit", "timeout"),
        policy={"cpu_s": 1, "timeout_s": 5},
    ),
    Attack(
        "fork bomb",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        ("timeout", "process limit", "cpu time limit"),
    ),
    Attack(
        "fork bomb that crashes",
        "import os\nwhile True:\n    os.fork()\n",
        ("process limit", "timeout", "cpu time limit"),
    ),
    Attack(
        "thread bomb",
        "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()\n",
        ("process limit", "timeout"),  # the main thread fails, the process waits for its threads
    ),
    Attack("allocate 4 GB at once", "x = bytearray(4 * 1024**3)\n", ("memory limit",)),
    Attack(
        "grow memory until it breaks",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024**2))\n",
        ("memory limit",),
    ),
    Attack(
        "raise its own limits",
        "import resource\ntry:\n    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n"
        "    print('RAISED')\nexcept ValueError:\n    pass\n"
        "for name in ('RLIMIT_NPROC', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE'):\n"
        "    limit = getattr(resource, name)\n    try:\n"
        "        resource.setrlimit(limit, (resource.RLIM_INFINITY,) * 2)\n        print('RAISED', name)\n"
        "    except ValueError:\n        pass\nx = bytearray(2 * 1024**3)\n",
        ("memory limit",),
        must_not_print=("RAISED",),
    ),
    Attack("one huge file", "open('big', 'wb').write(b'x' * (40 * 1024**2))\n", ("file size limit",)),
    Attack(
        "fill the disk with files",
        "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * (8 * 1024**2))\n    i += 1\n",
        ("disk limit",),
        policy={"disk_mb": 32},
    ),
    Attack("infinite recursion", "def f():\n    return f()\nf()\n", ("recursion limit",)),
    Attack(
        "recursion past the C stack",
        "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1) + 1\nf(0)\n",
        ("crashed (SIGSEGV)", "memory limit", "recursion limit", "timeout", "cpu time limit"),
    ),
    Attack("flood stdout", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", ("output limit",)),
    Attack("flood stderr", "import sys\nwhile True:\n    sys.stderr.write('y' * 65536)\n", ("output limit",)),
    Attack(
        "kill its parent and everything it can",
        "import os, signal, time\nfor pid in (os.getppid(), 1, -1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n        pass\ntime.sleep(5)\n",
        ("killed by SIGKILL", "crashed", "timeout"),
    ),
    Attack(
        "become root",
        "import os\nfor call in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/')):\n"
        "    try:\n        call()\n        print('ROOT')\n    except OSError:\n        pass\n",
        (None,),
        must_not_print=("ROOT",),
    ),
    Attack(
        "grandchild keeps the pipes open",
        "import subprocess\nsubprocess.Popen(['sleep', '60'])\nprint('started')\n",
        (None,),
    ),
    Attack(
        "exit with a crash",
        "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
        ("crashed (SIGSEGV)",),
    ),
    Attack(
        "exhaust file descriptors",
        "files = [open('/dev/null') for _ in range(100000)]\n",
        ("open files limit",),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack_is_contained(sandbox, attack, listener):
    policy = sandbox.policy.model_copy(update=attack.policy)
    box = Sandbox(policy, isolation=sandbox.isolation)
    started = time.monotonic()
    result = box.run_python(attack.source)
    elapsed = time.monotonic() - started
    assert any(
        result.reason == r if r is None else (result.reason or "").startswith(r) for r in attack.reasons
    ), f"{attack.name}: {result.status} {result.reason!r}\n{result.excerpt()}"
    assert elapsed < policy.timeout_s + 1.5, f"the run outlived its time limit: {elapsed:.2f} s"
    output = result.stdout + result.stderr
    for text in (*attack.must_not_print, SECRET):
        assert text.encode() not in output, f"{attack.name}: printed {text!r}\n{output[-2000:]!r}"
    for path in ESCAPE_PATHS:
        assert not (Path.cwd() / path).exists() and not Path(path).exists(), f"{path} was written on the host"
    for path in (Path("/tmp"), Path("/root"), REPO, Path("/")):
        assert not list(path.glob(f"{MARK}*")), f"a file reached {path}"
    no_survivor()


@pytest.mark.slow
def test_network_is_unreachable(sandbox, listener):
    result = sandbox.run_python(NETWORK, argv=[str(listener), MARK])
    assert result.ok, result.excerpt()
    assert b"CONNECTED" not in result.stdout
    assert result.stdout.count(b"blocked") == 5


@pytest.mark.slow
def test_double_forked_daemon_does_not_outlive_the_run(sandbox):
    result = sandbox.run_python(DAEMON)
    assert result.ok and result.stdout == b"parent leaves\n", result.excerpt()
    no_survivor()


@pytest.mark.slow
def test_a_timed_out_run_leaves_no_process(sandbox):
    source = DAEMON.replace('print("parent leaves")', "time.sleep(60)")
    result = sandbox.run_python(source)
    assert result.status == "timeout"
    no_survivor()


@pytest.mark.slow
def test_descriptors_of_the_parent_do_not_leak(sandbox, tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET)
    with secret_file.open() as handle, socket.socket() as sock:
        assert handle.fileno() > 2 and sock.fileno() > 2
        result = sandbox.run_python(
            "import os\nfor fd in range(3, 1024):\n    try:\n        print(fd, os.read(fd, 200))\n"
            "    except OSError:\n        pass\nprint(sorted(os.listdir('/proc/self/fd')))\n"
        )
    assert result.ok, result.excerpt()
    assert SECRET.encode() not in result.stdout
    assert result.stdout.strip().splitlines()[-1] == b"['0', '1', '2', '3']"  # 3: listdir's own


BENIGN = {
    "temp files in its own directory": (
        "import os, tempfile\n"
        "with tempfile.NamedTemporaryFile('w+', delete=False) as f:\n    f.write('data')\n"
        "print(open(f.name).read())\nos.makedirs('sub/dir')\nopen('sub/dir/x.txt', 'w').write('ok')\n"
        "print(open('sub/dir/x.txt').read(), sorted(os.listdir('.')))\n",
        "data\nok ['sub']",
    ),
    "moderate recursion": ("def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\nprint(f(900))\n", "900"),
    "a few threads": (
        "import threading\nout = []\n"
        "ts = [threading.Thread(target=lambda i=i: out.append(sum(range(i * 10**5)))) for i in range(4)]\n"
        "[t.start() for t in ts]\n[t.join() for t in ts]\nprint(len(out))\n",
        "4",
    ),
    "200 MB allocation": ("b = bytearray(200 * 1024**2)\nb[-1] = 1\nprint(len(b) // 1024**2)\n", "200"),
    "1.5 s of computation": (
        "import time\nstart = time.process_time()\nn = 0\n"
        "while time.process_time() - start < 1.5:\n    n += 1\nprint('done')\n",
        "done",
    ),
    "stdin and the standard library": (
        "import sys, json, re, collections, itertools, heapq, math, fractions, decimal, hashlib, datetime\n"
        "data = sys.stdin.read()\nprint(json.dumps(collections.Counter(re.findall(r'\\w', data))))\n"
        "print(hashlib.sha256(b'x').hexdigest()[:8])\n",
        '{"a": 2, "b": 1}\n2d711642',
    ),
    "a child process": (
        "import subprocess, sys\n"
        "print(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout.strip())\n",
        "42",
    ),
    "local sockets": (
        "import socket\na, b = socket.socketpair()\na.sendall(b'ping')\nprint(b.recv(4).decode())\n",
        "ping",
    ),
    "writes to its private /tmp": (
        "open('/tmp/scratch', 'w').write('x')\nprint(open('/tmp/scratch').read())\n",
        "x",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_program_runs(name):
    require("bwrap")
    source, expected = BENIGN[name]
    result = Sandbox(SandboxPolicy(timeout_s=10)).run_python(source, stdin=b"a b a")
    assert result.ok, f"{result.reason}\n{result.excerpt()}"
    assert result.stdout.decode().strip() == expected
