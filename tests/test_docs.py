"""The docs a newcomer reads: a short README with its contents, and every reference the code makes
to docs/ALGORITHM.md resolving to a step or section there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    p
    for d in ("pipo", "analysis", "reproduce", "tests", "conf", "sweeps")
    for p in (ROOT / d).rglob("*")
    if p.suffix in (".py", ".yaml", ".sh") and p.name != "test_docs.py"
]


def headings(path: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]


def test_readme_is_short_with_contents_and_working_links():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 10_000
    assert "## Contents" in text
    for section in ("Set-up", "Main job", "One cell", "Sweeps", "Paper scale", "Results", "Tests"):
        assert f"## {section}" in text, section
    for link in re.findall(r"\]\(([^)#]+\.md)\)", text):
        assert (ROOT / link).exists(), link
    for doc in ("ALGORITHM", "VERL", "SANDBOX", "EXTENDING", "FIDELITY"):
        assert (ROOT / "docs" / f"{doc}.md").exists(), doc


def test_every_reference_to_the_algorithm_page_resolves():
    steps = {int(m) for h in headings(ROOT / "docs" / "ALGORITHM.md") for m in re.findall(r"^Step (\d+)\b", h)}
    assert steps == set(range(1, 10))
    sections = set(headings(ROOT / "docs" / "ALGORITHM.md"))
    found = 0
    for path in SOURCES:
        text = path.read_text()
        assert "PIPO_SPEC" not in text, f"{path}: cites a file outside the repository"
        for ref in re.findall(r"docs/ALGORITHM\.md[,;]?\s+(steps? [\d\-– and]+|\"[^\"]+\")", text.replace("\n", " ")):
            found += 1
            if ref.startswith('"'):
                assert ref.strip('"') in sections or any(ref.strip('"') in s for s in sections), (path, ref)
            else:
                numbers = {int(n) for n in re.findall(r"\d+", ref)}
                assert numbers <= steps, (path, ref)
    assert found >= 8  # the algorithm's modules and both trainers cite it


def test_fidelity_compares_the_three_sources_row_by_row():
    text = (ROOT / "docs" / "FIDELITY.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    for column in (
        "the paper",
        "authors' code (JacckMa/pipo_verl 7f48e23, file:line)",
        "this suite's default",
        "config key",
    ):
        assert column in header, column
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) >= 20
    cited = [row for row in rows if re.search(r"`[\w/.]+\.(py|yaml)`?:\d+|\.(py|yaml):\d+", row)]
    assert len(cited) >= 20  # the authors' facts carry a file and a line
