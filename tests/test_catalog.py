"""What a newcomer can ask: --version, python -m streamvae, list, config show, configs by name."""
from __future__ import annotations

import subprocess
import sys

import pytest

from streamvae import __version__
from streamvae.catalog import CONFIGS, config_path, shipped_configs
from streamvae.cli import main
from streamvae.errors import ConfigError
from streamvae.learners import LEARNERS

from .conftest import REPO


def test_version_and_python_dash_m(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"streamvae {__version__}"
    out = subprocess.run([sys.executable, "-m", "streamvae", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


def test_list_names_every_learner_config_and_budget(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in LEARNERS:
        assert f"  {name} " in out
    assert "split_fashion/" in out and "dynamic-ocm" in out and "smoke" in out and "_presets" not in out


def test_configs_ship_inside_the_package_and_resolve_by_name():
    assert (REPO / "configs").resolve() == CONFIGS.resolve()  # the repository's configs/ is the package's
    names = shipped_configs()
    assert "split_fashion/reservoir" in names and not any(n.startswith("_") for n in names)
    assert config_path("split_fashion/ocm") == CONFIGS / "split_fashion/ocm.yaml"
    assert config_path("split_fashion/ocm.yaml") == CONFIGS / "split_fashion/ocm.yaml"
    with pytest.raises(ConfigError, match="neither a file nor a shipped config; shipped configs: .*split_fashion/ocm"):
        config_path("split_fashion/nope")
    with pytest.raises(ConfigError):
        config_path("_presets/vae-budgets")


def test_config_show_prints_the_resolved_fields_with_their_comments(capsys):
    assert main(["config", "show", "split_fashion/dynamic-ocm", "--set", "budget=fast"]) == 0
    out = capsys.readouterr().out
    assert "budget: fast" in out and "epochs_per_arrival: 3" in out
    line = next(l for l in out.splitlines() if l.strip().startswith("expansion_threshold:"))
    assert "# lambda2, nats" in line
    assert "  capacity:" not in out  # the reservoir's field does not apply to dynamic-ocm
    assert main(["config", "show", "split_fashion/dynamic-ocm", "--set", "learner.nope=1"]) == 2
