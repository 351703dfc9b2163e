"""Bad values are one-line ConfigErrors before any data is read and before the run directory exists."""
from __future__ import annotations

import pytest

from streamvae.cli import main
from streamvae.config import parse_override
from streamvae.errors import ConfigError
from streamvae.registry import load_config

from .conftest import REPO

CFG = {name: str(REPO / f"configs/split_fashion/{name}.yaml") for name in ("reservoir", "ocm", "dynamic-ocm", "demc")}

# (config, override, what the message must name): each passed validation, or crashed with a traceback, before
BAD = [
    ("reservoir", "eval.grid=0", "eval.grid"),
    ("reservoir", "eval.grid=1000000", "eval.grid"),
    ("reservoir", "eval.probe_knn=0", "eval.probe_knn"),
    ("reservoir", "eval.curve_iw_samples=0", "eval.curve_iw_samples"),
    ("dynamic-ocm", "learner.expansion_samples=0", "learner.expansion_samples"),
    ("reservoir", "learner.lr=nan", "learner.lr"),
    ("reservoir", "learner.lr=.nan", "learner.lr"),
    ("reservoir", "learner.lr=-1", "learner.lr"),
    ("reservoir", "learner.lr=1e999", "learner.lr"),
    ("reservoir", "learner.beta1=2", "learner.beta1"),
    ("reservoir", "learner.epochs_per_arrival=0", "learner.epochs_per_arrival"),
    ("reservoir", "seed=-1", "seed"),
    ("reservoir", "seed=99999999999999999999", "seed"),
    ("reservoir", "eval.binarize_seed=99999999999999999999", "eval.binarize_seed"),
    ("reservoir", "threads=100000000", "threads"),
    ("reservoir", "eval.test_size=-5", "eval.test_size"),
    ("ocm", "memory.sigma=0", "memory.sigma"),
    ("ocm", "memory.lambda1=-1e999", "memory.lambda1"),
    ("reservoir", "stream.datasets=[fashion,nope]", "stream.datasets"),
    ("reservoir", "name=../../elsewhere", "name"),
    ("demc", "learner.gan_lr=0", "learner.gan_lr"),
    ("reservoir", "learner.lr=" + "9" * 400, "400 digits"),
    ("reservoir", "seed=" + "1" * 5000, "5000 digits"),
    ("reservoir", "stream.datasets=" + "[" * 500 + "]" * 500, "nested 500 deep"),
]


@pytest.mark.parametrize("cfg, override, named", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_values_are_config_errors_naming_the_field(cfg, override, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("[", r"\[")) as e:
        load_config(CFG[cfg], ["budget=smoke", override])
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_bad_values_stop_the_cli_before_any_data_is_read_or_any_directory_is_made(tmp_path, monkeypatch, capsys):
    from streamvae.data import streams

    def no_data(*args, **kwargs):
        raise AssertionError("data was read before the config was checked")

    monkeypatch.setattr(streams, "load_dataset", no_data)
    for i, (cfg, override, named) in enumerate(BAD):
        out = tmp_path / f"r{i}"
        assert main(["run", CFG[cfg], "--set", "budget=smoke", "--set", override, "--out", str(out)]) == 2, override
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and named in err[0], (override, err)
        assert not out.exists()


def test_non_finite_numbers_in_a_config_file_are_refused(tmp_path):
    for text, named in (("learner:\n  lr: .inf\n", "learner.lr"), ("learner:\n  lr: 1e999\n", "learner.lr"),
                        ("memory:\n  capacity: 1000\nlearner:\n  beta2: .nan\n", "learner.beta2")):
        path = tmp_path / "c.yaml"
        path.write_text("include: " + str(REPO / "configs/split_fashion/reservoir.yaml") + "\n" + text)
        with pytest.raises(ConfigError, match=named):
            load_config(path)


@pytest.mark.parametrize("text", ["x=" + "[" * 5000, "x=" + "{a: " * 300 + "1" + "}" * 300, "x=" + "1" * 5000,
                                  "x=" + "-" * 5000 + "1", "x=&a [*a]", "x=\x00", "x=" + "(" * 90 + ")" * 90])
def test_the_override_parser_never_raises_anything_but_config_error(text):
    try:
        parse_override(text)
    except ConfigError as e:
        assert "\n" not in str(e)


def test_a_batch_larger_than_the_stream_names_the_sizes_before_training(tmp_path, data_root, capsys):
    out = tmp_path / "big"
    code = main(["run", CFG["reservoir"], "--set", "budget=smoke", "--set", "stream.samples_per_class=4",
                 "--set", "stream.batch_size=64", "--no-progress", "--data-root", data_root, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "stream.batch_size=64" in err[0] and "40 training images" in err[0]
