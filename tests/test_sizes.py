"""Sizes are checked before anything is built: a config asking for more memory than the machine has, or
for an evaluation of days, is one line naming the fields (``--force`` for those who mean it)."""
from __future__ import annotations

import pytest

from streamvae import registry, sizes
from streamvae.cli import main
from streamvae.data.streams import Stream
from streamvae.errors import ConfigError

from .test_cli import CFG, run_cli

FAST = ["--set", "kernels=torch", "--set", "eval.probe=false"]


@pytest.mark.parametrize("override, named", [
    ("model.latent=1e8", "model.latent=100000000"),  # was: an allocator traceback
    ("memory.capacity=1e9", "memory.capacity=1000000000"),  # was: an allocator traceback
    ("learner.elbo_samples=100000", "learner.elbo_samples=100000"),  # was: 9.3 GB of training, then a traceback
    ("eval.iw_samples=1e9", "eval.iw_samples=1000000000"),  # was: hours of evaluation without a word
])
def test_a_run_too_big_for_the_machine_is_refused_before_anything_is_built(tmp_path, data_root, monkeypatch,
                                                                         capsys, override, named):
    def no_data(*args, **kwargs):
        raise AssertionError("the stream was built: the check came too late")

    monkeypatch.setattr(Stream, "__init__", no_data)
    code, out = run_cli(tmp_path, data_root, "big", "--set", override)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and named in err[0] and "--force" in err[0], err
    assert not out.exists()


def test_force_runs_what_the_check_would_refuse(tmp_path, data_root, monkeypatch, capsys):
    monkeypatch.setattr(sizes, "MAX_EVAL_FLOP", 1e3)  # a limit every smoke run is above
    code, out = run_cli(tmp_path, data_root, "refused", *FAST)
    assert code == 2 and "evaluation would take" in capsys.readouterr().err and not out.exists()
    code, out = run_cli(tmp_path, data_root, "forced", *FAST, "--force")
    assert code == 0 and (out / "results.json").exists()
    capsys.readouterr()
    assert main(["eval", str(out), "--data-root", data_root]) == 2  # eval checks too
    assert "evaluation would take" in capsys.readouterr().err
    assert main(["eval", str(out), "--force", "--data-root", data_root]) == 0


def test_eval_with_a_huge_k_is_refused_in_one_line(tmp_path, data_root, capsys):
    code, out = run_cli(tmp_path, data_root, "done", *FAST)
    assert code == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--set", "eval.iw_samples=1000000000", "--data-root", data_root]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eval.iw_samples=1000000000" in err[0] and not (out / "eval.json").exists()


def test_the_estimate_grows_with_each_field_and_the_shipped_configs_fit():
    base = registry.load_config(CFG, ["budget=paper"])
    est = sizes.estimate(base)
    for override, part in (("model.latent=5000", "model"), ("memory.capacity=300000", "memories"),
                           ("learner.elbo_samples=500", "training step"), ("eval.chunk_rows=1000000", "evaluation chunk")):
        bigger = sizes.estimate(registry.load_config(CFG, ["budget=paper", override]))
        assert bigger["parts"][part] > 5 * est["parts"][part], override
    assert est["memory_bytes"] < 2 << 30 and est["eval_flop"] < sizes.MAX_EVAL_FLOP  # the paper budget passes
    with pytest.raises(ConfigError, match="more than the 100 MiB here"):
        sizes.check(base, limit_bytes=100 << 20)
    assert sizes.check(base, force=True, limit_bytes=100 << 20)["memory_bytes"] == est["memory_bytes"]
