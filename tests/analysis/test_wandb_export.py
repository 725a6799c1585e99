"""Reading runs from W&B: an export into local records gives the same tables; rate limits are retried."""

import json
import random
from pathlib import Path

import pytest
import yaml

from analysis.build import build
from analysis.runs import load_runs
from analysis.wandb_export import export, with_retries
from tests.analysis.synthetic import config, evaluation, random_counts, random_metrics, write_record


class FakeRun:
    """The part of ``wandb.apis.public.Run`` the export uses."""

    def __init__(self, rec, state="finished", flaky=0):
        self.id, self.name, self.state = rec.path.name, f"run {rec.path.name}", state
        self.config = yaml.safe_load((rec.path / "cell.yaml").read_text())["config"]
        self.rows, self.flaky = {}, flaky
        for e in rec.read_json("eval.json")["evals"]:
            row = self.rows.setdefault(e["step"], {"_step": e["step"]})
            for split, b in e["benchmarks"].items():
                row.update({f"val/{split}/correct": b["correct"], f"val/{split}/n": b["n"]})
        for m in (rec.path / "metrics.jsonl").read_text().splitlines():
            m = json.loads(m)
            self.rows.setdefault(m["step"], {"_step": m["step"]}).update({k: v for k, v in m.items() if k != "step"})
        self.scans, self.saved, self.eval_json = 0, True, (rec.path / "eval.json").read_text()

    def file(self, name):
        """The run's saved file ``name`` (the mirror saves ``eval.json``); absent when ``saved`` is False."""
        if name != "eval.json" or not self.saved:
            raise ValueError(f"{name} not found")  # what wandb raises for a missing file is not ours to mimic
        return SavedFile(self.eval_json)

    def scan_history(self, keys):
        self.scans += 1
        if self.flaky:
            self.flaky -= 1
            raise RuntimeError("HTTP 429: rate limit exceeded")
        return [{k: r[k] for k in keys} for _, r in sorted(self.rows.items()) if all(k in r for k in keys)]


class SavedFile:
    def __init__(self, text):
        self.text = text

    def download(self, root, replace=False):
        path = Path(root) / "eval.json"
        path.write_text(self.text)
        return open(path)


class FakeApi:
    def __init__(self, runs, flaky=1):
        self._runs, self.flaky = runs, flaky

    def runs(self, path):
        if self.flaky:
            self.flaky -= 1
            raise RuntimeError("HTTP 429: rate limit exceeded")
        return self._runs


def test_export_gives_the_same_table_as_the_local_records(tmp_path):
    rng = random.Random(0)
    local = tmp_path / "runs"
    recs = []
    for i, (pipo, seed) in enumerate([(False, 6), (True, 6), (False, 42), (True, 42)]):
        evals = [evaluation(s, "math", random_counts("math", rng), rng) for s in (0, 50, 100)]
        recs.append(
            write_record(local, f"sig{i}", config(pipo=pipo, seed=seed), evals, metrics=random_metrics(100, rng))
        )
    runs = [FakeRun(r, flaky=1 if i == 0 else 0) for i, r in enumerate(recs)]
    runs[3].saved = False  # a run from before the mirror saved eval.json: counts only
    naps = []
    root = export("me", "pipo", tmp_path / "cache", api=FakeApi(runs), sleep=naps.append)
    assert naps == [2.0, 2.0]  # one retry for the project listing, one for a run's history
    a = build("table1", load_runs(local), "tiny", tmp_path / "a").table
    b = build("table1", load_runs(root), "tiny", tmp_path / "b").table
    assert {k: c.values for k, c in a.cells.items()} == {k: c.values for k, c in b.cells.items()}
    assert len(load_runs(root).frame) == 4
    exported = {p.name: json.loads((p / "eval.json").read_text())["evals"] for p in (root / "tiny").iterdir()}
    for i, rec in enumerate(recs):
        local_evals, theirs = rec.read_json("eval.json")["evals"], exported[rec.path.name]
        for ours, back in zip(local_evals, theirs, strict=True):
            for split, b in ours["benchmarks"].items():
                assert back["benchmarks"][split].get("per_problem") == (b["per_problem"] if i != 3 else None)
    scans = sum(r.scans for r in runs)
    export("me", "pipo", tmp_path / "cache", api=FakeApi(runs, flaky=0), sleep=naps.append)
    assert sum(r.scans for r in runs) == scans  # finished runs already exported are not fetched again


def test_retries_are_bounded():
    naps, calls = [], []

    def always_failing():
        calls.append(1)
        raise RuntimeError("HTTP 429")

    with pytest.raises(RuntimeError):
        with_retries(always_failing, attempts=3, backoff_s=1.0, sleep=naps.append)
    assert len(calls) == 3 and naps == [1.0, 2.0]
