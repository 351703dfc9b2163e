"""Untrusted files never run code: checkpoints (and cached classifiers) load with weights_only=True."""
from __future__ import annotations

import os

import pytest
import torch

from streamvae.cli import main
from streamvae.errors import CheckpointError
from streamvae.utils import load_checkpoint, save_checkpoint

from .test_cli import run_cli


class _WritesAMarker:
    """Unpickling this object calls ``open(marker, "w")``: what a crafted checkpoint would do, harmlessly."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _craft(path, marker, base: dict) -> None:
    torch.save({**base, "learner": _WritesAMarker(str(marker))}, path)  # a real checkpoint's keys, one evil value


@pytest.fixture()
def crafted_run(tmp_path, data_root):
    code, out = run_cli(tmp_path, data_root, "victim", "--set", "kernels=torch")
    assert code == 0
    base = load_checkpoint(out / "checkpoint.pt")
    marker = tmp_path / "marker"
    _craft(out / "checkpoint.pt", marker, base)
    return out, marker


def test_eval_refuses_a_crafted_checkpoint_with_one_line(crafted_run, data_root, capsys):
    out, marker = crafted_run
    capsys.readouterr()
    assert main(["eval", str(out), "--data-root", data_root]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint.pt" in err[0] and "refused" in err[0]
    assert not marker.exists()


def test_resume_refuses_a_crafted_checkpoint_with_one_line(crafted_run, data_root, capsys):
    out, marker = crafted_run
    (out / "results.json").unlink()  # an unfinished run, as far as resume can tell
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--data-root", data_root]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint.pt" in err[0] and "refused" in err[0]
    assert not marker.exists()


def test_every_real_checkpoint_field_survives_weights_only(tmp_path):
    """Generators, optimiser states, nested logs with None/bool/float: all load with weights_only=True."""
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"config": {"seed": 0, "stream": {"datasets": ["fashion"]}}, "arrival": 3, "wall_s": 1.5,
             "learner": {"model": model.state_dict(), "generator": torch.Generator().get_state(),
                         "optimizers": {"adam": opt.state_dict()},
                         "extra": {"log": [{"R": None, "expanded": False, "x": 1.0}], "order": torch.arange(4)}},
             "kernel_paths": [[0, "torch"]], "torch_rng": torch.get_rng_state(), "version": "0.1.0"}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["learner"]["extra"]["log"] == state["learner"]["extra"]["log"]
    assert torch.equal(back["learner"]["generator"], state["learner"]["generator"])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not-a-dict", "missing"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"arrival": 1, "x": torch.zeros(100)})
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(os.urandom(500))
    elif damage == "not-a-dict":
        save_checkpoint(path, [1, 2, 3])
    else:
        path.unlink()
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_crafted_cached_feature_classifier_is_not_loaded(tmp_path, monkeypatch):
    from streamvae.evaluation import fid

    marker = tmp_path / "marker"
    path = tmp_path / "clf.pt"
    torch.save({"model": {}, "info": _WritesAMarker(str(marker))}, path)
    with pytest.warns(RuntimeWarning, match="training it again"):
        assert fid._cached_classifier(path) is None
    assert not marker.exists()


def test_a_truncated_cached_library_is_rebuilt_not_loaded(tmp_path):
    """Before: ctypes mapped the truncated .so and the process died with a bus error (status 135)."""
    import subprocess
    import sys

    from streamvae.native import clib

    if clib._compiler() is None:
        pytest.skip("no C compiler")
    env = {**os.environ, "STREAMVAE_CACHE": str(tmp_path)}
    probe = "from streamvae.native import clib; print(clib.library() is not None, clib._build(clib._compiler()))"
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and first.stdout.startswith("True"), first.stderr
    lib = tmp_path / "native" / first.stdout.split()[1].rsplit("/", 1)[1]
    whole = lib.read_bytes()
    lib.write_bytes(whole[: len(whole) // 3])  # what a kill during an old-style copy or a full disk leaves
    again = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.startswith("True"), (again.returncode, again.stderr[-500:])
    assert len(lib.read_bytes()) == len(whole)  # rebuilt in place


# -- a run directory's config.yaml and checkpoint are data: plugins run only when the user names them ----------

def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_the_issue_repro_a_plugins_entry_in_config_yaml_runs_no_code(tmp_path, data_root, capsys, monkeypatch):
    """Was: eval printed the Zen of Python (config.yaml's ``plugins: [this]`` imported) before refusing."""
    import sys

    code, out = run_cli(tmp_path, data_root, "r1", "--set", "kernels=torch", "--set", "eval.probe=false")
    assert code == 0
    (out / "results.json").unlink()
    (out / "evil.py").write_text(f"open({str(tmp_path / 'marker')!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "evil_module.py").write_text(f"open({str(tmp_path / 'marker')!r}, 'w').write('ran')\n")
    text = (out / "config.yaml").read_text()
    assert "plugins: []" in text
    monkeypatch.chdir(out)  # cd RUN && streamvae eval .: a relative entry named a file shipped in the run
    for entry in ("this", "evil.py", "evil_module", str(out / "evil.py")):
        sys.modules.pop("this", None)  # importing it again would print the Zen of Python
        (out / "config.yaml").write_text(text.replace("plugins: []", f"plugins: [{entry!r}]"))
        capsys.readouterr()
        for argv in (["eval", "."], ["run", "--resume", "."]):
            assert main([*argv, "--data-root", data_root]) == 2
            printed = capsys.readouterr()
            assert "Zen of Python" not in printed.out and "Beautiful is better" not in printed.out
            err = printed.err.strip().splitlines()
            assert len(err) == 1 and "plugins" in err[0] and "cannot change" in err[0], err
            assert not (tmp_path / "marker").exists() and "evil_module" not in sys.modules


@pytest.fixture()
def plugin_run(tmp_path, data_root, monkeypatch):
    """A finished run made with the README's plugin from a file that writes a marker when imported; the
    registry is then emptied, as in a fresh process."""
    from streamvae import registry

    from .test_registry import FINETUNE, readme_plugin

    monkeypatch.setattr(registry, "_PLUGINS", {})
    monkeypatch.setattr(registry, "_LOADED", {})
    marker = tmp_path / "imported"
    plugin = tmp_path / "alice" / "window.py"
    plugin.parent.mkdir()
    plugin.write_text(f"open({str(marker)!r}, 'a').write('x')\n" + readme_plugin())
    out = tmp_path / "run"
    assert main(["run", FINETUNE, "--plugin", str(plugin), "--set", "learner.name=window", "--set", "budget=smoke",
                 "--set", "kernels=torch", "--set", "eval.probe=false", "--set", "memory.window=100",
                 "--no-progress", "--data-root", data_root, "--out", str(out)]) == 0
    registry._PLUGINS.clear()
    registry._LOADED.clear()
    marker.unlink()
    return out, plugin, marker


def test_eval_and_resume_of_a_plugin_run_need_the_same_plugin_named(plugin_run, data_root, tmp_path, capsys):
    from streamvae import registry

    out, plugin, marker = plugin_run
    (out / "results.json").unlink()  # so that --resume has work to do (the final evaluation)
    capsys.readouterr()
    for argv in (["eval", str(out)], ["run", "--resume", str(out)]):
        assert main([*argv, "--data-root", data_root]) == 2  # no --plugin: refused, nothing imported
        line = _one_line(capsys)
        assert str(plugin) in line and "--plugin" in line and "sha256" in line
        assert not marker.exists()
    other = tmp_path / "other.py"
    other.write_text("x = 1\n")
    assert main(["eval", str(out), "--plugin", str(other), "--data-root", data_root]) == 2  # another plugin
    assert str(plugin) in _one_line(capsys) and not marker.exists()
    # a copied run: the same file at another path (the sha256 matches) is the same plugin
    copy = tmp_path / "bob" / "window.py"
    copy.parent.mkdir()
    copy.write_bytes(plugin.read_bytes())
    assert main(["eval", str(out), "--plugin", str(copy), "--data-root", data_root]) == 0
    assert marker.exists()  # imported because the user named it
    registry._PLUGINS.clear()
    registry._LOADED.clear()
    assert main(["run", "--resume", str(out), "--plugin", str(plugin), "--data-root", data_root]) == 0
    assert (out / "results.json").exists()


def test_a_plugin_whose_file_changed_is_refused_before_it_is_imported(plugin_run, data_root, capsys):
    out, plugin, marker = plugin_run
    plugin.write_text(plugin.read_text() + "\n# edited after the run\n")
    (out / "results.json").unlink()
    capsys.readouterr()
    for argv in (["eval", str(out)], ["run", "--resume", str(out)]):
        assert main([*argv, "--plugin", str(plugin), "--data-root", data_root]) == 2
        line = _one_line(capsys)
        assert "changed" in line and str(plugin) in line
        assert not marker.exists()
