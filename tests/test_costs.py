"""The cost model behind the start banner (streamvae.costs): one estimate per phase a run records."""
from __future__ import annotations

import pytest

from streamvae import costs
from streamvae.evaluation.points import eval_points
from streamvae.loop import build
from streamvae.registry import load_config
from streamvae.run_directory import PHASES


@pytest.mark.parametrize("name", ["ocm", "dynamic-ocm", "reservoir"])
def test_the_estimate_covers_every_recorded_phase_and_more_threads_never_cost_more(data_root, name):
    from .conftest import REPO

    cfg = load_config(REPO / f"configs/split_fashion/{name}.yaml", ["budget=fast", "threads=1"])
    stream, learner = build(cfg, data_root)
    points = len(eval_points(cfg, stream))
    one = costs.estimate(cfg, learner, len(stream), 1, 10000, points, stream.x_dim)
    two = costs.estimate(cfg, learner, len(stream), 2, 10000, points, stream.x_dim)
    assert one is not None and two is not None
    assert set(PHASES) | {"final_evaluation"} == set(one.phases)  # every phase wall_by_phase_s records
    assert all(v >= 0 for v in one.phases.values()) and one.phases["train_steps"] > 0
    assert two.total_s <= one.total_s
    assert abs(one.total_s - sum(one.phases.values())) < 1e-9


def test_cndpm_is_estimated_per_sleep_and_per_expert(data_root):
    """One sleep per STM's worth of images (the released log_alpha on Fashion sends them all there):
    training grows with the sleep length, evaluation with the test images, and every phase is there."""
    from .conftest import REPO

    def est(*extra):
        cfg = load_config(REPO / "configs/split_fashion/cndpm.yaml", ["budget=fast", "threads=1", *extra])
        stream, learner = build(cfg, data_root)
        e = costs.estimate(cfg, learner, 937, 1, 10000, 5, stream.x_dim)
        assert e is not None and set(PHASES) | {"final_evaluation"} == set(e.phases)
        return e

    base, long_sleeps, all_images = est(), est("learner.sleep_steps=12000"), est("eval.test_size=0")
    assert "59 experts" in base.notes[0]  # 937 x 64 images / 1000 per sleep
    assert long_sleeps.phases["train_steps"] > 3 * base.phases["train_steps"]
    assert all_images.phases["final_evaluation"] > 4 * base.phases["final_evaluation"]
    assert est("learner.max_experts=10").phases["final_evaluation"] < base.phases["final_evaluation"]


def test_limix_is_estimated_for_an_assumed_component_count(data_root):
    """LIMix's count is known only at the end: the estimate assumes Table 1's N = 30 (at most one per
    window and max_components), says so, and grows with the count it is given."""
    from .conftest import REPO

    cfg = load_config(REPO / "configs/split_fashion/limix.yaml", ["budget=fast", "threads=1"])
    stream, learner = build(cfg, data_root)
    assumed = costs.estimate(cfg, learner, 937, 1, 10000, 5, stream.x_dim)
    assert assumed is not None and set(PHASES) | {"final_evaluation"} == set(assumed.phases)
    assert "30 components assumed" in assumed.notes[0]
    two, seven = (costs.estimate(cfg, learner, 937, 1, 10000, 5, stream.x_dim, components=k) for k in (2, 7))
    assert two.total_s < seven.total_s < assumed.total_s and "2 components" in two.notes[0]
    capped = load_config(REPO / "configs/split_fashion/limix.yaml", ["budget=fast", "threads=1", "learner.max_components=5"])
    stream, learner = build(capped, data_root)
    assert "5 components" in costs.estimate(capped, learner, 937, 1, 10000, 5, stream.x_dim).notes[0]


def test_a_model_kind_without_measured_unit_costs_gets_no_estimate(data_root):
    """A plugin's learner with a model kind of its own: the banner says so and points to the progress
    bar, rather than printing a figure off by 30x."""
    from .conftest import REPO

    cfg = load_config(REPO / "configs/split_fashion/reservoir.yaml", ["budget=smoke"])
    stream, learner = build(cfg, data_root)
    learner.__class__ = type("PluginLearner", (type(learner),), {"model_kind": "plugin-kind"})
    assert costs.estimate(cfg, learner, len(stream), 1) is None
    lines = costs.banner_lines(cfg, learner, len(stream), 2, stream.x_dim)
    assert len(lines) == 1 and "no measured unit costs" in lines[0]


def test_a_step_timed_here_scales_the_estimate_and_leaves_the_run_untouched(data_root, monkeypatch):
    """``calibrate`` times a copy of the trainable VAE (a private generator, a fresh Adam): the run's
    parameters, optimiser and seeded generator are exactly as before (a resumed run equals an
    uninterrupted one), the torch threads are restored, and the compute phases scale by the measured
    step over the model's unit cost while checkpoints and logs do not. A smoke estimate is not timed."""
    import torch

    from .conftest import REPO

    cfg = load_config(REPO / "configs/split_fashion/dynamic-ocm.yaml", ["budget=fast", "threads=1"])
    stream, learner = build(cfg, data_root)
    est = costs.estimate(cfg, learner, 937, 1, 10000, 5, stream.x_dim)  # Split Fashion's arrivals
    assert est is not None and est.step_s and est.phases["train_steps"] > costs.CALIBRATE_ABOVE_S
    params = [p.detach().clone() for p in learner.model.parameters()]
    gen_state = learner.generator.get_state().clone()
    threads = torch.get_num_threads()
    costs._MEASURED.clear()
    monkeypatch.setattr(costs, "machine_busy", lambda threads=None: "load 3.0 on 2 cores")
    busy = costs.calibrate(costs.estimate(cfg, learner, 937, 1, 10000, 5, stream.x_dim), cfg, learner, threads=1)
    assert busy is not None and busy.measured_step_s is None and busy.phases == est.phases
    assert busy.untimed == "not timed here: the machine is busy (load 3.0 on 2 cores)" and not costs._MEASURED
    monkeypatch.setattr(costs, "machine_busy", lambda threads=None: None)
    got = costs.calibrate(est, cfg, learner, threads=1)
    assert torch.get_num_threads() == threads
    assert all(torch.equal(a, b) for a, b in zip(params, learner.model.parameters()))
    assert torch.equal(gen_state, learner.generator.get_state())
    assert not learner.optimizer.state  # the run's Adam took no step
    assert got is not None and got.measured_step_s and got.measured_step_s > 0
    factor = got.measured_step_s / est.step_s
    for phase, seconds in est.phases.items():
        scaled = seconds * factor if phase in costs.COMPUTE_PHASES else seconds
        assert got.phases[phase] == pytest.approx(scaled)
    smoke = load_config(REPO / "configs/split_fashion/ocm.yaml", ["budget=smoke", "threads=1"])
    s_stream, s_learner = build(smoke, data_root)
    small = costs.estimate(smoke, s_learner, len(s_stream), 1, 10000, 5, s_stream.x_dim)
    assert costs.calibrate(small, smoke, s_learner) is small


def test_machine_busy_reads_free_cores_of_the_whole_machine(monkeypatch):
    """The load average counts every core: a run pinned to one of two cores beside a run on the
    other is timed (one core free), two threads there are not, and a loaded machine never is."""
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert costs.machine_busy() is None  # pinned to the free core
    assert costs.machine_busy(threads=4) is None  # can use only the one core it may run on
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert costs.machine_busy(threads=1) is None
    assert costs.machine_busy(threads=2) == "load 1.0 on 2 cores"  # two threads, one core free
    assert costs.machine_busy() == "load 1.0 on 2 cores"
    monkeypatch.setattr(os, "getloadavg", lambda: (1.7, 1.0, 1.0))
    assert costs.machine_busy(threads=1) == "load 1.7 on 2 cores"
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 1.0, 1.0))
    assert costs.machine_busy() is None
