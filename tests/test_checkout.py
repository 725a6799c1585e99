"""`python reproduce/x.py` runs this checkout's code, whichever checkout the environment was installed from."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_script_and_the_processes_it_starts_import_their_own_checkouts_pipo(tmp_path):
    other = tmp_path / "other_checkout"  # a second checkout: its own pipo, the environment's is this one's
    (other / "reproduce").mkdir(parents=True)
    (other / "pipo").mkdir()
    (other / "pipo" / "__init__.py").write_text("")
    (other / "reproduce" / "_checkout.py").write_text((ROOT / "reproduce" / "_checkout.py").read_text())
    child = "import pipo; print(pipo.__file__)"
    (other / "reproduce" / "show.py").write_text(
        "import subprocess, sys\nimport _checkout\nimport pipo\n"
        f"print(pipo.__file__)\nsubprocess.run([sys.executable, '-c', {child!r}], check=True)\n"
    )
    out = subprocess.run(
        [sys.executable, str(other / "reproduce" / "show.py")], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == [str(other / "pipo" / "__init__.py")] * 2
    # without it, the script would import the installed pipo (this checkout's): the test can tell them apart
    plain = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert plain.stdout.strip() != out[0]


def test_every_script_imports_it_before_pipo_or_analysis():
    for script in sorted((ROOT / "reproduce").glob("*.py")):
        if script.name == "_checkout.py":
            continue
        modules = [
            n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
            for n in ast.parse(script.read_text()).body
            if isinstance(n, ast.Import | ast.ImportFrom)
        ]
        ours = [i for i, m in enumerate(modules) if m.split(".")[0] in ("pipo", "analysis")]
        assert "_checkout" in modules and modules.index("_checkout") < min(ours), script.name
