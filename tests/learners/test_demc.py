"""The DEMC learner and its baselines end to end: cluster selection, checkpoints, resume, 32x32 CIFAR runs."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from streamvae.cli import main
from streamvae.registry import load_config
from streamvae.data import datasets
from streamvae.errors import ConfigError
from streamvae.loop import build

from ..conftest import REPO

DEMC = str(REPO / "configs/split_fashion/demc.yaml")


def test_a_new_cluster_holds_the_lowest_error_samples(data_root):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False"])
    stream, learner = build(cfg, data_root)
    x = torch.cat([stream.batch(0).x, stream.batch(1).x])  # 128 images
    learner.temp.add(x)
    errors = x.mean(1)  # stand-in errors the learner would compute: brightness
    learner.model.recon_error = lambda data, generator=None: data.mean(1)
    learner.make_cluster()
    chosen = torch.argsort(errors, stable=True)[: cfg.memory.cluster_size]
    assert torch.equal(learner.clusters.images[0], x[chosen])
    mu, sigma = learner.model.latent_stats(x[chosen], batch_statistics=True)  # released default: the batch's BN
    assert torch.allclose(learner.clusters.means[0], mu.mean(0)) and torch.allclose(learner.clusters.stds[0],
                                                                                    sigma.mean(0))
    assert len(learner.temp) == 0  # emptied when a cluster is created


def test_observe_makes_the_first_cluster_at_overflow_and_skips_training_then(data_root):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False", "memory.novelty_threshold=1e9"])
    stream, learner = build(cfg, data_root)
    logs = learner.arrive(stream.batch(0).x)
    assert learner.steps == 2 and logs["temp"] == 64 and logs["clusters"] == 0
    logs = learner.arrive(stream.batch(1).x)  # 128 > 100: first cluster, M^t emptied, no training
    assert learner.steps == 2 and logs == {"temp": 0, "clusters": 1}
    assert learner.log == [{"arrival": 2, "novelty": None, "novelty_min": None, "novelty_max": None, "z": None,
                            "expanded": True, "clusters": 1}]
    for t in (2, 3):
        logs = learner.arrive(stream.batch(t).x)
    assert learner.clusters.num_clusters == 1 and learner.log[-1]["expanded"] is False  # lambda too high
    assert logs["temp"] == 100 and np.isfinite(logs["loss_d"]) and learner.steps > 2


def test_a_demc_config_needs_the_vaegan_model():
    with pytest.raises(ConfigError, match="needs model.name=vaegan"):
        load_config(DEMC, ["model.name=mlp-vae"])
    with pytest.raises(ConfigError, match="needs model.name=mlp-vae"):
        load_config(REPO / "configs/split_fashion/reservoir.yaml", ["model.name=vaegan"])


def test_memories_and_optimisers_survive_a_checkpoint_round_trip(data_root):
    cfg = load_config(DEMC, ["budget=smoke", "progress=False", "memory.novelty_threshold=0.0"])
    stream, learner = build(cfg, data_root)
    for t in range(5):
        learner.arrive(stream.batch(t).x)
    assert learner.clusters.num_clusters >= 2
    state = learner.state_dict()
    _, fresh = build(cfg, data_root)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.temp.data, learner.temp.data) and fresh.temp.n_kept == learner.temp.n_kept
    for name in ("images", "means", "stds"):
        assert torch.equal(getattr(fresh.clusters, name), getattr(learner.clusters, name))
    assert fresh.log == learner.log and fresh.steps == learner.steps
    # the next arrival is identical: RNG, three optimisers, BN statistics and memories all restored
    x = stream.batch(5).x
    assert learner.arrive(x) == fresh.arrive(x)
    for (k, a), b in zip(learner.model.state_dict().items(), fresh.model.state_dict().values()):
        assert torch.equal(a, b), k


def crash_at(monkeypatch, t_crash):
    from streamvae.data.streams import Stream

    real = Stream.batch

    def batch(self, t):
        if t == t_crash:
            raise RuntimeError("simulated crash")
        return real(self, t)

    monkeypatch.setattr(Stream, "batch", batch)
    return lambda: monkeypatch.setattr(Stream, "batch", real)


def test_a_resumed_demc_run_equals_an_uninterrupted_one(tmp_path, data_root, monkeypatch):
    args = [DEMC, "--set", "budget=smoke", "--set", "memory.novelty_threshold=0.0", "--set", "eval.every=2",
            "--no-progress", "--data-root", data_root]
    assert main(["run", *args, "--out", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full/results.json").read_text())
    assert full["clusters"] >= 2 and full["fid_classifier_gen"] > 0 and "ll_iw1000" not in full
    restore = crash_at(monkeypatch, 4)
    with pytest.raises(RuntimeError):
        main(["run", *args, "--out", str(tmp_path / "part")])
    restore()
    assert main(["run", "--resume", str(tmp_path / "part"), "--data-root", data_root]) == 0
    part = json.loads((tmp_path / "part/results.json").read_text())
    strip = lambda r: {k: v for k, v in r.items() if "wall" not in k}  # noqa: E731
    assert strip(full) == strip(part)
    assert (tmp_path / "part/events.jsonl").read_text() == (tmp_path / "full/events.jsonl").read_text()
    rows = lambda p: [strip(json.loads(x)) for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert rows(tmp_path / "full") == rows(tmp_path / "part")


@pytest.mark.parametrize("learner", ["reservoir-vaegan", "finetune-vaegan"])
def test_vaegan_baselines_run(tmp_path, data_root, learner):
    cfg = str(REPO / "configs/split_fashion" / f"{learner}.yaml")
    assert main(["run", cfg, "--set", "budget=smoke", "--set", "eval.fid=false", "--no-progress",
                 "--data-root", data_root, "--out", str(tmp_path / learner)]) == 0
    r = json.loads((tmp_path / learner / "results.json").read_text())
    assert r["learner"] == learner and r["recon_sse"] > 0 and r["steps"] > 0
    assert "fid_classifier_gen" not in r


def write_cifar_root(root: Path, per_class_train: int = 8, per_class_test: int = 4) -> Path:
    """Synthetic CIFAR-10 python pickles: class c brightens colour channel c % 3 in a band of rows."""
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def images(labels):
        x = rng.integers(0, 60, size=(len(labels), 3, 32, 32))
        for i, c in enumerate(labels):
            x[i, c % 3, 3 * c: 3 * c + 4] = 220
        return x.reshape(len(labels), 3072).astype(np.uint8)

    def write(name, labels):
        obj = {b"batch_label": b"synthetic", b"data": images(labels), b"labels": list(labels),
               b"filenames": [b"x.png"] * len(labels)}
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))

    for i in range(1, 6):  # 5 batches, classes interleaved as in the real files
        write(f"data_batch_{i}", [c for _ in range(per_class_train) for c in range(10)])
    write("test_batch", [c for _ in range(per_class_test) for c in range(10)])
    return root


def test_split_cifar10_smoke_run_end_to_end(tmp_path, monkeypatch):
    root = write_cifar_root(tmp_path / "data")
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path / "cache"))
    datasets.clear_cache()
    cfg = str(REPO / "configs/split_cifar10/demc.yaml")
    assert main(["run", cfg, "--set", "budget=smoke", "--set", "memory.novelty_threshold=0.0", "--no-progress",
                 "--data-root", str(root), "--out", str(tmp_path / "run")]) == 0
    r = json.loads((tmp_path / "run/results.json").read_text())
    assert r["arrivals"] == 6 and r["order"] == "pairs" and r["clusters"] >= 2
    assert r["recon_sse"] > 0 and r["fid_classifier_gen"] > 0 and r["is_classifier_gen"] >= 1
    assert r["fid_classifier_name"].startswith("convnet8-cifar10")
    assert (tmp_path / "run/samples.png").exists() and (tmp_path / "run/memory.png").exists()
    saved = torch.load(tmp_path / "run/checkpoint.pt", weights_only=False)
    assert saved["learner"]["extra"]["cluster_images"]["images"].shape[-1] == 3 * 32 * 32
