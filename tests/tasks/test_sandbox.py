"""The sandbox: hostile programs score 0 within their limits and leave the machine as it was."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from pipo.tasks.code_verifier import code_score
from pipo.tasks.sandbox import Limits, Sandbox

STDIO = '{"kind": "stdio", "timeout_s": 2, "tests": [{"input": "3\\n", "output": "6\\n"}]}'
FUNCTION = '{"kind": "function", "timeout_s": 2, "tests": "assert double(3) == 6\\nassert double(-2) == -4"}'


@pytest.fixture(scope="module")
def box():
    with Sandbox(workers=1, limits=Limits(timeout_s=2, mem_mb=256)) as b:
        yield b


def test_honest_programs_pass():
    assert code_score("print(2*int(input()))", STDIO) == 1.0
    assert code_score("```python\ndef double(x):\n    return 2 * x\n```", FUNCTION) == 1.0
    assert code_score("def double(x):\n    return x + 2", FUNCTION) == 0.0  # wrong for -2


# Each hostile program, with what it attempts. In every case the score must be 0.
HOSTILE = {
    "infinite loop": "while True:\n    pass",
    "sleep past the limit": "import time\ntime.sleep(60)\nprint(6)",
    "fork bomb": "import os\nwhile True:\n    os.fork()",
    "subprocess": "import subprocess\nsubprocess.run(['sh', '-c', 'echo 6'])",
    "memory bomb": "x = bytearray(10**10)\nprint(6)",
    "huge output": "while True:\n    print('x' * 10000)",
    "write outside its directory": "open('/tmp/pipo_sandbox_escape', 'w').write('pwned')\nprint(6)",
    "read the host's files": "print(open('/etc/hostname').read())",
    "list the host's files": "import os\nprint(os.listdir('/'))",
    "open a socket": "import socket\nsocket.create_connection(('127.0.0.1', 22))\nprint(6)",
    "kill its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "exit 0 before the tests": "import sys\nsys.exit(0)",
    "hard exit 0 before the tests": "import os\nos._exit(0)",
    "patch the harness's builtins": (
        "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.AssertionError = type('X', (Exception,), {})"
    ),
    "steal the nonce through frames": (
        "import sys\nf = sys._getframe(1)\nwhile f is not None:\n    print(f.f_locals)\n    f = f.f_back"
    ),
    "steal frames through a traceback": (
        "try:\n    1/0\nexcept Exception as e:\n    print(e.__traceback__.tb_frame.f_back.f_locals)"
    ),
    "scan memory for the nonce": "import gc\nprint(gc.get_objects())",
    "ctypes": "import ctypes\nctypes.CDLL(None).system(b'touch /tmp/pipo_sandbox_escape')",
    "delete outside its directory": "import os\nos.remove('/tmp/pipo_sandbox_canary')",
    "forge stdio output then crash": "print(6)\nraise SystemExit(3)",
    "recursion bomb": "def f(n):\n    return f(n + 1)\nf(0)",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_programs_score_zero_and_leave_no_trace(name, tmp_path):
    canary = Path("/tmp/pipo_sandbox_canary")
    canary.write_text("still here")
    escape = Path("/tmp/pipo_sandbox_escape")
    escape.unlink(missing_ok=True)
    before = set(os.listdir("/tmp"))
    program = HOSTILE[name]
    start = time.monotonic()
    # stdio: the attack, then (where it prints) the right output; function mode: a wrong function
    # first, then the attack trying to get it past the tests
    scores = [code_score(program, STDIO), code_score("def double(x):\n    return 0\n" + program, FUNCTION)]
    elapsed = time.monotonic() - start
    assert scores == [0.0, 0.0], name
    assert elapsed < 2 * (2 + 1) + 3, f"{name}: {elapsed:.1f}s, over its time limits"
    assert canary.read_text() == "still here" and not escape.exists()
    assert not {p for p in set(os.listdir("/tmp")) - before if p.startswith("pipo-sbx-")}, (
        "a sandbox directory was left"
    )
    # no process of the sandbox user is left running
    left = subprocess.run(["pgrep", "-u", "nobody"], capture_output=True, text=True).stdout.split()
    assert not left or os.geteuid() != 0, f"processes left: {left}"


def test_the_sandbox_survives_and_reports_each_limit(box):
    assert box.run("while True: pass").status == "timeout"
    assert box.run("print('x' * (1 << 22))").status == "output_limit"
    r = box.run("x = bytearray(1 << 30)")
    assert r.status == "error" and not r.passed
    assert box.run("print(sum(range(10)))").stdout == "45\n"  # still serving after all of that


def test_standard_library_modules_work(box):
    program = (
        "import fractions, collections, heapq, itertools\nprint(fractions.Fraction(1, 3) + fractions.Fraction(1, 6))"
    )
    assert box.run(program).stdout == "1/2\n"


def test_function_mode_needs_the_tests_to_run_to_their_end(box):
    assert box.run("def f(x):\n    return x", tests="assert f(1) == 1").passed
    assert not box.run("def f(x):\n    return x", tests="assert f(1) == 2").passed
    assert not box.run("def f(x):\n    return x", tests="assert f(1) == 1\nraise SystemExit(0)").passed
