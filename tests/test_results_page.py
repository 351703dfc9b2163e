"""RESULTS.md's tables are generated from the committed records: the page and the records agree."""
from __future__ import annotations

import json
from pathlib import Path

from streamvae.reproduce import page_blocks, regenerate_page

from .conftest import REPO


def test_results_md_tables_equal_the_ones_regenerated_from_the_records():
    text = (REPO / "RESULTS.md").read_text()
    assert ("ocm-table1", "paper") in page_blocks(text)
    assert regenerate_page(text, REPO / "results") == text, (
        "RESULTS.md's generated tables differ from results/: run python scripts/results-tables.py")


def test_records_hold_the_small_files_and_never_a_checkpoint():
    runs = [p.parent for p in (REPO / "results").rglob("results.json")]
    assert runs, "no record under results/"
    for run in runs:
        names = {p.name for p in run.iterdir()}
        assert {"results.json", "config.yaml"} <= names, run
        assert names <= {"results.json", "config.yaml", "metrics.jsonl", "events.jsonl", "train.jsonl", "train.jsonl.gz",
                         "eval-probe-concat.json"}, run
        assert not any(n.endswith((".pt", ".carry", ".tar.gz")) for n in names), run
        json.loads((run / "results.json").read_text())
        assert Path(run).parent.name in ("smoke", "demo", "fast", "hour", "paper")  # results/<spec>/<budget>/<cell>-s<seed>
