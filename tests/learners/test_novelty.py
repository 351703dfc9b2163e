"""DEMC's novelty test (issue 11): the relative test, the cluster descriptor, the detection score,
the plot along the stream, and the Inception file's sha256."""
from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import pytest
import torch

from streamvae.errors import ConfigError
from streamvae.evaluation.novelty import novelty_detection
from streamvae.learners.demc import DEMCMemoryConfig
from streamvae.learners.novelty import NOVELTY_STATISTICS, RelativeNoveltyTest
from streamvae.registry import load_config
from streamvae.loop import build

from ..conftest import REPO

DEMC = str(REPO / "configs/split_fashion/demc.yaml")


def run_test(values, **kw):
    """Feed values through the test as the learner does (fire -> reset, else push), with the shipped
    defaults unless overridden. Returns the indices where it fired."""
    m = DEMCMemoryConfig()
    test = RelativeNoveltyTest(**{"window": m.novelty_window, "warmup": m.novelty_warmup,
                                  "z_threshold": m.novelty_z, "min_mad": m.novelty_min_mad, **kw})
    fired = []
    for i, v in enumerate(values):
        if test.fires(test.score(v)):
            fired.append(i)
            test.reset()
        else:
            test.push(v)
    return fired


def test_the_relative_test_stays_quiet_on_a_stationary_noisy_series_whatever_its_scale():
    g = torch.Generator().manual_seed(0)
    for scale in (1e-4, 0.1, 30.0):  # batch-statistics KL, running-statistics KL, a large lambda's scale
        values = (scale * torch.exp(0.25 * torch.randn(300, generator=g))).tolist()  # log-normal noise
        assert run_test(values, warmup=20, z_threshold=5.0) == []  # P(z > 5) per check: about 5e-5


def test_the_relative_test_fires_at_a_jump_and_then_adapts_to_the_new_level():
    g = torch.Generator().manual_seed(1)
    noise = torch.exp(0.25 * torch.randn(150, generator=g))
    values = (1e-4 * noise[:60]).tolist() + (1e-3 * noise[60:]).tolist()  # tenfold at check 60
    assert run_test(values) == [60]  # once, at the jump; then a fresh reference at the new level


def test_the_relative_test_waits_for_its_warmup_and_follows_slow_drift():
    assert run_test([1.0] * 5 + [1e6], warmup=10) == []  # no decision during the warm-up
    assert run_test([1.0] * 10 + [1e6], warmup=10) == [10]
    drift = [1e-4 * math.exp(0.01 * i) for i in range(400)]  # the encoder drifting: 55-fold over the series
    assert run_test(drift) == []


def test_z_is_the_robust_score_of_the_log():
    test = RelativeNoveltyTest(window=5, warmup=3, z_threshold=4.0, min_mad=1e-3)
    for v in (1.0, math.e, math.e ** 2):  # logs 0, 1, 2: median 1, MAD 1
        test.push(v)
    assert test.score(math.e ** 4) == pytest.approx(3 / 1.4826)
    for v in (1.0, 1.0, 1.0):
        test.push(v)
    assert len(test.history) == 5  # the window keeps the last five
    state = test.state_dict()
    other = RelativeNoveltyTest(window=5, warmup=3, z_threshold=4.0, min_mad=1e-3)
    other.load_state_dict(state)
    assert other.score(2.0) == test.score(2.0)


@pytest.mark.parametrize("descriptor", ["random", "temporary-memory"])
def test_the_cluster_descriptor_comes_from_the_images_it_names(data_root, descriptor):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False", f"memory.cluster_descriptor={descriptor}"])
    stream, learner = build(cfg, data_root)
    x = torch.cat([stream.batch(0).x, stream.batch(1).x])  # 128 images
    learner.temp.add(x)
    seen = []
    real = learner.latent_stats
    learner.latent_stats = lambda images: (seen.append(images), real(images))[1]
    learner.make_cluster()
    assert len(seen) == 1
    if descriptor == "temporary-memory":
        assert torch.equal(seen[0], x)
    else:
        assert len(seen[0]) == cfg.memory.cluster_size and not torch.equal(seen[0], learner.clusters.images[0])
    mu, sigma = real(seen[0])
    assert torch.allclose(learner.clusters.means[0], mu.mean(0))


def test_the_learner_logs_z_at_every_check_and_a_checkpoint_keeps_the_relative_history(data_root):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False", "memory.novelty_test=relative",
                             "memory.novelty_warmup=1", "memory.novelty_z=1000.0"])
    stream, learner = build(cfg, data_root)
    for t in range(5):
        learner.arrive(stream.batch(t).x)
    assert [e["arrival"] for e in learner.log] == [2, 4, 5]  # the first cluster at 2; checks on overflow
    assert learner.log[1]["z"] is None and isinstance(learner.log[2]["z"], float)  # warm-up of one check
    assert len(learner.relative.history) == 2 and learner.clusters.num_clusters == 1
    _, fresh = build(cfg, data_root)
    buf = io.BytesIO()  # through bytes, as a checkpoint: optimiser state must not be shared with `learner`
    torch.save(learner.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=False))
    assert fresh.relative.history == learner.relative.history
    x = stream.batch(5).x
    assert learner.arrive(x) == fresh.arrive(x) and learner.log == fresh.log


def test_detection_and_false_alarms_on_a_hand_made_event_list():
    # three tasks ending at arrivals 20, 40 and 60: switches at 20 and 40
    events = [{"arrival": 5, "novelty": None, "expanded": True},  # the first cluster: neither
              {"arrival": 10, "novelty": 1.0, "expanded": True},  # a false alarm in task 0
              {"arrival": 19, "novelty": 1.0, "expanded": False},
              {"arrival": 21, "novelty": 1.0, "expanded": False},  # first check after switch 1
              {"arrival": 22, "novelty": 9.0, "expanded": True},  # second: detected with window 2
              {"arrival": 40, "novelty": 1.0, "expanded": False},  # the boundary batch: an extra check
              {"arrival": 41, "novelty": 1.0, "expanded": False},
              {"arrival": 42, "novelty": 1.0, "expanded": False},
              {"arrival": 45, "novelty": 9.0, "expanded": True},  # too late for window 2: a false alarm
              {"arrival": 50, "novelty": 9.0, "expanded": True}]  # another false alarm
    s = novelty_detection(events, [20, 40, 60], window=2)
    assert (s["switches"], s["detected"], s["detection_rate"], s["false_alarms"]) == (2, 1, 0.5, 3)
    assert [t["detected"] for t in s["per_task"]] == [None, True, False]
    assert [t["delay"] for t in s["per_task"]] == [None, 2, None]  # arrivals after the boundary
    assert [t["false_alarms"] for t in s["per_task"]] == [1, 0, 2]
    assert [t["expansions"] for t in s["per_task"]] == [2, 1, 2]
    wide = novelty_detection(events, [20, 40, 60], window=4)  # the late expansion now detects switch 2
    assert (wide["detected"], wide["false_alarms"]) == (2, 2) and wide["per_task"][2]["delay"] == 5
    straddle = novelty_detection([{"arrival": 20, "novelty": 9.0, "expanded": True}], [20, 40], window=1)
    assert straddle["detected"] == 1 and straddle["per_task"][1]["delay"] == 0
    with pytest.raises(ValueError):
        novelty_detection(events, [20, 40, 60], window=0)


def test_the_novelty_plot_draws_the_checks_of_a_run(tmp_path):
    from streamvae.report.plots import plot_novelty_over_stream
    from streamvae.report.runs import Run

    events = [{"arrival": a, "novelty": 1e-4 * (10 if a in (21, 41) else 1), "z": 0.5 if a > 3 else None,
               "expanded": a in (21, 41), "clusters": 1} for a in range(2, 60)]
    run = Run(path=tmp_path, config={"memory": {"novelty_test": "relative", "novelty_threshold": 5.0,
                                                "novelty_z": 4.0}},
              results=None, rows=[{"arrival": 60, "task_ends": [20, 40, 60]}], events=events, label="demc")
    fig = plot_novelty_over_stream([run])
    assert fig is not None and "2/2 switches, 0 false alarms" in fig.legends[0].get_texts()[0].get_text()
    assert fig.axes[0].get_ylabel() == "novelty (KL per latent dim)"
    recon = Run(path=tmp_path, config={"memory": {"novelty_test": "relative", "novelty_statistic": "recon"}},
                results=None, rows=run.rows, events=events, label="demc-recon")
    assert plot_novelty_over_stream([recon]).axes[0].get_ylabel() == "novelty (batch recon error / cluster's)"
    assert plot_novelty_over_stream([Run(path=tmp_path, config={}, results=None, rows=[], events=[])]) is None
    # the mmd statistic is a z-score of its own (negative inside a task): one panel, symmetric-log axis
    z_events = [{**e, "novelty": (30.0 if e["expanded"] else -0.5), "z": None} for e in events]
    mmd = Run(path=tmp_path, config={"memory": {"novelty_test": "absolute", "novelty_statistic": "mmd",
                                                "novelty_threshold": 8.0}},
              results=None, rows=run.rows, events=z_events, label="demc-mmd")
    fig = plot_novelty_over_stream([mmd])
    assert len(fig.axes) == 1 and fig.axes[0].get_yscale() == "symlog"
    assert "2/2 switches, 0 false alarms" in fig.legends[0].get_texts()[0].get_text()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, still works
def test_the_inception_file_is_checked_against_its_sha256_and_recorded(tmp_path, capsys, monkeypatch):
    from streamvae.config import EvalConfig
    from streamvae.evaluation import fid

    monkeypatch.setattr(fid, "fid_from_features", lambda a, b: 0.0)  # a 2048-d sqrtm takes minutes: not tested here

    class Pool(torch.nn.Module):
        def forward(self, x):
            return x.mean((2, 3)).repeat(1, 683)[:, :2048]

    path = tmp_path / "inception.pt"
    torch.jit.script(Pool()).save(str(path))
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    x = torch.rand(4, 784)
    row = fid.inception_fid(x, x.flip(0), x, (1, 28, 28), EvalConfig(fid_inception=str(path)))
    assert row["fid_inception_sha256"] == digest and digest in capsys.readouterr().err  # unchecked: printed
    ok = EvalConfig(fid_inception=str(path), fid_inception_sha256=digest.upper())
    assert fid.inception_fid(x, x, x, (1, 28, 28), ok)["fid_inception_sha256"] == digest
    wrong = EvalConfig(fid_inception=str(path), fid_inception_sha256="0" * 64)
    with pytest.raises(ConfigError, match="refusing") as err:
        fid.inception_fid(x, x, x, (1, 28, 28), wrong)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="64 hex digits"):
        EvalConfig(fid_inception_sha256="abc").validate()


def test_the_recon_statistic_scores_unlearnt_data_above_learnt_data_and_can_expand(data_root):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False", "memory.novelty_statistic=recon",
                             "memory.novelty_test=relative", "memory.novelty_warmup=1", "memory.novelty_z=1.0",
                             "learner.updates_per_arrival=20"])  # enough to learn what the images look like
    stream, learner = build(cfg, data_root)
    for t in range(5):
        learner.arrive(stream.batch(t).x)
    assert learner.clusters.num_clusters == 1 and learner.log[-1]["novelty"] is not None
    seen, unseen = stream.batch(5).x, 1.0 - stream.batch(5).x  # the same images, inverted: never trained on
    ratio = NOVELTY_STATISTICS["recon"]()
    familiar, novel = ratio.distance(learner, seen), ratio.distance(learner, unseen)
    assert familiar.shape == novel.shape == (1,)
    assert float(novel) > 1.1 * float(familiar)  # unlearnt images reconstruct worse (1.19-1.26x, 3 seeds)
    # the statistic the learner logs and tests is the aggregated ratio: the inverted batch expands
    learner.arrive(unseen)
    assert learner.log[-1]["expanded"] and learner.log[-1]["novelty"] > 1.1 * float(familiar)
    assert learner.clusters.num_clusters == 2


def test_the_recon_statistic_rejects_refreshing_latent_descriptors():
    with pytest.raises(ConfigError, match="novelty_statistic=kl"):
        DEMCMemoryConfig(novelty_statistic="recon", refresh_stats=True).validate()
    with pytest.raises(ConfigError, match="novelty_statistic"):
        DEMCMemoryConfig(novelty_statistic="loss").validate()


# -- novelty_statistic=mmd: the model-free pixel-space test --------------------------------------


def _blobs(n, shift, g, d=20):
    """``n`` points of an isotropic Gaussian in ``d`` dims, its mean moved by ``shift`` along one axis."""
    x = torch.randn(n, d, generator=g)
    x[:, 0] += shift
    return x


def test_mmd_z_is_about_zero_for_one_distribution_and_large_for_another():
    from streamvae.learners.novelty import mmd_permutation_z

    g = torch.Generator().manual_seed(0)
    same = [mmd_permutation_z(_blobs(64, 0.0, g), _blobs(256, 0.0, g), 100, g) for _ in range(40)]
    shifted = [mmd_permutation_z(_blobs(64, 1.5, g), _blobs(256, 0.0, g), 100, g) for _ in range(10)]
    assert abs(sum(same) / len(same)) < 0.6 and max(same) < 8.0  # the null: centred, no value at the threshold
    assert min(shifted) > 10.0  # a moved distribution: far above it
    # scale-free: the median-heuristic kernel gives the same z for data scaled by 1000
    x, r = _blobs(64, 1.0, g), _blobs(256, 0.0, g)
    a = mmd_permutation_z(x, r, 50, torch.Generator().manual_seed(3))
    b = mmd_permutation_z(1000 * x, 1000 * r, 50, torch.Generator().manual_seed(3))
    assert a == pytest.approx(b, rel=1e-6)
    with pytest.raises(ValueError, match="permutations"):
        mmd_permutation_z(x, r, 1)


def test_mmd_z_equals_its_definition_computed_naively_in_fp64():
    from streamvae.learners.novelty import mmd_permutation_z

    g = torch.Generator().manual_seed(5)
    x, ref = _blobs(16, 0.7, g, d=8), _blobs(40, 0.0, g, d=8)
    pooled = torch.cat([x, ref]).double()
    d2 = torch.cdist(pooled, pooled).pow(2)
    h2 = d2[tuple(torch.triu_indices(56, 56, 1))].median()  # the lower median, as documented

    def mmd2(a, b):  # biased: mean k(a, a') + mean k(b, b') - 2 mean k(a, b)
        k = lambda u, v: torch.exp(-torch.cdist(u, v).pow(2) / (2 * h2))  # noqa: E731
        return k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()

    perms = torch.rand(30, 56, generator=torch.Generator().manual_seed(9)).argsort(1)  # the draws it makes
    null = torch.stack([mmd2(pooled[p < 16], pooled[p >= 16]) for p in perms])  # image j takes slot p[j]
    expected = (mmd2(pooled[:16], pooled[16:]) - null.mean()) / null.std()
    assert mmd_permutation_z(x, ref, 30, torch.Generator().manual_seed(9)) == pytest.approx(float(expected), abs=1e-3)


def test_the_mmd_statistic_compares_the_batch_with_the_temporary_memory_before_it(data_root):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False", "memory.novelty_statistic=mmd",
                             "memory.novelty_threshold=8.0", "memory.novelty_mmd_reference=64"])
    stream, learner = build(cfg, data_root)
    pool = torch.cat([stream.batch(t).x for t in range(len(stream))])  # every class: one stationary mix
    g = torch.Generator().manual_seed(0)
    for _ in range(6):  # the smoke stream changes task nearly every batch: draw batches from the mix instead
        learner.arrive(pool[torch.randperm(len(pool), generator=g)[:64]])
    assert learner.clusters.num_clusters == 1 and all(e["z"] is None for e in learner.log)
    checks = [e["novelty"] for e in learner.log[1:]]
    assert len(checks) >= 2 and max(checks) < 8.0 and not any(e["expanded"] for e in learner.log[1:])
    seen = []
    import streamvae.learners.novelty as demc_module
    real = demc_module.mmd_permutation_z
    try:  # the reference is M^t without the incoming batch
        demc_module.mmd_permutation_z = lambda x, ref, p, g: (seen.append((x, ref)), real(x, ref, p, g))[1]
        inverted = 1.0 - pool[:64]  # never seen: far from everything in M^t
        before = learner.temp.data.clone()
        learner.arrive(inverted)
    finally:
        demc_module.mmd_permutation_z = real
    x, ref = seen[0]
    assert torch.equal(x, inverted) and len(ref) == 64
    assert all(any(torch.equal(row, b) for b in before) for row in ref)  # every reference image was in M^t
    assert learner.log[-1]["novelty"] > 10.0 and learner.log[-1]["expanded"]
    assert learner.clusters.num_clusters == 2


def test_the_mmd_statistic_needs_the_absolute_test():
    with pytest.raises(ConfigError, match="novelty_test=absolute"):
        DEMCMemoryConfig(novelty_statistic="mmd", novelty_test="relative").validate()
    with pytest.raises(ConfigError, match="novelty_mmd_permutations"):
        DEMCMemoryConfig(novelty_statistic="mmd", novelty_mmd_permutations=1).validate()
    DEMCMemoryConfig(novelty_statistic="mmd", novelty_threshold=8.0).validate()
