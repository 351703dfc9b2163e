"""OCM / Dynamic-OCM learners: expansion at a domain switch, frozen components, resumable expansions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from streamvae.cli import main
from streamvae.registry import load_config
from streamvae.loop import build
from streamvae.models.mixture import MixtureVAE

from ..conftest import REPO, stream_crashing_at, write_domain_root

DYN = str(REPO / "configs/split_fashion/dynamic-ocm.yaml")


def test_dynamic_ocm_expands_at_the_domain_switch_and_not_within_a_domain(data_root):
    """Domain A (one template, easy) then domain B (binary noise): R jumps by about 270 nats at the
    switch, moves by less than 20 inside a domain, and by about 160 at the event after the expansion
    (the LTM was wiped, so the memory becomes all-B: the released statistic's echo)."""
    write_domain_root(Path(data_root), "mnist", domain=0)
    write_domain_root(Path(data_root), "fashion-mnist", domain=1)
    cfg = load_config(DYN, ["budget=smoke", "stream.datasets=[mnist,fashion]", "stream.tasks=dataset",
                            "stream.batch_size=40", "memory.stm_capacity=40", "memory.max_per_event=2",
                            "learner.epochs_per_arrival=3", "learner.lr=3e-3", "learner.expansion_threshold=200.0",
                            "learner.expansion_samples=20", "progress=False"])
    stream, learner = build(cfg, data_root)
    switch = stream.task_ends()[0]  # arrival where domain B starts (known to the test, not the learner)
    for t in range(len(stream)):
        learner.arrive(stream.batch(t).x)
    expansions = [e["arrival"] for e in learner.log if e.get("expanded")]
    deltas = [abs(e["R"] - e["R_last"]) for e in learner.log if e["R_last"] is not None and e["arrival"] <= switch]
    assert max(deltas) < 50  # inside domain A the statistic is stable
    assert len(learner.model) == 2 and len(expansions) == 1, learner.log
    first_event_after_switch = min(e["arrival"] for e in learner.log if e["arrival"] > switch)
    assert expansions[0] == first_event_after_switch


def test_after_an_expansion_only_the_newest_component_changes(data_root):
    cfg = load_config(DYN, ["budget=smoke", "learner.expansion_threshold=0.0", "progress=False"])
    stream, learner = build(cfg, data_root)
    t = 0
    while len(learner.model) < 2:
        learner.arrive(stream.batch(t).x)
        t += 1
    before = {n: p.clone() for n, p in learner.model.named_parameters()}
    assert all(not p.requires_grad for p in learner.model.shared.parameters())
    learner.arrive(stream.batch(t).x)  # trains; may not expand again: K changes are checked below
    newest = len(learner.model) - 1
    changed = {n for n, p in learner.model.named_parameters() if n in before and not torch.equal(p, before[n])}
    own = {n for n in changed if n.startswith(f"components.{newest}.") or n.startswith("components.1.")}
    assert changed and changed == own
    assert not any(n.startswith(("shared.", "components.0.")) for n in changed)
    assert learner.model.frozen_components() == list(range(len(learner.model) - 1))
    opt_params = {id(p) for g in learner.optimizer.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in learner.model.trainable_parameters()}


def test_resume_after_an_expansion_equals_an_uninterrupted_run(tmp_path, data_root, monkeypatch):
    args = [DYN, "--set", "budget=smoke", "--set", "learner.expansion_threshold=0.0", "--set", "learner.max_components=3",
            "--no-progress", "--data-root", data_root]
    assert main(["run", *args, "--out", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full/results.json").read_text())
    assert full["components"] >= 2

    with stream_crashing_at(5), pytest.raises(RuntimeError):
        main(["run", *args, "--out", str(tmp_path / "part")])
    ckpt = torch.load(tmp_path / "part/checkpoint.pt", weights_only=False)
    assert ckpt["arrival"] == 5 and MixtureVAE.components_in(ckpt["learner"]["model"]) >= 2
    assert main(["run", "--resume", str(tmp_path / "part"), "--data-root", data_root]) == 0
    part = json.loads((tmp_path / "part/results.json").read_text())
    strip = lambda r: {k: v for k, v in r.items() if "wall" not in k}  # noqa: E731
    assert strip(full) == strip(part)
    assert (tmp_path / "part/events.jsonl").read_text() == (tmp_path / "full/events.jsonl").read_text()


def test_mixture_results_report_selected_and_mixture_likelihoods(tmp_path, data_root):
    assert main(["run", DYN, "--set", "budget=smoke", "--set", "learner.expansion_threshold=0.0", "--no-progress",
                 "--data-root", data_root, "--out", str(tmp_path / "r")]) == 0
    r = json.loads((tmp_path / "r/results.json").read_text())
    assert r["components"] >= 2 and r["mixture_weights"] == "uniform"
    assert r["ll_iw20"] == r["ll_iw20_selected"]
    # the per-image best component is never worse than the uniform mixture of the same estimates
    # (up to the fresh re-evaluation noise of the selected bound)
    assert r["ll_iw20_selected"] >= r["ll_iw20_mixture"] - 1.0
    assert abs(sum(r["component_share"]) - 1) < 1e-6


def expanding_tests(data_root, monkeypatch, option: str, rs: list[float]) -> list[int]:
    """Run Dynamic-OCM (smoke) with R forced to the values ``rs`` (lambda2 = 10) and ``option``;
    return which expansion tests (1-based) expanded."""
    cfg = load_config(DYN, ["budget=smoke", "learner.expansion_threshold=10.0", "learner.max_components=5",
                            option, "progress=False"])
    stream, learner = build(cfg, data_root)
    values = iter(rs + [rs[-1]] * 100)
    monkeypatch.setattr(learner, "memory_bound", lambda x: next(values))
    for t in range(len(stream)):
        learner.arrive(stream.batch(t).x)
    tested = [e for e in learner.log if "R" in e]
    assert len(tested) >= 3, learner.log
    return [i + 1 for i, e in enumerate(tested) if e["expanded"]]


@pytest.mark.parametrize("direction, expected", [("both", [2, 3]), ("drop", [3])])
def test_expansion_direction_drop_ignores_a_rise_of_r(data_root, monkeypatch, direction, expected):
    """Released: |R - R_last| > lambda2 fires on a rise (learning progress) as on a fall; with
    expansion_direction=drop only a fall (the memory's likelihood dropping: new data) expands."""
    rs = [-300.0, -280.0, -300.0]  # a rise of 20, then a fall of 20
    assert expanding_tests(data_root, monkeypatch, f"learner.expansion_direction={direction}", rs) == expected


@pytest.mark.parametrize("rebaseline, expected", [(False, [2, 3]), (True, [2])])
def test_expansion_rebaseline_makes_the_test_after_an_expansion_a_new_baseline(data_root, monkeypatch, rebaseline,
                                                                               expected):
    """Released: the test right after an expansion compares with the R from before it (the memory has
    been wiped since), so it fires again; with expansion_rebaseline it only records R."""
    rs = [-300.0, -330.0, -380.0]
    option = f"learner.expansion_rebaseline={str(rebaseline).lower()}"
    assert expanding_tests(data_root, monkeypatch, option, rs) == expected
