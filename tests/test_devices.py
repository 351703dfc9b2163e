"""``device: auto | cpu | cuda``: refusal without CUDA, auto on the CPU, draws and memories on the run's device,
resuming on another device type; on a machine with CUDA, CPU and CUDA smoke runs agree (``gpu`` mark)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from streamvae import loop, registry
from streamvae.cli import main
from streamvae.devices import resolve_device
from streamvae.errors import ConfigError

from .conftest import REPO, stream_crashing_at

CFG = str(REPO / "configs/split_fashion/reservoir.yaml")
SMOKE = ["--set", "budget=smoke", "--set", "stream.samples_per_class=40", "--set", "eval.every=2", "--set",
         "eval.probe=false", "--set", "kernels=torch", "--no-progress"]
CUDA = torch.cuda.is_available()


def run_cli(tmp_path, data_root, name, *extra, cfg=CFG):
    out = tmp_path / name
    return main(["run", cfg, *SMOKE, *extra, "--data-root", data_root, "--out", str(out)]), out


@pytest.mark.skipif(CUDA, reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_before_anything_is_written(tmp_path, data_root, capsys):
    code, out = run_cli(tmp_path, data_root, "cuda", "--set", "device=cuda")
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "device=cuda" in err[0] and "CUDA is not available" in err[0]


def test_auto_runs_where_cuda_is_and_records_the_device(tmp_path, data_root):
    code, out = run_cli(tmp_path, data_root, "auto", "--set", "device=auto")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["device"].startswith("cuda" if CUDA else "cpu")


def test_device_values_are_checked():
    with pytest.raises(ConfigError, match="device="):
        registry.load_config(CFG, ["device=tpu"])
    assert resolve_device("cpu") == torch.device("cpu")


def test_native_kernels_are_the_cpu_path(tmp_path, data_root, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine: refused before any CUDA call
    code, out = run_cli(tmp_path, data_root, "native", "--set", "device=cuda", "--set", "kernels=native")  # last wins
    assert code == 2 and not out.exists()
    assert "kernels=native is the CPU path" in capsys.readouterr().err
    assert loop.use_kernels(registry.load_config(CFG, ["device=cuda"])) is False  # auto: the torch path on CUDA


@pytest.mark.parametrize("name", ["ocm", "demc"])
def test_no_tensor_is_made_off_the_run_device(name, data_root):
    """With the default device set to ``meta``, a tensor made without ``device=`` inside observe or the
    evaluation cannot meet the run's (CPU) tensors: every draw and buffer must name its device."""
    small = ["model.width=0.25", "eval.probe=false", "stream.max_batches=2"] if name == "demc" else []
    cfg = registry.load_config(str(REPO / f"configs/split_fashion/{name}.yaml"),
                               ["budget=smoke", "stream.samples_per_class=40", "stream.max_batches=3",
                                "kernels=torch", "eval.fid=false", "eval.probe_train_size=60", *small])
    stream, learner = loop.build(cfg, data_root)
    test = stream.test_set(cfg.eval, cfg.eval.test_size)
    batches = [stream.batch(t).x for t in range(len(stream))]
    torch.set_default_device("meta")
    try:
        for x in batches:
            learner.arrive(x)
        row = loop.evaluate_point(cfg, learner, stream, test, len(stream), final=True)
    finally:
        torch.set_default_device(None)
    assert row["recon_sse"] > 0


def test_a_run_resumed_on_another_device_reseeds_and_says_so(tmp_path, data_root, monkeypatch):
    """A checkpoint written on CUDA (a CUDA generator state) continues on the CPU."""
    with stream_crashing_at(4), pytest.raises(RuntimeError):
        run_cli(tmp_path, data_root, "moved")
    path = tmp_path / "moved" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["learner"]["device"] == "cpu" and ckpt["learner"]["devices"] == [[0, "cpu"]]
    ckpt["learner"].update({"device": "cuda", "devices": [[0, "cuda"]],
                            "generator": torch.zeros(16, dtype=torch.uint8)})  # a CUDA (Philox) state
    torch.save(ckpt, path)
    assert main(["run", "--resume", str(path.parent), "--data-root", data_root]) == 0
    results = json.loads((path.parent / "results.json").read_text())
    assert results["device"] == "cpu; cuda from arrival 0, cpu from arrival 4"
    assert torch.load(path, weights_only=False)["learner"]["devices"] == [[0, "cuda"], [4, "cpu"]]


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("name", ["reservoir", "dynamic-ocm", "demc"])
def test_cpu_and_cuda_smoke_runs_agree(tmp_path, data_root, name):
    cfg = str(REPO / f"configs/split_fashion/{name}.yaml")
    results = {}
    for device in ("cpu", "cuda"):
        code, out = run_cli(tmp_path, data_root, device, "--set", f"device={device}", cfg=cfg)
        assert code == 0
        results[device] = json.loads(Path(out / "results.json").read_text())
    assert results["cuda"]["device"].startswith("cuda") and results["cuda"]["kernels"].startswith("torch")
    for key in [k for k in results["cpu"] if k.startswith("ll_iw") or k == "recon_sse"]:
        a, b = results["cpu"][key], results["cuda"][key]  # other draws, the same distributions
        assert abs(a - b) <= max(2.0, 0.005 * abs(a)), (key, a, b)  # as scripts/gpu_check.sh
