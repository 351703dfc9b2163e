"""Labelled grids: each component's steps add up to the run's, rows carry their labels, the PNG is written."""
from __future__ import annotations

import json

import torch
from PIL import Image

from streamvae import grids


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_component_steps_split_the_run_at_its_expansions(tmp_path):
    _write(tmp_path / "train.jsonl", [{"arrival": a, "steps": 10 * a} for a in range(1, 11)])
    _write(tmp_path / "events.jsonl", [{"arrival": 3, "expanded": True}, {"arrival": 5, "expanded": False},
                                       {"arrival": 7, "expanded": True}])
    steps = grids.component_steps(tmp_path, 3)
    assert steps == [30, 40, 30] and sum(steps) == 100
    assert grids.component_steps(tmp_path, 2) == [None, None]  # the files do not fit: no numbers made up


def test_rows_are_labelled_and_the_picture_is_written(tmp_path):
    samples = [torch.rand(4, 784), torch.rand(4, 784)]
    rows = grids.sample_rows(samples, [0.25, 0.75], [30, 70], 100)
    assert [label for label, _ in rows] == ["component 1: 25.0% of test images, 30 steps",
                                            "component 2: 75.0% of test images, 70 steps"]
    grids.save_labelled_rows(tmp_path / "s.png", "samples", rows, (1, 28, 28))
    w, h = Image.open(tmp_path / "s.png").size
    assert h == 20 + 2 * (28 + 4) * grids.SCALE and w > 4 * 28 * grids.SCALE  # title + two rows; a label column
    assert "one model, 1,234 optimiser steps" in grids.sample_title("ocm", "x", "demo", 1, 1234)
