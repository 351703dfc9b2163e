"""``streamvae report RUN_DIR ...``: one self-contained HTML page and a Markdown page for some runs.

Reads run directories only (config.yaml, metrics.jsonl, results.json, events.jsonl, the PNG grids).
``report.html`` embeds every picture as a base64 data URI and carries its own CSS: it opens offline,
alone. ``report.md`` links to PNG files written beside it; every figure is also written as SVG, and
the final table as ``final-table.csv`` and ``final-table.tex`` (booktabs). Wide tables are split into
parts of at most ``MAX_COLUMNS`` columns (the run column repeated), so that they fit the page.

    html_path, md_path = write_report(["runs/a", "runs/b"], "reports/ab")
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import plots
from .runs import Run, load_runs
from .tables import compare_tables, config_table, final_table, split_columns, to_csv, to_html, to_latex, to_markdown

MAX_COLUMNS = 9  # a wider table is shown as several, each with the first (run) column repeated

GRID_TITLES = {  # the title drawn above each of a run's grids: what the grid shows
    "samples.png": "samples (decoder means of draws from the prior)",
    "reconstructions.png": "reconstructions (pairs: test image | its reconstruction)",
    "memory.png": "memory at the end of the stream (a sample of what each memory holds)",
}

GRID_CAPTIONS = {
    "samples.png": "samples: decoder means of draws from the prior (for a mixture, one block of rows per component)",
    "reconstructions.png": "reconstructions: pairs of test image | its reconstruction by the component whose "
                           "ELBO is best for it",
    "memory.png": "memory at the end of the stream: a seeded sample of what each memory holds, in stored order",
}

CSS = """
body { font-family: sans-serif; max-width: 1100px; margin: 1.5em auto; padding: 0 1em; color: #222; }
h1, h2, h3 { font-weight: 600; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 13px; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; }
th { background: #f2f2f2; } tr.published td { color: #555; background: #fafafa; font-style: italic; }
figure { margin: 1em 0; } figcaption { font-size: 13px; color: #444; }
div.table { overflow-x: auto; max-width: 100%; } td { max-width: 24em; overflow-wrap: anywhere; }
img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
pre { background: #f6f6f6; padding: .6em; font-size: 12px; overflow-x: auto; }
p.note { font-size: 13px; color: #444; }
"""


@dataclass
class Document:
    """A list of blocks rendered both as HTML (images inline) and as Markdown (images as files)."""
    title: str
    blocks: list[tuple] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes
    files: dict[str, bytes] = field(default_factory=dict)  # other files written beside report.md (SVG, CSV, TeX)

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def paragraph(self, text: str, note: bool = False) -> None:
        self.blocks.append(("p", text, note))

    def table(self, header: list[str], rows: list[list]) -> None:
        """A table; a wide one becomes several parts of at most ``MAX_COLUMNS`` columns."""
        parts = split_columns(header, rows, MAX_COLUMNS)
        for i, (h, r) in enumerate(parts):
            if len(parts) > 1:
                self.paragraph(f"(part {i + 1} of {len(parts)})", note=True)
            self.blocks.append(("table", h, r))

    def file(self, name: str, data: bytes | str) -> str:
        """A file written beside the report (its unique name returned)."""
        name = _unique(name, self.files.keys() | self.images.keys())
        self.files[name] = data.encode() if isinstance(data, str) else data
        return name

    def links(self, text: str, names: list[tuple[str, str]]) -> None:
        """A line of links to files beside the report: ``text`` then ``(file name, what it is)`` pairs."""
        self.blocks.append(("links", text, names))

    def code(self, text: str, summary: str) -> None:
        self.blocks.append(("code", text, summary))

    def image(self, name: str, data: bytes, caption: str, svg: str | None = None) -> None:
        name = _unique(name, self.images.keys() | self.files.keys())
        self.images[name] = data
        self.blocks.append(("img", name, caption, svg))

    def figure(self, name: str, fig, caption: str) -> None:
        """The figure as PNG (shown) and as SVG (written beside it, linked)."""
        if fig is None:
            return
        import matplotlib

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        name = _unique(name, self.images.keys() | self.files.keys())
        svg_buf = io.BytesIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):  # text stays text
            fig.savefig(svg_buf, format="svg")
        svg = self.file(name.rpartition(".")[0] + ".svg", svg_buf.getvalue())
        self.image(name, buf.getvalue(), caption, svg)

    def to_html(self) -> str:
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
               f"<title>{html.escape(self.title)}</title>", f"<style>{CSS}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p{' class=note' if b[2] else ''}>{html.escape(b[1])}</p>")
            elif b[0] == "table":
                out.append(f'<div class="table">{to_html(b[1], b[2])}</div>')
            elif b[0] == "links":
                out.append(f"<p>{html.escape(b[1])} " + ", ".join(
                    f'<a href="{html.escape(n)}">{html.escape(n)}</a> ({html.escape(what)})' for n, what in b[2])
                    + "</p>")
            elif b[0] == "code":
                out.append(f"<details><summary>{html.escape(b[2])}</summary><pre>{html.escape(b[1])}</pre></details>")
            elif b[0] == "img":
                data = base64.b64encode(self.images[b[1]]).decode("ascii")
                svg = f' (<a href="{html.escape(b[3])}">SVG</a>)' if b[3] else ""
                out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b[1])}">'
                           f"<figcaption>{html.escape(b[2])}{svg}</figcaption></figure>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def to_markdown(self) -> str:
        """The page as Markdown. Text from the runs (names, labels, paths, config text) is escaped: no raw
        HTML passes through, and a newline cannot end a heading, a paragraph or a table row."""
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + md_text(b[2]))
            elif b[0] == "p":
                out.append(f"> {md_text(b[1])}" if b[2] else md_text(b[1]))
            elif b[0] == "table":
                out.append(to_markdown(b[1], b[2]))
            elif b[0] == "links":
                out.append(f"{md_text(b[1])} " + ", ".join(f"[{md_text(n)}]({n}) ({md_text(what)})" for n, what in b[2]))
            elif b[0] == "code":
                text = b[1].rstrip()
                fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", text)), default=0))
                out.append(f"<details><summary>{html.escape(b[2])}</summary>\n\n{fence}yaml\n{text}\n{fence}\n\n"
                           "</details>")
            elif b[0] == "img":
                svg = f" ([SVG]({b[3]}))" if b[3] else ""
                out.append(f"![{md_text(b[1])}]({b[1]})\n\n{md_text(b[2])}{svg}")
        return "\n\n".join(out) + "\n"


def md_text(text: str) -> str:
    """Text for Markdown outside code: HTML-escaped (``<img ...>`` shows as text) and on one line."""
    return html.escape(" ".join(str(text).split()), quote=False)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _unique(name: str, taken) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, i = name, 2
    while candidate in taken:
        candidate = f"{stem}-{i}{dot}{ext}"
        i += 1
    return candidate


def build_report(runs: list[Run]) -> Document:
    """Every section of the report, in reading order."""
    doc = Document("streamvae report: " + ", ".join(r.label for r in runs))
    doc.heading(1, "streamvae report")
    doc.paragraph(f"Generated {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} from "
                  f"{len(runs)} run director{'y' if len(runs) == 1 else 'ies'}: "
                  + "; ".join(f"{r.label} = {r.path} ({r.status()})" for r in runs) + ".")

    for section in (_results_sections, _stream_sections, _time_section, _runs_section):
        section(doc, runs)
    return doc


def _results_sections(doc: Document, runs: list[Run]) -> None:
    """Final results (with CSV and LaTeX files) and the comparison with the published numbers."""
    doc.heading(2, "Final results")
    header, rows = final_table(runs)
    doc.table(header, rows)
    tex = to_latex(header, rows, r"streamvae report: final results (wide: \resizebox{\textwidth}{!}{...} fits a page)")
    doc.links("The whole table:", [(doc.file("final-table.csv", to_csv(header, rows)), "CSV"),
                                   (doc.file("final-table.tex", tex), r"LaTeX, booktabs: \usepackage{booktabs}")])
    doc.paragraph("log-likelihood: ll_iw{k} over the whole test set at the end of the stream (for mixtures the "
                  "paper's per-image selected component; 'mixture ll' is the uniform mixture). Forgetting, per "
                  "task, is the best value at an earlier evaluation point after the task was first seen minus the "
                  "final value (recon_sse: final minus best earlier), averaged over the tasks that have such an "
                  "earlier point (not the last task). Positive means forgotten. The final point may use a larger "
                  "k than the curve, which raises the bound: forgetting in nats is then an underestimate. A value marked "
                  "(!) is NaN or infinite in the run's files: not a result.",
                  note=True)

    doc.heading(2, "Compared with the published numbers")
    for title, (header, rows) in compare_tables(runs):
        doc.heading(3, title)
        doc.table(header, rows)
    doc.paragraph("Published rows: OCM (Ye & Bors, ECCV 2022), ll_iw1000 at the paper's budget (100 passes per "
                  "arrival, 50-sample ELBO). Our rows say their budget; a value shown with (ll_iw{k}) used k "
                  "below 1000.", note=True)


def _stream_sections(doc: Document, runs: list[Run]) -> None:
    """Curves along the stream, memories and components, per-task figures."""
    doc.heading(2, "Along the stream")
    for metric in ("ll", "recon_sse", "probe_linear", "probe_knn"):
        doc.figure(f"stream-{metric}.png", plots.plot_metric_over_stream(runs, metric),
                   f"{metric} at each evaluation point, over the test images of the tasks seen so far "
                   "(runs that differ only in seed: the mean over seeds, shaded from the lowest to the highest)")

    doc.heading(2, "Memory and components")
    doc.figure("memory-sizes.png", plots.plot_memory_over_stream(runs), "stored images of each memory")
    doc.figure("components.png", plots.plot_components_over_stream(runs), "mixture components along the stream")
    for run in runs:
        doc.figure(f"{_slug(run.label)}-expansion.png", plots.plot_expansion_statistic(run),
                   f"{run.label}: the expansion statistic R at each test (events.jsonl)")
    doc.figure("novelty.png", plots.plot_novelty_over_stream(runs),
               "DEMC's novelty statistic and its z-score at every check (events.jsonl), with the thresholds")

    doc.heading(2, "Per task")
    for metric in ("ll", "recon_sse", "probe_linear"):
        doc.figure(f"final-per-task-{metric}.png", plots.plot_final_per_task(runs, metric),
                   f"final {metric} per task")
        doc.figure(f"forgetting-{metric}.png", plots.plot_forgetting_per_task(runs, metric),
                   f"forgetting of {metric} per task")
    for run in runs:
        for metric in ("ll", "probe_linear"):
            doc.figure(f"{_slug(run.label)}-R-{metric}.png", plots.plot_results_matrix(run, metric),
                       f"{run.label}: results matrix R[evaluation point, task] of {metric}")
        doc.figure(f"{_slug(run.label)}-per-task-ll.png", plots.plot_per_task_over_stream(run, "ll"),
                   f"{run.label}: log-likelihood of each task along the stream")


def _time_section(doc: Document, runs: list[Run]) -> None:
    """Where the wall time went, for the runs that record it."""
    timed = [r for r in runs if isinstance((r.results or {}).get("wall_by_phase_s"), dict)]
    if not timed:
        return
    doc.heading(2, "Where the time went")
    # (r.results or {}): the same dict, results being present in every timed run
    phases = list(dict.fromkeys(k for r in timed for k in (r.results or {})["wall_by_phase_s"]))
    rows = []
    for r in timed:
        results = r.results or {}
        t = results["wall_by_phase_s"]
        total = sum(float(v) for v in t.values()) or 1.0
        rows.append([r.label, results.get("precision", "fp32"), f"{total:.0f}"]
                    + [f"{float(t.get(k, 0)):.0f} ({float(t.get(k, 0)) / total:.0%})" for k in phases])
    doc.table(["run", "precision", "total (s)"] + [k.replace("_", " ") for k in phases], rows)
    doc.paragraph("Wall time by phase (results.json wall_by_phase_s, summed over resumed stretches): optimiser "
                  "updates; the rest of observe() (memory selection, expansion or novelty tests); evaluation "
                  "points along the stream; checkpoints; reading the stream and writing logs; the final "
                  "evaluation.", note=True)


def _runs_section(doc: Document, runs: list[Run]) -> None:
    """Each run: its settings, its resolved config.yaml, its grids."""
    doc.heading(2, "Runs")
    for run in runs:
        doc.heading(3, run.label)
        doc.table(*config_table(run))
        if run.config_text:
            doc.code(run.config_text, "the resolved configuration (config.yaml)")
        for png in run.grids():  # each redrawn from its decoded pixels (grids are written atomically)
            caption = GRID_CAPTIONS.get(png.name, f"{png.name} from the run directory")
            fig = plots.plot_grid(run, png, GRID_TITLES.get(png.name, png.name))  # ReportError if not a PNG
            doc.figure(f"{_slug(run.label)}-{png.name}", fig, f"{run.label}: {caption}")


def write_report(run_dirs, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` (self-contained) and ``report.md`` + its PNG files into ``out_dir``, with
    every figure also as SVG and the final table as ``final-table.csv`` and ``final-table.tex``."""
    from ..utils import atomic_write_bytes

    runs = load_runs(run_dirs)
    doc = build_report(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # atomic writes replace a file of the same name, never write through a link planted there
    for name, data in {**doc.images, **doc.files}.items():
        atomic_write_bytes(out / name, data)
    atomic_write_bytes(out / "report.html", doc.to_html().encode())
    atomic_write_bytes(out / "report.md", doc.to_markdown().encode())
    return out / "report.html", out / "report.md"
