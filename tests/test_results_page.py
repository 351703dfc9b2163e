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


def test_the_readme_numbers_of_what_reproduces_are_those_of_the_records():
    """The README's first table is written by hand (its notes are prose), so its numbers are checked:
    each of its values, ours and published, appears in a table its row's command rebuilds from results/."""
    import re

    from streamvae.reproduce import records_table

    text = (REPO / "README.md").read_text()
    start = text.index("**What reproduces**")
    table = [line for line in text[start:text.index("\n\n", text.index("\n|", start))].splitlines()
             if line.startswith("| ") and not line.startswith("| paper number")]
    assert len(table) >= 5
    built: dict[tuple[str, str], str] = {}
    for line in table:
        paper, ours, *_, remake = [c.strip() for c in line.strip("|").split(" | ")]
        commands = re.findall(r"streamvae reproduce (\S+) --budget (\w+)", remake)
        assert commands, f"README row without a reproduce command: {line}"
        for name, budget in commands:
            if (name, budget) not in built:
                built[name, budget] = records_table(name, budget, REPO / "results")
        rebuilt = "\n".join(built[c] for c in commands)
        values = re.findall(r"-\d+\.\d+", paper) + re.findall(r"-\d+\.\d+|± \d+\.\d+", ours)
        missing = [v for v in values if v not in rebuilt]
        assert not missing, f"README's {missing} are in no table that {commands} rebuilds from results/: {line}"
