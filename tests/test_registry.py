"""Learner plugins: the README's example learner runs end to end from a file outside the package."""
from __future__ import annotations

import hashlib
import json
import re
import sys

import pytest
import yaml

from streamvae import registry
from streamvae.cli import main
from streamvae.config import LearnerConfig
from streamvae.errors import ConfigError
from streamvae.learners import LEARNERS, Learner

from .conftest import REPO

FINETUNE = str(REPO / "configs/split_fashion/finetune.yaml")


def readme_plugin() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- plugin-example -->\s*```python\n(.*?)```\s*<!-- /plugin-example -->", text, re.S)
    assert block, "README.md must hold the plugin example between its markers"
    return block.group(1)


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_PLUGINS", {})
    monkeypatch.setattr(registry, "_LOADED", {})


def test_the_readme_learner_runs_from_a_file_resumes_and_records_its_plugin(tmp_path, data_root, clean_registry):
    plugin = tmp_path / "elsewhere" / "window.py"
    plugin.parent.mkdir()
    plugin.write_text(readme_plugin())
    out = tmp_path / "run"
    code = main(["run", FINETUNE, "--plugin", str(plugin), "--set", "learner.name=window", "--set", "budget=smoke",
                 "--set", "memory.window=100", "--no-progress", "--data-root", data_root, "--out", str(out)])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["learner"] == "window" and results["steps"] > 0 and results["memory"] == 100
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["plugins"] == [str(plugin.resolve())] and cfg["memory"] == {"window": 100}
    assert cfg["plugin_sha256"] == [hashlib.sha256(plugin.read_bytes()).hexdigest()]  # what eval/--resume compare
    assert "capacity" not in (out / "config.yaml").read_text()  # only the fields this learner uses
    # what --resume or eval in a fresh process does: the registry is empty; config.yaml is data, imports nothing
    registry._PLUGINS.clear()
    registry._LOADED.clear()
    with pytest.raises(ConfigError, match="unknown"):
        registry.load_resolved(out / "config.yaml")
    registry.check_plugins(cfg["plugins"], cfg["plugin_sha256"], [str(plugin)], str(out))  # the user names it
    again = registry.load_resolved(out / "config.yaml")
    assert again.learner.name == "window" and again.memory.window == 100


def test_plugin_config_errors_name_the_learner_and_its_keys(tmp_path, clean_registry):
    plugin = tmp_path / "window.py"
    plugin.write_text(readme_plugin())
    with pytest.raises(ConfigError, match=r"memory.windw' for learner window. Valid keys: memory.window"):
        registry.load_config(FINETUNE, ["learner.name=window", "memory.windw=3"], plugins=[str(plugin)])
    with pytest.raises(ConfigError, match="memory.window must be positive"):
        registry.load_config(FINETUNE, ["learner.name=window", "memory.window=0"], plugins=[str(plugin)])


def test_an_unregistered_learner_points_at_plugin(clean_registry):
    with pytest.raises(ConfigError, match="unknown; choose one of: finetune, .*needs --plugin"):
        registry.load_config(FINETUNE, ["learner.name=window"])


def test_plugins_from_a_module_and_from_the_yaml(tmp_path, monkeypatch, clean_registry):
    pkg = tmp_path / "mylearners.py"
    pkg.write_text(readme_plugin().replace('"window"', '"window2"'))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = registry.load_config(FINETUNE, ["learner.name=window2"], plugins=["mylearners"])
    assert cfg.plugins == ("mylearners",) and cfg.learner.name == "window2"
    sys.modules.pop("mylearners", None)
    (tmp_path / "window.py").write_text(readme_plugin())
    conf = tmp_path / "mine.yaml"
    conf.write_text(f"include: {FINETUNE}\nplugins: [window.py]\nlearner: {{name: window}}\n")
    # a YAML may come from someone else: its plugins: list says what it needs, it imports nothing by itself
    with pytest.raises(ConfigError, match=r"lists plugin .*window.py.*add --plugin"):
        registry.load_config(conf, ["budget=smoke"])
    assert "window" not in registry.learner_names()
    cfg = registry.load_config(conf, ["budget=smoke"], plugins=[str(tmp_path / "window.py")])
    assert cfg.plugins == (str((tmp_path / "window.py").resolve()),) and cfg.budget == "smoke"


def test_register_refuses_builtin_names_and_non_learners(clean_registry):
    with pytest.raises(ConfigError, match="built-in"):
        registry.register_learner("reservoir")(LEARNERS["finetune"])
    with pytest.raises(ConfigError, match="not a subclass"):
        registry.register_learner("x")(dict)

    class Bad(Learner):
        config_class = dict

        def observe(self, x):
            return {}

    with pytest.raises(ConfigError, match="config_class"):
        registry.register_learner("bad")(Bad)
    assert issubclass(LEARNERS["ocm"].config_class, LearnerConfig)


def test_broken_or_missing_plugins_are_one_line_errors(tmp_path, clean_registry):
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('boom')\n")
    with pytest.raises(ConfigError, match="broken.py failed to import: ValueError: boom"):
        registry.load_plugin(str(broken))
    with pytest.raises(ConfigError, match="not found"):
        registry.load_plugin(str(tmp_path / "none.py"))
    with pytest.raises(ConfigError, match="neither a .py file nor an importable module"):
        registry.load_plugin("no_such_module_here")
