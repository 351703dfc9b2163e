"""``streamvae report`` / ``compare`` on smoke runs, the probe metrics and memory.png in a run, TensorBoard."""
from __future__ import annotations

import json
import re
import shutil
import sys

import pytest

from streamvae.cli import main
from streamvae.data import datasets

from ..conftest import REPO, write_fashion_root

SMOKE = ["--set", "budget=smoke", "--set", "stream.samples_per_class=40", "--set", "eval.every=2", "--no-progress"]


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """A reservoir run and a Dynamic-OCM run that expands, on the tiny Fashion-format data root."""
    base = tmp_path_factory.mktemp("report")
    root = str(write_fashion_root(base / "data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "SYSTEM_DIRS", {})
        mp.setenv("STREAMVAE_CACHE", str(base / "cache"))
        mp.delenv("STREAMVAE_DATA", raising=False)
        datasets.clear_cache()
        runs = {}
        for name, extra in (("reservoir", []), ("dynamic-ocm", ["--set", "learner.expansion_threshold=0.0"])):
            cfg = str(REPO / f"configs/split_fashion/{name}.yaml")
            out = base / name
            assert main(["run", cfg, *SMOKE, *extra, "--data-root", root, "--out", str(out)]) == 0
            runs[name] = out
        datasets.clear_cache()
    return runs


def rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_probe_metrics_are_in_every_evaluation_row(smoke_runs):
    for run_dir in smoke_runs.values():
        for r in rows(run_dir):
            assert 0.0 <= r["probe_linear"] <= 1.0 and 0.0 <= r["probe_knn"] <= 1.0
            per_task = r["per_task"]["probe_linear"]
            assert len(per_task) == 5
            # tasks not yet seen have no probe value; seen ones do
            assert all((v is None) == (t >= r["tasks_seen"]) for t, v in enumerate(per_task))
            assert 0 < r["probe_train_size"] <= 200  # the smoke budget's probe_train_size
        final = json.loads((run_dir / "results.json").read_text())
        assert "probe_linear" in final and "probe_knn" in final["per_task"]


def test_memory_png_shows_what_each_memory_holds(smoke_runs):
    from PIL import Image

    for run_dir in smoke_runs.values():
        with Image.open(run_dir / "memory.png") as im:
            assert im.size[0] > 50 and im.size[1] > 30


def test_report_html_is_self_contained_and_markdown_links_exist(smoke_runs, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(smoke_runs["reservoir"]), str(smoke_runs["dynamic-ocm"]), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    srcs = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", page)
    assert len(srcs) == len(re.findall(r"<img\b", page)) >= 8
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    for needle in ("split_fashion-reservoir", "split_fashion-dynamic-ocm", "-280.54", "config.yaml"):
        assert needle in page
    md = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 8 and all((out / link).is_file() for link in links)
    assert "memory.png" in " ".join(links) and "samples.png" in " ".join(links)


def test_report_reads_a_run_that_is_still_going(smoke_runs, tmp_path):
    running = tmp_path / "running"
    shutil.copytree(smoke_runs["dynamic-ocm"], running)
    (running / "results.json").unlink()
    lines = (running / "metrics.jsonl").read_text().splitlines()
    (running / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n")
    assert main(["report", str(running), "--out", str(tmp_path / "r")]) == 0
    assert "interrupted" in (tmp_path / "r" / "report.html").read_text()  # nobody holds its lock
    from streamvae.rundir import RunDirLock

    with RunDirLock(running):  # a live run holds the lock: the report says it is still going
        assert main(["report", str(running), "--out", str(tmp_path / "r2")]) == 0
    assert "in progress" in (tmp_path / "r2" / "report.html").read_text()


def test_report_shows_a_rescored_checkpoint_as_its_own_row(smoke_runs, tmp_path):
    import json

    run = tmp_path / "run"
    shutil.copytree(smoke_runs["dynamic-ocm"], run)
    final = json.loads((run / "results.json").read_text())
    (run / "eval.json").write_text(json.dumps({**final, "arrival": final["arrivals"], "ll_iw20": -1.5}))
    assert main(["report", str(run), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "(streamvae eval, arrival" in md and "re-scored" in md


def test_report_of_a_folder_that_is_no_run_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run directory" in err[0]


def test_compare_lists_both_runs_and_the_published_rows(smoke_runs, tmp_path, capsys):
    csv_path = tmp_path / "t.csv"
    assert main(["compare", str(smoke_runs["reservoir"]), str(smoke_runs["dynamic-ocm"]),
                 "--csv", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "Split Fashion-MNIST" in out
    assert "ours: split_fashion-reservoir" in out and "ours: split_fashion-dynamic-ocm" in out
    assert out.count("published (OCM (ECCV 2022) Table 1)") == 6 and "-237.69" in out
    assert "(ll_iw20)" in out  # our k is said where it is not 1000
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 1 + 2 + 6 and lines[0].startswith("stream,method,source")
    assert sum(",ours," in line for line in lines) == 2


def test_tensorboard_logging_writes_event_files(tmp_path, data_root):
    pytest.importorskip("torch.utils.tensorboard")
    cfg = str(REPO / "configs/split_fashion/reservoir.yaml")
    out = tmp_path / "tb"
    assert main(["run", cfg, *SMOKE, "--tensorboard", "--data-root", data_root, "--out", str(out)]) == 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_missing_is_a_clear_error(tmp_path, data_root, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    cfg = str(REPO / "configs/split_fashion/reservoir.yaml")
    out = tmp_path / "tb"
    assert main(["run", cfg, *SMOKE, "--tensorboard", "--data-root", data_root, "--out", str(out)]) == 2
    assert "pip install tensorboard" in capsys.readouterr().err
    assert not out.exists()


def test_report_says_where_each_runs_time_went(smoke_runs, tmp_path):
    res = json.loads((smoke_runs["reservoir"] / "results.json").read_text())
    phases = res["wall_by_phase_s"]
    assert {"train_steps", "memory_and_events", "evaluation_points", "checkpoints", "final_evaluation"} <= set(phases)
    assert all(v >= 0 for v in phases.values()) and phases["train_steps"] > 0
    assert sum(phases.values()) <= res["train_wall_s"] + phases["final_evaluation"] + 5
    out = tmp_path / "rep"
    assert main(["report", str(smoke_runs["reservoir"]), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    section = md.split("## Where the time went", 1)[1].split("\n## ", 1)[0]
    assert "train steps" in section and "split_fashion-reservoir" in section
