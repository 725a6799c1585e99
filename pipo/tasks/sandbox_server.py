"""The sandbox's fork server: runs untrusted Python programs, one forked child each.

Started by :mod:`pipo.tasks.sandbox` as ``[unshare -n] python -I -S sandbox_server.py`` (no network
namespace where the OS allows it, no site-packages, standard library only). It reads one JSON
request per line on stdin and answers one JSON line on stdout. For each request it forks a child
that, before running the program:

- starts a new session (so the whole process group is killed at the end),
- moves into a fresh temporary directory and closes every inherited file descriptor,
- sets resource limits (CPU time, address space, file size, open files, no new processes),
- drops to ``nobody`` when the server runs as root,
- installs an audit hook (it cannot be removed) that refuses processes, signals, sockets, ctypes,
  frame and garbage-collector introspection, and any file access outside its directory except
  reading the standard library.

In ``function`` mode the child runs the program, then the tests with pristine builtins, and only
then writes a secret nonce (known to the server, never shown to the program) to a result pipe: a
program that exits early, patches the harness or forges output cannot pass.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import select
import shutil
import signal
import sys
import sysconfig
import tempfile
import time

# Standard-library modules imported once here: forked children inherit them (and where the
# interpreter's directory is not readable by ``nobody``, these are the modules a program can use).
PRELOADED = (
    "array bisect cmath collections copy dataclasses datetime decimal enum fractions functools heapq "
    "itertools math numbers operator queue random re statistics string struct textwrap typing unicodedata"
).split()
for _name in PRELOADED:
    __import__(_name)

NOBODY = 65534
RESULT_FD = 3
_STDLIB = tuple(
    os.path.realpath(p) + os.sep for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
)
_BLOCKED_EVENTS = {
    "os.system", "os.fork", "os.forkpty", "os.kill", "os.killpg", "signal.pthread_kill", "os.chdir",
    "os.chroot", "sys._current_frames", "sys.settrace", "sys.setprofile",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "resource.setrlimit", "resource.prlimit",
    "mmap.__new__", "pty.spawn", "webbrowser.open", "urllib.Request", "ftplib.connect", "smtplib.connect",
    "http.client.connect", "os.add_dll_directory", "sys.unraisablehook", "cpython.run_command",
}  # fmt: skip
_BLOCKED_PREFIXES = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "_posixsubprocess")
_BLOCKED_MODULES = {"ctypes", "_ctypes", "gc", "socket", "_socket", "subprocess", "_posixsubprocess", "mmap", "pty"}
_FRAME_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame"}
# standard-library modules that look at their caller's frame and never hand it on
_FRAME_READERS = {
    os.path.join(sysconfig.get_paths()["stdlib"], name)
    for name in ("collections/__init__.py", "typing.py", "enum.py", "warnings.py", "logging/__init__.py", "types.py")
}
_PATH_EVENTS = {
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown",
    "os.truncate", "os.utime", "os.listdir", "os.scandir", "shutil.rmtree", "shutil.copyfile", "shutil.move",
}  # fmt: skip


def _audit_hook(home: str):
    """An audit hook confining the program to ``home`` (read-only access to the standard library)."""
    home = os.path.realpath(home) + os.sep

    def inside(path, may_read_stdlib: bool) -> bool:
        if isinstance(path, int):
            return True  # an already-open descriptor (stdin, stdout)
        try:
            real = os.path.realpath(os.fsdecode(path)) + os.sep
        except (TypeError, ValueError):
            return False
        return real.startswith(home) or (may_read_stdlib and real.startswith(_STDLIB))

    busy = [False]

    def frame_reader_calls() -> bool:
        """Whether the code asking for a frame is one of ``_FRAME_READERS`` (the hook's caller)."""
        if busy[0]:
            return True  # the hook's own look at its caller
        busy[0] = True
        try:
            return sys._getframe(2).f_code.co_filename in _FRAME_READERS
        finally:
            busy[0] = False

    def hook(event: str, args: tuple) -> None:
        if event == "sys._getframe" and not frame_reader_calls():
            raise PermissionError("sandbox: frame introspection is not allowed")
        if event in _BLOCKED_EVENTS or event.startswith(_BLOCKED_PREFIXES):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0].split(".")[0] in _BLOCKED_MODULES:
            raise PermissionError(f"sandbox: import of {args[0]} is not allowed")
        if event == "object.__getattr__" and len(args) > 1 and args[1] in _FRAME_ATTRS and not frame_reader_calls():
            raise PermissionError("sandbox: frame introspection is not allowed")
        if event == "open":
            path, mode, flags = [*args, None, None][:3]
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC)
            )
            if not inside(path, may_read_stdlib=not writing):
                raise PermissionError(f"sandbox: access to {path!r} is not allowed")
        elif event in _PATH_EVENTS:
            for path in args:
                if isinstance(path, str | bytes | os.PathLike) and not inside(
                    path, event in {"os.listdir", "os.scandir"}
                ):
                    raise PermissionError(f"sandbox: {event} on {path!r} is not allowed")

    return hook


def _child(req: dict, home: str, stdin_path: str, out_w: int, res_w: int) -> None:
    """Runs in the forked child; never returns."""
    try:
        os.setsid()
        fd_in = os.open(stdin_path, os.O_RDONLY)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd_in, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w if req.get("merge_stderr") else devnull, 2)
        os.dup2(res_w, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 16)
        os.chdir(home)
        cpu = int(req["timeout_s"]) + 1
        mem = int(req["mem_mb"]) << 20
        for limit, value in (
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_AS, mem),
            (resource.RLIMIT_FSIZE, int(req["file_bytes"])),
            (resource.RLIMIT_NOFILE, 64),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(limit, (value, value))
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # after the uid change: counted per user
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
    except BaseException:  # noqa: BLE001 - could not confine: do not run the program at all
        os._exit(101)
    program, tests, mode = req["program"], req.get("tests") or "", req["mode"]
    nonce = req.pop("nonce", "").encode()
    # the harness keeps its own references: a program that patches builtins or os cannot reach them
    _compile, _exec, _write, _exit, _flush = compile, exec, os.write, os._exit, sys.stdout.flush
    pristine = dict(vars(builtins))
    sys.addaudithook(_audit_hook(home))
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        _exec(_compile(program, "<solution>", "exec"), namespace)
        if mode == "function":
            test_ns = dict(namespace)
            test_ns["__builtins__"] = pristine
            _exec(_compile(tests, "<tests>", "exec"), test_ns)
            _flush()
            _write(RESULT_FD, nonce)
        else:
            _flush()
    except BaseException as err:  # noqa: BLE001 - any failure (SystemExit included) is a failed run
        if req.get("merge_stderr"):
            sys.__stderr__.write(f"{type(err).__name__}: {err}\n")
            sys.__stderr__.flush()
        _exit(1)
    _exit(0)


def run(req: dict) -> dict:
    """Run one request in a confined child; returns ``{status, stdout, passed, seconds}``."""
    home = tempfile.mkdtemp(prefix="pipo-sbx-")
    try:
        stdin_path = os.path.join(home, ".stdin")
        with open(stdin_path, "w", encoding="utf-8") as f:
            f.write(req.get("stdin") or "")
        if os.geteuid() == 0:
            os.chown(home, NOBODY, NOBODY)
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        nonce = req.get("nonce", "")
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(out_r)
            os.close(res_r)
            _child(req, home, stdin_path, out_w, res_w)
        os.close(out_w)
        os.close(res_w)
        status, out = _collect(pid, out_r, start + float(req["timeout_s"]), int(req["output_bytes"]))
        os.close(out_r)
        result = b""
        while chunk := _read_nonblocking(res_r):
            result += chunk
            if len(result) > 4 * len(nonce) + 64:
                break
        os.close(res_r)
        passed = status == "ok" and bool(nonce) and result == nonce.encode()
        return {
            "status": status,
            "stdout": out.decode("utf-8", errors="replace"),
            "passed": passed,
            "seconds": time.monotonic() - start,
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _read_nonblocking(fd: int) -> bytes:
    ready, _, _ = select.select([fd], [], [], 0)
    return os.read(fd, 4096) if ready else b""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _collect(pid: int, out_r: int, deadline: float, cap: int) -> tuple[str, bytes]:
    """Read the child's output until it exits, the deadline passes or the output exceeds ``cap``."""
    out = bytearray()
    status = None
    open_pipe = True
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status = "timeout"
            break
        if open_pipe:
            ready, _, _ = select.select([out_r], [], [], min(remaining, 0.05))
            if ready:
                chunk = os.read(out_r, 65536)
                if not chunk:
                    open_pipe = False
                else:
                    out += chunk
                    if len(out) > cap:
                        status = "output_limit"
                        break
                    continue
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            while open_pipe and (chunk := _read_nonblocking(out_r)):
                out += chunk
                if len(out) > cap:
                    return _reap(pid, "output_limit"), bytes(out[:cap])
            if os.WIFSIGNALED(code):
                sig = os.WTERMSIG(code)
                return ("timeout" if sig == signal.SIGXCPU else f"signal {sig}"), bytes(out)
            rc = os.WEXITSTATUS(code)
            return ("ok" if rc == 0 else "error" if rc != 101 else "confinement failed"), bytes(out)
        if not open_pipe:
            time.sleep(0.002)
    return _reap(pid, status), bytes(out[:cap])


def _reap(pid: int, status: str) -> str:
    _kill_group(pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    return status


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client stops us by closing stdin
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = run(json.loads(line))
        except Exception as err:  # noqa: BLE001 - report, keep serving
            reply = {"status": f"server error: {err}", "stdout": "", "passed": False, "seconds": 0.0}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
