"""``streamvae reproduce``: table specs, cells, skipping finished runs, reading records, the table files."""
from __future__ import annotations

import csv
import json
import re

import pytest
import yaml

from streamvae import reproduce as R
from streamvae.cli import main
from streamvae.data import datasets
from streamvae.errors import ConfigError

from .conftest import write_fashion_root

# ---------------------------------------------------------------------------------------------
# specs (no training)


def test_list_names_the_three_specs(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("ocm-table1", "dynamic-ocm-dose-response", "demc-claim"):
        assert name in out


def test_every_shipped_spec_loads_and_names_shipped_configs_or_unregistered_learners():
    from streamvae.catalog import config_path
    from streamvae.registry import learner_names

    for name in R.spec_names():
        spec = R.load_spec(name)
        assert spec.name == name
        for row in spec.rows:
            if row.learner in learner_names():
                for col in spec.columns:
                    config_path(row.config.replace("{column}", col.key))  # raises when not shipped


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(colour="red"), "unknown field 'colour'"),
    (lambda d: d.update(seeds="three"), "seeds must be a int"),
    (lambda d: d["rows"][0].update(published={"split_cifar": -1.0}), "published names column 'split_cifar'"),
    (lambda d: d["rows"][0].update(overrides=["seed=3"]), "may not set seed or budget"),
    (lambda d: d.update(environment={"paper": ["learner.lr=1"]}), "not a run-environment field"),
    (lambda d: d["rows"].append(dict(d["rows"][0])), "distinct keys"),
    (lambda d: d.pop("metric"), "missing field"),
])
def test_a_bad_spec_is_one_line_naming_what_is_wrong(tmp_path, edit, message):
    raw = yaml.safe_load((R.SPECS / "ocm-table1.yaml").read_text())
    edit(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message) as e:
        R.load_spec(str(path))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="neither a file nor a shipped spec"):
        R.load_spec("no-such-table")


def _without_peers(monkeypatch):
    """The registry as it was before CN-DPM and LIMix were learners (their rows: "not implemented")."""
    from streamvae import registry

    real = [n for n in registry.learner_names() if n not in ("limix", "cndpm")]
    monkeypatch.setattr(registry, "learner_names", lambda: list(real))


def test_unregistered_learner_is_not_implemented_and_missing_data_is_no_data(data_root, monkeypatch):
    _without_peers(monkeypatch)
    spec = R.load_spec("ocm-table1")
    cells = {c.key: c for c in R.cells(spec, "smoke", data_root)}
    assert cells["limix-split_fashion"].state == "not implemented"
    assert cells["cndpm-split_mnist"].state == "not implemented"
    assert cells["ocm-split_mnist"].state == "no data"
    assert "put MNIST under DATA_ROOT/mnist" in cells["ocm-split_mnist"].note
    assert cells["ocm-split_fashion"].state == "run"
    with pytest.raises(ConfigError, match="not a row of ocm-table1"):
        R.cells(spec, "smoke", data_root, only=("nope",))


def test_a_registered_learner_makes_its_row_real(data_root, monkeypatch):
    from streamvae import catalog

    spec = R.load_spec("ocm-table1")
    cells = R.cells(spec, "smoke", data_root, only=("limix", "cndpm", "ocm"))  # registered, configs shipped
    assert {c.key: c.state for c in cells} == {
        "limix-split_mnist": "no data", "limix-split_fashion": "run", "cndpm-split_mnist": "no data",
        "cndpm-split_fashion": "run", "ocm-split_mnist": "no data", "ocm-split_fashion": "run"}
    real_path = catalog.config_path  # a registered learner whose config is not shipped: "not implemented"

    def without_limix(name):
        if str(name).endswith("/limix"):
            raise ConfigError(f"no config {name}")
        return real_path(name)

    monkeypatch.setattr(catalog, "config_path", without_limix)
    assert [c.note for c in R.cells(spec, "smoke", data_root, only=("limix",))] == [
        "not implemented: no config 'split_mnist/limix' is shipped",
        "not implemented: no config 'split_fashion/limix' is shipped"]


def test_verdict_rule():
    spec = R.load_spec("ocm-table1")  # within max(2 sd, 1 nat), higher is better
    assert R.verdict(spec, -237.66, None, -237.69) == "within"
    assert R.verdict(spec, -240.0, 0.2, -237.69) == "worse"
    assert R.verdict(spec, -236.0, 0.2, -237.69) == "better"
    assert R.verdict(spec, -240.0, 1.5, -237.69) == "within"  # 2.31 <= 2 x 1.5
    demc = R.load_spec("demc-claim")  # lower is better
    assert R.verdict(demc, 20.0, None, 25.0) == "better"
    assert "max(2 sd, 1 nat)" in R.verdict_rule(spec)


def test_a_run_made_with_other_environment_fields_is_the_same_cell(data_root, tmp_path):
    """precision=auto, threads and checkpoint_every (how the Dynamic-OCM paper runs were started) do not
    make another cell; a changed learner field does."""
    from streamvae import config as C
    from streamvae import registry

    spec = R.load_spec("ocm-table1")
    cell = next(c for c in R.cells(spec, "paper", data_root) if c.key == "dynamic-ocm-split_fashion")
    root = tmp_path / "paper"
    for seed, extra in ((1, []), (2, ["learner.lr=3e-4"])):
        cfg = registry.load_config(cell.config, ["budget=paper", f"seed={seed}", "threads=1", "precision=auto",
                                                 "checkpoint_every=10"])
        d = root / f"dynamic-ocm-split_fashion-s{seed}"
        d.mkdir(parents=True)
        resolved = C.to_dict(cfg)
        if extra:
            resolved["learner"]["lr"] = 3e-4
        (d / "config.yaml").write_text(yaml.safe_dump(resolved))
        (d / "results.json").write_text(json.dumps({"iw_samples": 1000, "ll_iw1000": -237.5, "precision": "fp32"}))
    runs = R.read_cell(cell, root)
    assert list(runs.finished) == [1]
    assert "learner.lr" in runs.foreign[2]


def test_a_run_that_changed_precision_on_resume_fills_an_auto_cell_and_the_table_says_both(data_root, tmp_path):
    """A bf16 run carried to a CPU without bf16 goes on in fp32 (results.json ``bf16/fp32``): it is the
    ``auto`` paper cell's run, and the precision column names each precision once."""
    from streamvae import config as C
    from streamvae import registry

    spec = R.load_spec("ocm-table1")
    cells = R.cells(spec, "paper", data_root, ("dynamic-ocm",))
    cell = next(c for c in cells if c.key == "dynamic-ocm-split_fashion")
    root = tmp_path / "paper"
    for seed, used in ((0, "bf16/fp32"), (1, "fp32")):
        d = root / f"dynamic-ocm-split_fashion-s{seed}"
        d.mkdir(parents=True)
        cfg = registry.load_config(cell.config, [*cell.overrides, f"seed={seed}"])
        (d / "config.yaml").write_text(yaml.safe_dump(C.to_dict(cfg)))
        (d / "results.json").write_text(json.dumps({"iw_samples": 1000, "ll_iw1000": -237.5 - seed,
                                                    "precision": used}))
    assert list(R.read_cell(cell, root).finished) == [0, 1]
    header, rows, _ = R.build_table(spec, "paper", root, cells, 2)
    row = next(r for r in rows if r[1] == "Split Fashion")
    assert row[header.index("precision")] == "bf16/fp32"


# ---------------------------------------------------------------------------------------------
# a table at the smoke budget (training)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """ocm-table1 at smoke, two seeds, three rows (one not implemented), on the tiny data root."""
    tmp = tmp_path_factory.mktemp("reproduce")
    root = write_fashion_root(tmp / "data")
    out = tmp / "out"
    with pytest.MonkeyPatch.context() as mp:
        _without_peers(mp)  # LIMix's row stays "not implemented" here (the path a table takes without a learner)
        mp.setattr(datasets, "SYSTEM_DIRS", {})
        mp.setenv("STREAMVAE_CACHE", str(tmp / "cache"))
        mp.delenv("STREAMVAE_DATA", raising=False)
        datasets.clear_cache()
        code = main(["reproduce", "ocm-table1", "--budget", "smoke", "--seeds", "2", "--jobs", "2",
                     "--only", "reservoir,limix,finetune", "--data-root", str(root), "--out", str(out)])
        yield {"code": code, "out": out, "data": str(root), "tmp": tmp, "mp": mp}
    datasets.clear_cache()


def test_the_smoke_table_has_each_row_with_published_values_and_n_2(made):
    assert made["code"] == 0
    out = made["out"]
    for name in ("table.md", "table.csv", "table.tex"):
        assert (out / name).is_file()
    rows = {(r["row"], r["column"]): r for r in csv.DictReader((out / "table.csv").open())}
    res = rows[("reservoir", "Split Fashion")]
    assert res["n"] == "2" and res["seeds"] == "0 1" and res["state"] == "done"
    assert float(res["published"]) == -280.54 and res["verdict"] in ("within", "better", "worse")
    assert abs(float(res["difference"]) - (float(res["mean"]) + 280.54)) < 1e-9
    assert rows[("finetune", "Split Fashion")]["n"] == "2" and rows[("finetune", "Split Fashion")]["published"] == ""
    assert rows[("limix", "Split Fashion")]["state"] == "not implemented"
    assert rows[("reservoir", "Split MNIST")]["state"] == "no data"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "finetune-split_fashion-s0", "finetune-split_fashion-s1", "reservoir-split_fashion-s0",
        "reservoir-split_fashion-s1"]


def test_running_it_again_trains_nothing(made, capsys):
    out = made["out"]
    # a run-environment edit (as a run started by hand with precision=auto would have) is still this cell
    cfg_path = out / "reservoir-split_fashion-s1" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(precision="auto", threads=2, checkpoint_every=10)
    cfg_path.write_text(yaml.safe_dump(cfg))
    # a run written before a field existed (at its default now) is this cell too
    old_path = out / "finetune-split_fashion-s0" / "config.yaml"
    old = yaml.safe_load(old_path.read_text())
    del old["eval"]["probe_features"]
    old_path.write_text(yaml.safe_dump(old))
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    logs = {p: p.read_text() for p in out.glob("*/run.log")}
    capsys.readouterr()
    assert main(["reproduce", "ocm-table1", "--budget", "smoke", "--seeds", "2", "--only",
                 "reservoir,limix,finetune", "--data-root", made["data"], "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 already done, 0 to start, 0 to resume" in printed
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == before
    assert {p: p.read_text() for p in out.glob("*/run.log")} == logs


def test_the_table_from_records_equals_the_table_from_the_runs(made, capsys, tmp_path):
    records = tmp_path / "results"
    args = ["reproduce", "ocm-table1", "--budget", "smoke", "--seeds", "2", "--only", "reservoir,limix,finetune",
            "--out", str(made["out"]), "--record", str(records)]
    before = {p: p.stat().st_mtime_ns for p in made["out"].rglob("*")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in made["out"].rglob("*")} == before  # --record runs nothing
    written = sorted(p.relative_to(records).as_posix() for p in records.rglob("*") if p.is_file())
    runs = sorted(d.name for d in made["out"].iterdir() if d.is_dir())
    # what a record holds: the small files, never a checkpoint
    assert written == sorted(f"ocm-table1/smoke/{r}/{n}" for r in runs for n in R.RECORD_FILES
                             if (made["out"] / r / n).is_file())
    assert all((made["out"] / r / "checkpoint.pt").is_file() for r in runs)
    for r in runs:
        assert (records / "ocm-table1/smoke" / r / "results.json").read_bytes() == (
            made["out"] / r / "results.json").read_bytes()
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out.count("(unchanged)") == len(runs)
    assert main(["reproduce", "ocm-table1", "--budget", "smoke", "--seeds", "2", "--only", "reservoir,limix,finetune",
                 "--data-root", made["data"], "--from", str(records)]) == 0
    printed = capsys.readouterr().out
    ran = (made["out"] / "table.md").read_text()
    # the same table, except that records do not look for data: a column without data here is just missing
    assert [x for x in printed.splitlines() if "Split MNIST" not in x] == [
        x for x in ran.splitlines() if "Split MNIST" not in x]
    assert "(n=2, ll_iw20)" in printed
    mnist = next(x for x in printed.splitlines() if x.startswith("| VAE-ELBO-Random | Split MNIST"))
    assert "no data" not in mnist and "fill: streamvae reproduce ocm-table1 --budget smoke --seeds 2" in mnist


def test_dry_run_lists_every_cell_with_its_command_steps_and_state(made, capsys):
    capsys.readouterr()
    assert main(["reproduce", "ocm-table1", "--budget", "smoke", "--seeds", "3", "--only", "reservoir",
                 "--data-root", made["data"], "--out", str(made["out"]), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "reservoir-split_fashion-s0: finished" in printed and "reservoir-split_fashion-s2: to run" in printed
    assert "optimiser steps" in printed and "streamvae run split_fashion/reservoir" in printed
    assert "to run: 1 of 3 runs" in printed
    assert not (made["out"] / "reservoir-split_fashion-s2").exists()  # a dry run writes nothing


def test_a_run_carried_from_another_machine_is_unpacked_and_resumed_not_started_again(made, capsys, tmp_path,
                                                                                       monkeypatch):
    import shutil

    from streamvae import carry

    src = made["out"] / "reservoir-split_fashion-s0"  # (s1's config.yaml is edited by another test)
    run = tmp_path / "out" / "reservoir-split_fashion-s0"
    shutil.copytree(src, run)
    (run / "results.json").unlink()  # stopped before its end: what a carried run is
    monkeypatch.chdir(tmp_path)  # carry/ is found where the command runs, as `carry pack` writes it
    packed = carry.pack(run)
    assert packed == carry.CARRY_DIR / "reservoir-split_fashion-s0.carry"
    shutil.rmtree(run)  # the next machine has only the carried file
    shutil.copy(packed, carry.CARRY_DIR / "reservoir-split_fashion-s1.carry")  # seed 0's run under s1's name
    args = ["reproduce", "ocm-table1", "--budget", "smoke", "--seeds", "2", "--only", "reservoir",
            "--data-root", made["data"], "--out", str(tmp_path / "out")]
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    arrival = carry.read(packed)["arrival"]
    assert (f"reservoir-split_fashion-s0: arrival {arrival}, carried in carry/reservoir-split_fashion-s0.carry: "
            "unpacked, then resumes") in printed
    assert "reservoir-split_fashion-s1: to run" in printed  # another configuration's file is not this run
    assert not run.exists()  # a dry run writes nothing
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"reservoir-split_fashion-s0: unpacked carry/reservoir-split_fashion-s0.carry (arrival {arrival})" in printed
    assert (run / "train.jsonl").read_text() == (src / "train.jsonl").read_text()  # carried on, not trained again
    ours, theirs = json.loads((run / "results.json").read_text()), json.loads((src / "results.json").read_text())
    assert ours["ll_iw20"] == theirs["ll_iw20"]


def test_dry_run_gives_an_interrupted_run_the_time_it_has_left(made, capsys, tmp_path):
    """A run that resumes is costed for the arrivals to come and its whole final evaluation, not from the start."""
    from streamvae.costs import Estimate

    est = Estimate({"train_steps": 900.0, "memory_and_events": 60.0, "evaluation_points": 30.0, "checkpoints": 5.0,
                    "stream_and_logs": 5.0, "final_evaluation": 100.0}, threads=1)
    assert R.seconds_left(est, 0, 100) == est.total_s
    assert R.seconds_left(est, 25, 100) == 0.75 * 1000 + 100
    assert R.seconds_left(est, 100, 100) == R.seconds_left(est, 150, 100) == 100
    run = tmp_path / "out" / "ocm-split_fashion-s0"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"")
    (run / "train.jsonl").write_text(json.dumps({"arrival": 3, "steps": 1}) + "\n")
    capsys.readouterr()
    assert main(["reproduce", "ocm-table1", "--budget", "paper", "--seeds", "1", "--only", "ocm", "--data-root",
                 made["data"], "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "ocm-split_fashion-s0:" in x)
    assert "arrival 3, interrupted: resumes" in line and re.search(r"about [\d.]+ (s|min|h), about [\d.]+ (s|min|h) left", line)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "train.jsonl"]  # a dry run writes nothing
    assert "pace" not in line  # no evaluation point yet: the model's figure alone

    # the run's own pace: its wall time at its last evaluation point against the model's share for it
    assert R.run_pace(run, est, 100) is None
    (run / "metrics.jsonl").write_text(json.dumps({"arrival": 50, "final": False, "wall_s": 900.0}) + "\n")
    assert R.run_pace(run, est, 100) == pytest.approx(900.0 / (0.5 * 1000))
    # a run carried to a faster machine: the pace of its latest stretch (arrivals 50 to 75), not of its history
    (run / "metrics.jsonl").write_text(json.dumps({"arrival": 50, "final": False, "wall_s": 900.0}) + "\n"
                                       + json.dumps({"arrival": 75, "final": False, "wall_s": 1150.0}) + "\n")
    assert R.run_pace(run, est, 100) == pytest.approx(250.0 / (0.25 * 1000))
    (run / "metrics.jsonl").write_text(json.dumps({"arrival": 50, "final": False, "wall_s": 9e9}) + "\n")
    capsys.readouterr()
    assert main(["reproduce", "ocm-table1", "--budget", "paper", "--seeds", "1", "--only", "ocm", "--data-root",
                 made["data"], "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "ocm-split_fashion-s0:" in x)
    assert "left by the model; at this run's latest pace (" in line and line.endswith("h left")
    (run / "metrics.jsonl").write_text("not json\n")
    assert R.run_pace(run, est, 100) is None


def test_time_left_follows_the_planned_steps_not_the_arrivals(data_root):
    """OCM's steps per arrival grow with its long-term memory: the first fifth of the released Split Fashion
    stream is under a tenth of its steps. ``step_share`` runs from 0 to 1 without falling, and a run
    at arrival 187 has more than 4/5 of its training left."""
    from streamvae.costs import Estimate
    from streamvae.loop import build
    from streamvae.registry import load_config

    from .conftest import REPO

    cfg = load_config(REPO / "configs/split_fashion/ocm.yaml", ["budget=paper", "precision=fp32", "threads=1"])
    _, learner = build(cfg, data_root)
    share = R.step_share(learner, 937)
    assert share is not None and share(0) == 0.0 and share(937) == share(2000) == 1.0
    values = [share(t) for t in range(938)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert share(187) < 0.1 and share(187) == pytest.approx(learner.planned_steps(187) / learner.planned_steps(937))
    est = Estimate({"train_steps": 900.0, "memory_and_events": 0.0, "evaluation_points": 0.0, "checkpoints": 0.0,
                    "stream_and_logs": 0.0, "final_evaluation": 100.0}, threads=1)
    assert R.seconds_left(est, 187, 937, share) > 0.9 * 900 + 100 > R.seconds_left(est, 187, 937)


def test_a_run_of_the_same_configuration_made_for_another_table_is_shared(data_root, tmp_path, capsys):
    """The dose-response table's 3-pass OCM cell at `fast` is ocm-table1's `fast` OCM cell: its record is read
    (and it is not run again), while the 10-pass cell and a run with a changed field are not taken."""
    from streamvae import config as C
    from streamvae import registry

    table1 = next(c for c in R.cells(R.load_spec("ocm-table1"), "fast", data_root) if c.key == "ocm-split_fashion")
    rec = tmp_path / "results"
    for seed, extra, ll in ((0, {}, -252.0), (1, {}, -253.0), (2, {"lr": 3e-4}, -200.0)):
        cfg = C.to_dict(registry.load_config(table1.config, [*table1.overrides, f"seed={seed}", "threads=1"]))
        cfg["learner"].update(extra)
        d = rec / "ocm-table1" / "fast" / f"ocm-split_fashion-s{seed}"
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(yaml.safe_dump(cfg))
        (d / "results.json").write_text(json.dumps({"iw_samples": 1000, "ll_iw1000": ll, "precision": "fp32"}))
    old = rec / "ocm-table1" / "fast" / "finetune-split_fashion-s3"  # an old record with few fields: never shared
    old.mkdir()
    (old / "config.yaml").write_text(yaml.safe_dump({"seed": 3, "learner": {"name": "ocm"}}))
    (old / "results.json").write_text(json.dumps({"iw_samples": 1000, "ll_iw1000": -1.0}))

    # precision-bf16 sets precision in its rows: the fp32 record is its fp32 row, never its bf16 row
    by_key = {c.key: c for c in R.cells(R.load_spec("precision-bf16"), "fast", data_root, ("ocm-fp32", "ocm-bf16"))}
    assert by_key["ocm-bf16-split_fashion"].pinned == {"precision": "bf16"}
    where = [rec / "ocm-table1" / "fast"]
    assert sorted(R.read_cell(by_key["ocm-fp32-split_fashion"], tmp_path / "none", where).shared) == [0, 1]
    assert R.read_cell(by_key["ocm-bf16-split_fashion"], tmp_path / "none", where).shared == {}
    # ... and its bf16 run never stands in for an fp32 cell whose row does not name the precision
    bf16 = tmp_path / "runs" / "precision-bf16" / "fast" / "ocm-bf16-split_fashion-s0"
    bf16.mkdir(parents=True)
    cfg = C.to_dict(registry.load_config(table1.config, [*table1.overrides, "seed=0", "precision=bf16"]))
    (bf16 / "config.yaml").write_text(yaml.safe_dump(cfg))
    (bf16 / "results.json").write_text(json.dumps({"iw_samples": 1000, "ll_iw1000": -252.5, "precision": "bf16"}))
    assert table1.pinned == {"precision": "fp32"}
    assert R.read_cell(table1, tmp_path / "none", [bf16.parent]).shared == {}
    assert R.read_cell(by_key["ocm-bf16-split_fashion"], tmp_path / "none", [bf16.parent]).shared == {0: str(bf16)}

    table = R.records_table("dynamic-ocm-dose-response", "fast", rec)
    e3 = next(x for x in table.splitlines() if x.startswith("| VAE-ELBO-OCM | 3 passes"))
    assert "-252.50 ± 0.71 (n=2)" in e3 and "seeds 0, 1: ocm-table1's runs (the same configuration)" in e3
    e10 = next(x for x in table.splitlines() if x.startswith("| VAE-ELBO-OCM | 10 passes"))
    assert "(n=" not in e10 and "fill:" in e10
    own = R.records_table("ocm-table1", "fast", rec)  # a table's own runs carry no such note
    assert "the same configuration" not in own
    assert f"more seeds: streamvae reproduce ocm-table1 --budget fast --only ocm --with-records {rec}" in own

    out = rec / "dynamic-ocm-dose-response" / "fast"
    capsys.readouterr()
    assert main(["reproduce", "dynamic-ocm-dose-response", "--budget", "fast", "--seeds", "3", "--only", "ocm",
                 "--data-root", data_root, "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"ocm-e3-s0: finished as {rec / 'ocm-table1' / 'fast' / 'ocm-split_fashion-s0'} (the same" in printed
    shown = printed.splitlines()
    after = shown[next(i for i, x in enumerate(shown) if "ocm-e3-s0: finished as" in x) + 1]
    assert "streamvae run" not in after  # read there: no command to run it
    assert "ocm-e3-s2: to run" in printed and "ocm-e10-s0: to run" in printed
    assert "to run: 10 of 12 runs" in printed
    assert main(["reproduce", "dynamic-ocm-dose-response", "--budget", "fast", "--seeds", "2", "--only", "ocm",
                 "--out", str(out), "--record", str(tmp_path / "copied")]) == 0
    assert "ocm-e3-s1: is " + str(rec / "ocm-table1" / "fast" / "ocm-split_fashion-s1") + \
        " (the same configuration): its record is kept there" in capsys.readouterr().out
    assert not (tmp_path / "copied").exists()  # its record stays where it is, once

    # --with-records: a table's own recorded runs count as finished for a fresh run directory
    fresh = tmp_path / "runs" / "ocm-table1" / "fast"
    assert main(["reproduce", "ocm-table1", "--budget", "fast", "--seeds", "3", "--only", "ocm", "--data-root",
                 data_root, "--out", str(fresh), "--with-records", str(rec), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "ocm-split_fashion-s1: finished as " + str(rec / "ocm-table1" / "fast" / "ocm-split_fashion-s1") in printed
    assert "ocm-split_fashion-s2: to run" in printed  # its record is another configuration (learner.lr)
    assert "to run: 1 of 3 runs" in printed
    assert not fresh.exists()
    spec = R.load_spec("ocm-table1")
    table = R.table_markdown(spec, "fast", fresh, R.cells(spec, "fast", data_root, ("ocm",)), 3, None,
                             R.shared_roots(fresh, "ocm-table1", "fast", rec))
    assert f"seeds 0, 1: recorded in {rec / 'ocm-table1' / 'fast'}" in table
    assert main(["reproduce", "ocm-table1", "--budget", "fast", "--with-records", str(tmp_path / "none"),
                 "--dry-run"]) == 2
    assert "--with-records" in capsys.readouterr().err and "is not a directory" not in printed
