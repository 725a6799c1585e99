"""Dependencies run one way: conf → cells → backends → records → analysis. ``pipo`` never imports the
analysis, and the analysis reads the configuration through ``pipo`` (no hand-read ``conf/``). Every third-party
module the code imports is a dependency that pyproject.toml declares directly, and environment.yml agrees."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

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


# --- every third-party import is a declared dependency -------------------------------------------------------

SCANNED = ("pipo", "analysis", "reproduce", "tests")
# Imported modules that a `.[dev]` environment does not install, so packages_distributions() cannot name their
# distribution here: module → (the extra that must declare it, its distribution). Packages importable only on a
# GPU node (the `verl` extra's rollout engine, vllm …) belong here too; none is imported by name today.
NOT_INSTALLED_BY_DEV = {
    "trl": ("bench", "trl"),  # tests/bench/trl_peer.py, the peer benchmark
    "tomli": ("dev", "tomli"),  # this file, on Python 3.10 only (a marker in the dev extra)
}


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them (PyYAML = pyyaml, huggingface_hub = huggingface-hub)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"unreadable requirement {requirement!r}"
    return normalized(match.group(1))


def declared(pyproject: Path) -> dict[str, set[str]]:
    """Group ("core", or an extra's name) → the distributions it names directly (transitive ones do not count)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    groups = {"core": project["dependencies"], **project.get("optional-dependencies", {})}
    return {group: {requirement_name(r) for r in reqs} for group, reqs in groups.items()}


def allowed_groups(rel: Path) -> tuple[str, ...]:
    """What a file may import from: the library and its entry points only the core dependencies; tests the dev
    extra too; the benchmarks (tests/bench/) also the bench extra."""
    if rel.parts[0] != "tests":
        return ("core",)
    return ("core", "dev", "bench") if rel.parts[:2] == ("tests", "bench") else ("core", "dev")


def third_party_imports(root: Path) -> dict[str, set[Path]]:
    """Top-level module → the files (relative to ``root``) that import it, leaving out the standard library and
    the project's own modules: its packages, the benchmark scripts, which import each other by file name
    (tests/test_cost_model.py imports tests/bench/cost_model.py so), and reproduce/'s scripts' helper
    (``import _checkout``)."""
    files = [p for d in SCANNED for p in sorted((root / d).rglob("*.py"))]
    scripts = [*(root / "tests" / "bench").glob("*.py"), *(root / "reproduce").glob("*.py")]
    local = set(SCANNED) | {p.stem for p in scripts}
    found: dict[str, set[Path]] = {}
    for path in files:
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top not in local:
                found.setdefault(top, set()).add(path.relative_to(root))
    return found


def undeclared(pyproject: Path, root: Path = ROOT) -> list[str]:
    """One line per third-party module imported under ``root`` whose distribution ``pyproject`` does not declare
    in a group that the importing file may use."""
    groups, providers, problems = declared(pyproject), packages_distributions(), []
    for module, files in sorted(third_party_imports(root).items()):
        for allowed in sorted({allowed_groups(f) for f in files}):
            names = set().union(*(groups.get(g, set()) for g in allowed))
            where = sorted(f for f in files if allowed_groups(f) == allowed)[0]
            if module not in providers and module in NOT_INSTALLED_BY_DEV:
                group, dist = NOT_INSTALLED_BY_DEV[module]
                if group not in allowed or normalized(dist) not in groups.get(group, set()):
                    problems.append(f"{where} imports {module}: declare {dist} in the {group!r} extra")
            elif module not in providers:
                problems.append(f"{where} imports {module}, which no installed distribution provides (not installed?)")
            elif not {normalized(d) for d in providers[module]} & names:
                problems.append(
                    f"{where} imports {module} (from {', '.join(providers[module])}), not declared in {list(allowed)}"
                )
    return problems


def test_every_third_party_import_is_a_declared_dependency():
    assert undeclared(ROOT / "pyproject.toml") == []


def test_the_scan_tells_the_projects_modules_from_third_party_ones():
    found = third_party_imports(ROOT)
    assert {"verl", "torch", "yaml", "scipy", "trl"} <= set(found)  # pipo/backends/verl/ is no module "verl"
    ours = {"pipo", "analysis", "tests", "cost_model", "pipo_overhead", "_checkout"}
    assert not (ours | {"os", "__future__"}) & set(found)


@pytest.mark.parametrize(
    "requirement, module",
    [
        ("scipy>=1.11", "scipy"),  # a test's import, from the dev extra
        ("pyyaml>=6", "yaml"),  # an import name unlike its distribution's
        ("tensordict>=0.8,!=0.9.0,<=0.10.0", "tensordict"),  # installed anyway (verl needs it): still undeclared
        ("trl==1.16.0", "trl"),  # a benchmark's, from the bench extra
    ],
)
def test_the_check_fails_when_a_declared_dependency_is_removed(tmp_path, requirement, module):
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    without, n = re.subn(rf'"{re.escape(requirement)}",?\s*', "", text)
    assert n == 1, f"{requirement} is not declared once in pyproject.toml"
    (tmp_path / "pyproject.toml").write_text(without, encoding="utf-8")
    before = undeclared(ROOT / "pyproject.toml")
    new = [p for p in undeclared(tmp_path / "pyproject.toml") if p not in before]
    assert new and all(f" imports {module}" in p for p in new), new


def test_the_library_may_not_import_what_only_the_tests_declare(tmp_path):
    (tmp_path / "pipo").mkdir()
    (tmp_path / "pipo" / "m.py").write_text("def f():\n    import scipy.stats\n")
    for d in SCANNED[1:]:
        (tmp_path / d).mkdir()
    problems = undeclared(ROOT / "pyproject.toml", tmp_path)
    assert len(problems) == 1 and problems[0].startswith(f"{Path('pipo/m.py')} imports scipy"), problems


def test_environment_yml_agrees_with_pyproject():
    """environment.yml's pip list = pyproject's core dependencies + the dev extra, requirement for requirement
    (torch: environment.yml pins the CPU build that the README installs first)."""
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    spec = lambda reqs: {requirement_name(r): re.sub(r"\s+", "", r) for r in reqs}  # noqa: E731
    conda = spec(r for r in pip if r != "-e .")
    wanted = spec([*project["dependencies"], *project["optional-dependencies"]["dev"]])
    assert conda.pop("torch") == "torch==2.13.0" and wanted.pop("torch") == "torch>=2.4"
    assert conda == wanted
