"""The report's polish (issue 15): titled grids at a readable size, tables that fit the page, SVG beside
every PNG, the final table as CSV and LaTeX, and bar-chart legends that give each run's value."""
from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from streamvae.cli import main
from streamvae.report import load_runs, plots
from streamvae.report.report import MAX_COLUMNS
from streamvae.report.tables import final_table, split_columns, to_latex

from .test_report import smoke_runs  # noqa: F401  (the module's reservoir and Dynamic-OCM smoke runs)


@pytest.fixture(scope="module")
def report_dir(smoke_runs, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("polished")
    assert main(["report", str(smoke_runs["reservoir"]), str(smoke_runs["dynamic-ocm"]), "--out", str(out)]) == 0
    return out


def test_every_png_figure_has_an_svg_that_parses(report_dir):
    pngs = sorted(report_dir.glob("*.png"))
    assert len(pngs) >= 8
    for png in pngs:
        svg = png.with_suffix(".svg")
        assert svg.is_file(), f"{png.name} has no SVG"
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
    md = (report_dir / "report.md").read_text()
    svg_links = re.findall(r"\[SVG\]\(([^)]+)\)", md)
    assert len(svg_links) == len(pngs) and all((report_dir / s).is_file() for s in svg_links)
    assert 'href="stream-ll.svg"' in (report_dir / "report.html").read_text()


def test_grids_are_readable_and_titled(report_dir, smoke_runs):  # noqa: F811
    from PIL import Image

    for name in ("samples", "reconstructions", "memory"):
        with Image.open(report_dir / f"split_fashion-reservoir-{name}.png") as im:
            assert im.size[0] >= 600, (name, im.size)  # the run's grid is a few hundred pixels wide
        svg = (report_dir / f"split_fashion-reservoir-{name}.svg").read_text()
        assert "split_fashion-reservoir" in svg and name.rstrip("s") in svg  # the title: which run, what
    run = load_runs([smoke_runs["dynamic-ocm"]])[0]
    fig = plots.plot_grid(run, run.path / "samples.png", "samples (decoder means of draws from the prior)")
    title = fig.axes[0].get_title()
    assert run.label in title and "samples" in title


def test_final_table_is_split_to_fit_the_page(report_dir, smoke_runs):  # noqa: F811
    header, rows = final_table(load_runs([smoke_runs["reservoir"], smoke_runs["dynamic-ocm"]]))
    assert len(header) > MAX_COLUMNS  # wide enough to need splitting
    md = (report_dir / "report.md").read_text()
    tables = re.findall(r"^(\| .* \|)\n\|(?:---\|)+$", md, flags=re.M)
    assert tables and all(t.count(" | ") + 1 <= MAX_COLUMNS for t in tables)
    shown = {c.strip() for t in tables for c in t.strip("| ").split(" | ")}
    assert set(header) <= shown  # every column is somewhere
    html = (report_dir / "report.html").read_text()
    assert max(len(re.findall(r"<th>", t)) for t in html.split("<table>")[1:]) <= MAX_COLUMNS


def test_split_columns_repeats_the_run_column():
    header = [f"c{i}" for i in range(10)]
    rows = [list(range(10))]
    parts = split_columns(header, rows, 4)
    assert [h for h, _ in parts] == [["c0", "c1", "c2", "c3"], ["c0", "c4", "c5", "c6"], ["c0", "c7", "c8", "c9"]]
    assert parts[2][1] == [[0, 7, 8, 9]]
    assert split_columns(header[:3], [r[:3] for r in rows], 4) == [(header[:3], [[0, 1, 2]])]


def test_final_table_is_written_as_csv_and_latex_and_linked(report_dir, smoke_runs):  # noqa: F811
    header, rows = final_table(load_runs([smoke_runs["reservoir"], smoke_runs["dynamic-ocm"]]))
    with open(report_dir / "final-table.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == header and len(table) == 1 + len(rows)
    assert [r[0] for r in table[1:]] == ["split_fashion-reservoir", "split_fashion-dynamic-ocm"]
    tex = (report_dir / "final-table.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert r"split\_fashion-reservoir" in tex and "split_fashion" not in tex.replace(r"split\_fashion", "")
    for page in ("report.md", "report.html"):
        text = (report_dir / page).read_text()
        assert "final-table.csv" in text and "final-table.tex" in text


def test_latex_escapes_special_characters():
    tex = to_latex(["run_name", "share (%)"], [["a_b", "50%"], ["x & y", "-1.5 ± 0.2 (n=3)"]])
    assert r"run\_name" in tex and r"share (\%)" in tex and r"a\_b" in tex and r"50\%" in tex
    assert r"x \& y" in tex and r"$\pm$" in tex
    assert not re.search(r"(?<!\\)[_%]", tex)  # no unescaped underscore or percent left
    assert all(len(re.findall(r"(?<!\\)&", line)) == 1 for line in tex.splitlines() if line.endswith(r"\\"))


def test_bar_chart_legends_give_each_runs_value(smoke_runs):  # noqa: F811
    runs = load_runs([smoke_runs["reservoir"], smoke_runs["dynamic-ocm"]])
    for make in (plots.plot_final_per_task, plots.plot_forgetting_per_task):
        fig = make(runs, "ll")
        assert fig is not None
        texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert len(texts) == 2
        for run, text in zip(runs, texts):
            assert text.startswith(run.label + ": ")
            assert re.search(r"-?\d+\.\d{2}", text) or "n/a" in text, text
        # the bars carry their values too
        assert any(re.fullmatch(r"-?\d+\.\d{2}", t.get_text()) for t in fig.axes[0].texts)
    fig = plots.plot_final_per_task(runs, "ll")
    from streamvae.evaluation.continual import results_matrix

    final = results_matrix(runs[0].rows, "ll")[-1]
    want = f"{np.nanmean(final):.2f}"
    assert want in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_legend_value_says_how_many_tasks():
    assert plots.legend_value(np.array([1.0, 3.0, np.nan])) == "2.00 (mean of 2 tasks)"
    assert plots.legend_value(np.array([np.nan, 0.5]), 3) == "0.500 (1 task)"
    assert plots.legend_value(np.array([np.nan])) == "n/a"


def test_a_new_metric_is_one_registry_entry_and_gets_its_column(smoke_runs, monkeypatch, tmp_path):  # noqa: F811
    """A metric with a headline, added to evaluation.metrics.METRICS, is computed at every point and gets
    its own column in the final table and in compare's numbers, with no edit to report/."""
    import json
    import shutil

    from streamvae.evaluation import metrics
    from streamvae.report.tables import headline_metrics

    monkeypatch.setitem(metrics.METRICS, "pixels", metrics.Metric(
        lambda point: {"mean_pixel": float(point.test.x.mean())}, lambda e, final: True, headline=("mean_pixel",)))
    run = tmp_path / "run"
    shutil.copytree(smoke_runs["reservoir"], run)
    final = json.loads((run / "results.json").read_text())
    final["mean_pixel"] = 0.25  # what the metric above writes into a row
    (run / "results.json").write_text(json.dumps(final))
    header, rows = final_table(load_runs([run]))
    assert header[-1] == "mean_pixel" and rows[0][-1] == "0.25"
    assert headline_metrics(final)["mean_pixel"] == 0.25
    monkeypatch.delitem(metrics.METRICS, "pixels")
    assert "mean_pixel" not in final_table(load_runs([run]))[0]
