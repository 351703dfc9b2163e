"""LIMix: the knowledge gate expands exactly when every K_j exceeds the threshold, a stage trains only
the chosen component (and the trunk only in the first windows), the Student, resume, bad settings."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from streamvae.cli import main
from streamvae.errors import ConfigError
from streamvae.loop import build
from streamvae.registry import load_config

from ..conftest import REPO, full_and_resumed

CFG = str(REPO / "configs/split_fashion/limix.yaml")


def _learner(data_root, *extra):
    cfg = load_config(CFG, ["budget=smoke", "progress=False", *extra])
    return build(cfg, data_root)


def _set_threshold(learner, value: float) -> None:
    cfg = learner.cfg
    learner.cfg = dataclasses.replace(cfg, learner=dataclasses.replace(cfg.learner, threshold=value))


def _scores_for_next_window(learner, window: torch.Tensor) -> list[float]:
    """The K_j the next check will compute (same generator state, restored afterwards)."""
    state = learner.generator.get_state()
    scores = [learner.knowledge(comp, window) for comp in learner.model.components]
    learner.generator.set_state(state)
    return scores


def test_the_gate_expands_exactly_when_every_score_exceeds_the_threshold(data_root):
    stream, learner = _learner(data_root, "learner.threshold=0.0")
    t = 0
    while len(learner.model) < 2:  # threshold 0: the second window expands
        learner.observe(stream.batch(t).x)
        t += 1
    assert learner.log[-1]["expanded"]
    # the next window: two components, two scores; a threshold between them must NOT expand
    x1, x2 = stream.batch(t).x, stream.batch(t + 1).x
    window = torch.cat([learner.stm.data, x1, x2])
    snapshot = (learner.generator.get_state(), {k: v.clone() for k, v in learner.model.state_dict().items()})

    def run_window(threshold):
        while len(learner.model) > 2:
            del learner.model.components[-1]
        learner.generator.set_state(snapshot[0])
        learner.model.load_state_dict(snapshot[1])
        learner.stm.clear()
        learner.stm.add(window[:-2 * len(x1)])
        _set_threshold(learner, threshold)
        learner.observe(x1)
        scores = _scores_for_next_window(learner, window)
        learner.observe(x2)
        return scores, learner.log[-1]

    scores, _ = run_window(1e9)
    lo, hi = min(scores), max(scores)
    for threshold, expands in ((lo * 0.5, True), ((lo + hi) / 2, False), (hi * 2, False)):
        s, event = run_window(threshold)
        assert s == pytest.approx(event["K_scores"], abs=1e-3)
        assert event["expanded"] is expands and len(learner.model) == 2 + expands
        if not expands:
            assert event["trained"] == min(range(2), key=s.__getitem__) and event["replay"] > 0


def test_a_stage_trains_only_the_chosen_component_and_the_trunk_only_at_first(data_root):
    stream, learner = _learner(data_root, "learner.threshold=0.0")
    shared0 = {n: p.clone() for n, p in learner.model.shared.named_parameters()}
    t = 0
    while learner.windows < 1:
        learner.observe(stream.batch(t).x)
        t += 1
    assert any(not torch.equal(p, shared0[n]) for n, p in learner.model.shared.named_parameters())
    before = {n: p.clone() for n, p in learner.model.named_parameters()}
    while learner.windows < 2:  # expands (threshold 0) and trains component 2 only
        learner.observe(stream.batch(t).x)
        t += 1
    changed = {n for n, p in learner.model.named_parameters() if n in before and not torch.equal(p, before[n])}
    assert changed and all(n.startswith("student.") for n in changed)  # component 1 and the trunk are untouched
    assert learner.log[-1]["trained"] == 1


def test_the_student_is_what_is_scored_when_asked(data_root):
    _, learner = _learner(data_root, "learner.evaluate=student")
    assert learner.components() == [learner.model.student]
    with pytest.raises(ConfigError, match="learner.student"):
        load_config(CFG, ["learner.evaluate=student", "learner.student=false"])


def test_resume_equals_an_uninterrupted_run(tmp_path, data_root):
    args = [CFG, "--set", "budget=smoke", "--set", "learner.threshold=0.0", "--no-progress", "--data-root", data_root]
    full, part = full_and_resumed(tmp_path, args, data_root)
    assert full["limix_components"] >= 2
    assert full == part
    assert (tmp_path / "part/events.jsonl").read_text() == (tmp_path / "full/events.jsonl").read_text()


@pytest.mark.parametrize("override, words", [
    ("learner.threshold=-1.0", ["learner.threshold", "-1.0"]),
    ("memory.window=10", ["memory.window=10", "learner.minibatch=64"]),
])
def test_bad_settings_give_one_line_errors(tmp_path, data_root, capsys, override, words):
    out = tmp_path / "bad"
    code = main(["run", CFG, "--set", "budget=smoke", "--set", override, "--no-progress", "--data-root", data_root,
                 "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and not out.exists()
    assert len(err) == 1 and all(w in err[0] for w in words), err
