"""The first code run inside every sandboxed child (stdlib only; sent as `python -I -S -c`).

It reads its configuration from fd 0 (a marshal blob written by the parent, then EOF; when the
child runs the parent's interpreter this file itself arrives first, as bytecode), applies the
resource limits, drops to the unprivileged user chosen by the parent, writes the program's files
into the working directory, closes every inherited descriptor but the result channel, and runs the
program as `__main__` (or execs a command). Nothing of the program runs before the limits hold.
"""

import os
import sys


def _boot():
    import marshal
    import resource

    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    cfg = marshal.loads(b"".join(chunks))
    del chunks

    data = cfg["stdin"]
    if len(data) <= 32768:  # fits in a pipe buffer: no file to leave behind
        read_end, write_end = os.pipe()
        os.write(write_end, data)
        os.close(write_end)
    else:
        read_end = os.open(".stdin", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(read_end, data)
        os.lseek(read_end, 0, 0)
        os.unlink(".stdin")
    os.dup2(read_end, 0)
    os.close(read_end)

    for name, soft, hard in cfg["limits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))

    uid = cfg["uid"]
    if uid is not None:
        if cfg["chown"]:
            os.chown(".", uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
            os._exit(125)  # never run the program with privileges left
    os.umask(0o022)

    for path, content in cfg["files"]:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)

    keep = sorted({cfg["status"], cfg["channel"] if cfg["channel"] is not None else cfg["status"]})
    low = 3
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)

    # The program runs in a child; this process only waits for it and reports how it ended
    # and what it used, which the kernel accounts for exactly at this point.
    pid = os.fork()
    if pid:
        if cfg["channel"] is not None:
            os.close(cfg["channel"])
        _, status, usage = os.wait4(pid, 0)
        report = f"{status} {usage.ru_utime!r} {usage.ru_stime!r} {usage.ru_maxrss}\n"
        os.write(cfg["status"], report.encode())
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
    os.close(cfg["status"])

    if cfg["exec"] is not None:
        argv = cfg["exec"]
        os.execvp(argv[0], argv)

    filename = cfg["filename"]
    sys.argv = [filename, *cfg["argv"]]
    code = marshal.loads(cfg["code"]) if cfg.get("code") else compile(cfg["main"], filename, "exec")
    del cfg, data
    return code


_code = _boot()
del _boot
try:
    exec(_code, {"__name__": "__main__", "__builtins__": __builtins__, "__file__": sys.argv[0]})
except SystemExit:
    raise
except BaseException as _exc:  # a traceback as `python main.py` would print it, without this file
    import traceback

    _tb = _exc.__traceback__
    traceback.print_exception(type(_exc), _exc, _tb.tb_next if _tb else None)
    raise SystemExit(1) from None
