"""Run untrusted Python programs in a confined child process (see ``sandbox_server.py``).

    from pipo.tasks.sandbox import Sandbox, Limits
    with Sandbox() as box:
        box.run("print(int(input()) * 2)", stdin="21\\n").stdout   # '42\\n'

A :class:`Sandbox` keeps ``workers`` fork servers (one per thread) alive, so each program costs a
``fork`` rather than a Python start-up. Network: the servers run in a new network namespace
(``unshare -n``) where the OS allows it; otherwise the audit hook still refuses sockets.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

SERVER = Path(__file__).with_name("sandbox_server.py")


@dataclass(frozen=True)
class Limits:
    """Per-program limits: wall time (CPU time is capped at the next second), memory, output, files."""

    timeout_s: float = 5.0
    mem_mb: int = 512
    output_bytes: int = 1 << 20
    file_bytes: int = 1 << 20


@dataclass
class Result:
    status: str  # ok | error | timeout | output_limit | signal N | server error: ...
    stdout: str
    passed: bool  # function mode: the tests ran to the end (the harness's nonce came back)
    seconds: float


@lru_cache(maxsize=1)
def network_isolation() -> list[str]:
    """The command prefix that gives the servers a new network namespace, or [] where none works."""
    if shutil.which("unshare") is None:
        return []
    for prefix in (["unshare", "-n"], ["unshare", "-rn"]):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            continue
    return []


class _Server:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def request(self, req: dict) -> dict:
        for attempt in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    [*network_isolation(), sys.executable, "-I", "-S", str(SERVER)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
                )
            try:
                self.proc.stdin.write(json.dumps(req) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
                if line:
                    return json.loads(line)
            except (BrokenPipeError, OSError, json.JSONDecodeError):
                pass
            self.close()
            if attempt:
                break
        return {"status": "server error: the sandbox server died", "stdout": "", "passed": False, "seconds": 0.0}

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
            self.proc = None


class Sandbox:
    """A pool of fork servers; :meth:`run` and :meth:`run_many` are thread-safe."""

    def __init__(self, workers: int = 2, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.workers = max(1, workers)
        self._local = threading.local()
        self._servers: list[_Server] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox")
        atexit.register(self.close)

    def _server(self) -> _Server:
        server = getattr(self._local, "server", None)
        if server is None:
            server = self._local.server = _Server()
            with self._lock:
                self._servers.append(server)
        return server

    def run(self, program: str, stdin: str = "", tests: str | None = None, limits: Limits | None = None) -> Result:
        """Run ``program`` on ``stdin``; with ``tests`` (Python code, e.g. asserts), function mode."""
        req = {
            "program": program,
            "stdin": stdin,
            "tests": tests,
            "mode": "function" if tests is not None else "stdio",
            "nonce": secrets.token_hex(16),
            **asdict(limits or self.limits),
        }
        return Result(**self._server().request(req))

    def run_many(self, jobs: Sequence[dict]) -> list[Result]:
        """Run ``[{"program", "stdin"?, "tests"?, "limits"?}, ...]`` across the workers, in order."""
        return list(self._pool.map(lambda job: self.run(**job), jobs))

    def close(self) -> None:
        with self._lock:
            for server in self._servers:
                server.close()
            self._servers.clear()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
