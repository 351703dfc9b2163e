"""Reports from run directories (never from a live model): tables, figures, HTML and Markdown pages.

    from streamvae.report import load_runs, write_report
    write_report(["runs/a", "runs/b"], "reports/ab")      # report.html (self-contained) + report.md
"""
from __future__ import annotations

from .report import build_report, write_report
from .runs import ReportError, Run, load_run, load_runs
from .tables import compare_tables, final_table, to_csv, to_html, to_latex, to_markdown

__all__ = ["Run", "ReportError", "load_run", "load_runs", "write_report", "build_report", "final_table",
           "compare_tables", "to_markdown", "to_html", "to_csv", "to_latex"]
