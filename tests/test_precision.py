"""precision=bf16: bf16 products with fp32 master weights, fp32 sums, fp32 evaluation; a CPU without
native bf16 falls back to fp32 with one warning; runs record the precision they used."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn.functional as F

from streamvae import native, precision
from streamvae.cli import main
from streamvae.config import ModelConfig, RunConfig
from streamvae.errors import ConfigError
from streamvae.learners.vae_training import VAELearner, VAETrainingConfig
from streamvae.models import VAE
from streamvae.native import clib
from streamvae.registry import load_config
from .conftest import needs_native, stream_crashing_at

REPO_CONFIG = "configs/split_fashion/ocm.yaml"


class _Learner(VAELearner):
    def observe(self, x):
        return {"loss": self.train_pass(x)}


def _grads(model, x, bf16: bool, samples: int = 20):
    model.zero_grad(set_to_none=True)
    ctx = precision.autocast("bf16" if bf16 else "fp32", torch.device("cpu"))
    with ctx:
        loss = -model.elbo(x, samples, torch.Generator().manual_seed(1)).mean()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("path", ["native", "torch"])
def test_bf16_step_is_close_to_fp32_and_keeps_fp32_master_weights(path):
    if path == "native" and native.library() is None:
        pytest.skip("no C compiler")
    torch.manual_seed(0)
    model = VAE(ModelConfig(), native=path == "native")
    x = torch.bernoulli(torch.full((32, 784), 0.3), generator=torch.Generator().manual_seed(2))
    l32, g32 = _grads(model, x, bf16=False)
    l16, g16 = _grads(model, x, bf16=True)
    assert abs(float(l16 - l32)) < 0.5  # about 550 nats per image: bf16 products move it by a few 0.01
    for a, b in zip(g32, g16):
        assert b.dtype == torch.float32  # gradients arrive in fp32 for the fp32 parameters
        assert float((a - b).norm() / a.norm()) < 0.05  # bf16 rounding (measured 0.2-1.2%)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_the_bf16_step_really_runs_its_products_in_bf16():
    model = VAE(ModelConfig(), native=False)
    seen = []
    model.to_x.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.rand(4, 784)
    _grads(model, x, bf16=True, samples=2)
    _grads(model, x, bf16=False, samples=2)
    assert seen == [torch.bfloat16, torch.float32]
    with precision.autocast("bf16", torch.device("cpu")):
        q = model.encode(x)
    assert q.loc.dtype == q.scale.dtype == torch.float32  # draws and sums in fp32 whatever the products


@needs_native
def test_bf16_kernels_compute_the_fp32_formulas_on_bf16_inputs():
    lib = native.library()
    g = torch.Generator().manual_seed(3)
    logits = (8 * torch.randn(300, 784, generator=g)).bfloat16()
    bias = torch.randn(784, generator=g)
    x = torch.bernoulli(torch.full((30, 784), 0.4), generator=g)
    grad = logits.clone()
    out = clib.bernoulli_loglik(lib, grad, x, bias=bias, grad=grad)
    l64 = logits.double() + bias.double()
    want = -F.binary_cross_entropy_with_logits(l64, x.double().repeat(10, 1), reduction="none").sum(-1)
    assert out.dtype == torch.float32 and torch.allclose(out.double(), want, rtol=1e-5, atol=1e-2)
    assert grad.dtype == torch.bfloat16
    assert torch.allclose(grad.double(), x.double().repeat(10, 1) - torch.sigmoid(l64), atol=4e-3)  # bf16 store
    a = torch.randn(100, 37, generator=g).bfloat16()
    b = torch.randn(37, generator=g)
    for kind, f in (("tanh", torch.tanh), ("relu", torch.relu)):
        h = clib.act_forward(lib, a, b, kind)
        assert h.dtype == torch.bfloat16 and torch.all(h[:, -1] == 1)
        assert torch.allclose(h[:, :-1].float(), f(a.float() + b), atol=1e-2, rtol=1e-2)
        gr = torch.randn(100, 37, generator=g).bfloat16()
        y = h[:, :-1].contiguous()
        want_g = gr.float() * (1 - y.float() ** 2 if kind == "tanh" else (y.float() > 0).float())
        clib.act_backward(lib, gr, y, kind)
        assert torch.allclose(gr.float(), want_g, atol=1e-2, rtol=1e-2)


def test_small_steps_stay_fp32_under_bf16():
    cfg = RunConfig(learner=VAETrainingConfig(elbo_samples=1, minibatch=64), precision="bf16")
    learner = _Learner(cfg, VAE(ModelConfig()), torch.Generator().manual_seed(0))
    learner.precision = "bf16"
    with learner.autocast():
        assert not torch.is_autocast_enabled("cpu")  # 64 decoder rows < bf16_min_rows (256)
    cfg = RunConfig(learner=VAETrainingConfig(elbo_samples=10, minibatch=64), precision="bf16")
    learner = _Learner(cfg, VAE(ModelConfig()), torch.Generator().manual_seed(0))
    learner.precision = "bf16"
    with learner.autocast():
        assert precision.active("cpu")


def test_without_native_bf16_the_run_falls_back_to_fp32_with_one_warning(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr(precision, "_warned", set())
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        assert precision.resolve("bf16", torch.device("cpu")) == "fp32"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve("bf16", torch.device("cpu")) == "fp32"  # once only
        assert precision.resolve("fp32", torch.device("cpu")) == "fp32"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(precision, "cpu_bf16_speed_ratio", lambda: 2.1)
    assert precision.resolve("bf16", torch.device("cpu")) == "bf16"
    assert precision.matrix_isa() == "AVX512-BF16"


def test_bf16_that_multiplies_slower_than_fp32_keeps_bf16_with_one_warning_giving_the_ratio(monkeypatch):
    # Intel's AVX512-BF16 without AMX: the flag is there, the products run at about 0.6x fp32
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(precision, "cpu_bf16_speed_ratio", lambda: 0.59)
    monkeypatch.setattr(precision, "_warned", set())
    with pytest.warns(RuntimeWarning, match=r"measured 0\.59x the speed of fp32"):
        assert precision.resolve("bf16", torch.device("cpu")) == "bf16"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.resolve("bf16", torch.device("cpu")) == "bf16"  # once only
        assert precision.resolve("fp32", torch.device("cpu")) == "fp32"  # fp32 never measures


def test_the_bf16_speed_ratio_is_a_positive_measurement_that_leaves_the_threads_alone():
    precision.cpu_bf16_speed_ratio.cache_clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ratio = precision.cpu_bf16_speed_ratio(rows=64, inner=64, cols=64, repeats=2)
        assert 0.0 < ratio < 1e6
        assert torch.get_num_threads() == 2  # measured on one thread, the run's threads restored
    finally:
        torch.set_num_threads(threads)


def test_auto_trains_in_bf16_only_where_bf16_measures_faster(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "_warned", set())
    for flags, ratio, expected in [({"avx512_bf16"}, 2.1, "bf16"),   # AMD EPYC
                                   ({"amx_bf16"}, 4.0, "bf16"),      # AMX
                                   ({"avx512_bf16"}, 0.59, "fp32"),  # Intel without AMX
                                   ({"avx2"}, 9.9, "fp32")]:         # no native bf16: never measured
        monkeypatch.setattr(precision, "cpu_flags", lambda f=flags: frozenset(f))
        monkeypatch.setattr(precision, "cpu_bf16_speed_ratio", lambda r=ratio: r)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # auto decides silently
            assert precision.resolve("auto", cpu) == expected
    assert precision.resolve("auto", torch.device("meta")) == "fp32"  # other devices: fp32


def test_a_resumed_auto_run_keeps_the_precision_it_started_with(tmp_path, monkeypatch):
    from streamvae import rundir
    from streamvae.loop import build, restore_checkpoint
    from streamvae.utils import load_checkpoint

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(precision, "cpu_bf16_speed_ratio", lambda: 2.1)
    run = tmp_path / "run"
    assert main(["run", REPO_CONFIG, "--set", "budget=smoke", "--set", "precision=auto", "--no-progress",
                 "--out", str(run)]) == 0
    assert json.loads((run / "results.json").read_text())["precision"] == "bf16"
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["precision"] == "bf16"
    monkeypatch.setattr(precision, "cpu_bf16_speed_ratio", lambda: 0.5)  # another machine: auto says fp32 there
    _, learner = build(rundir.resume_config(run, ckpt), None)
    assert learner.precision == "fp32"
    restore_checkpoint(learner, ckpt, run / "checkpoint.pt")
    assert learner.precision == "bf16"  # the run goes on as it started


def test_a_bf16_run_resumed_without_bf16_goes_on_in_fp32_and_records_both(tmp_path, monkeypatch):
    """A bf16 run carried to a CPU without bf16 instructions trains on in fp32, and in bf16 again once
    it is back on one with them (``auto`` keeps the precision the run started with where it is
    native); results.json says ``bf16/fp32`` and from which arrival each ran, the checkpoint keeps
    that history."""
    from streamvae.utils import load_checkpoint

    def history():
        ckpt = load_checkpoint(run / "checkpoint.pt")
        return ckpt["arrival"], ckpt["learner"]["precisions"]

    bf16_machine = lambda: frozenset({"avx512_bf16"})  # noqa: E731
    monkeypatch.setattr(precision, "cpu_flags", bf16_machine)
    monkeypatch.setattr(precision, "cpu_bf16_speed_ratio", lambda: 2.1)
    run = tmp_path / "run"
    with stream_crashing_at(2), pytest.raises(RuntimeError):
        main(["run", REPO_CONFIG, "--set", "budget=smoke", "--set", "precision=auto", "--set", "checkpoint_every=1",
              "--no-progress", "--out", str(run)])
    first, saved = history()
    assert saved == [[0, "bf16"]]
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset())  # the next machine: no bf16 at all
    monkeypatch.setattr(precision, "_warned", set())  # (warned once per process)
    with stream_crashing_at(4), pytest.raises(RuntimeError), pytest.warns(RuntimeWarning, match="no native bf16"):
        main(["run", "--resume", str(run), "--no-progress"])
    second, saved = history()
    assert saved == [[0, "bf16"], [first, "fp32"]] and second > first
    monkeypatch.setattr(precision, "cpu_flags", bf16_machine)  # back on a machine with bf16
    assert main(["run", "--resume", str(run), "--no-progress"]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["precision"] == "bf16/fp32"
    assert res["precisions"] == [[0, "bf16"], [first, "fp32"], [second, "bf16"]]
    assert history()[1] == res["precisions"]


def test_an_unknown_precision_is_refused_with_the_valid_ones():
    with pytest.raises(ConfigError, match="precision.*fp32.*bf16"):
        load_config(REPO_CONFIG, ["precision=fp16"])


def test_a_bf16_run_records_its_precision_and_evaluates_in_fp32(tmp_path):
    out = tmp_path / "run"
    rc = main(["run", REPO_CONFIG, "--set", "budget=smoke", "--set", "precision=bf16",
               "--set", "learner.elbo_samples=8", "--out", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    expected = "bf16" if precision.bf16_native(torch.device("cpu")) else "fp32"
    assert res["precision"] == expected
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["precision"] == expected
    assert all(t.dtype == torch.float32 for t in ckpt["learner"]["model"].values() if t.is_floating_point())


def test_measuring_the_bf16_speed_leaves_the_global_rng_alone():
    precision.cpu_bf16_speed_ratio.cache_clear()
    state = torch.get_rng_state()
    precision.cpu_bf16_speed_ratio(rows=32, inner=32, cols=32, repeats=1)
    assert torch.equal(torch.get_rng_state(), state)
