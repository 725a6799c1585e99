"""Dependencies run one way: conf → cells → backends → records → analysis. ``pipo`` never imports the
analysis, and the analysis reads the configuration through ``pipo`` (no hand-read ``conf/``)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports (at any depth: in functions too), as dotted names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "pipo").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_of_pipo_imports_the_analysis(path):
    bad = sorted(m for m in imported_modules(path) if m == "analysis" or m.startswith("analysis."))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_scan_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from analysis.build import build\n    import analysis.runs\n")
    assert imported_modules(f) == {"analysis.build", "analysis.runs"}


def test_the_analysis_reads_no_conf_file_by_hand():
    for path in sorted((ROOT / "analysis").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "CONF_DIR" not in text and "train.yaml" not in text, path.relative_to(ROOT)
