"""A run directory from someone else is data: report, compare and the sweep summary read every file of
it as hostile. A damaged or crafted file is one line naming it and a non-zero exit, never a traceback,
a hang, or a file from outside the run directory in the report; run names never become raw HTML."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import streamvae
from streamvae.cli import main

from .test_cli import CFG, SMOKE

FAST = ["--set", "kernels=torch", "--set", "eval.probe=false"]
SWEEP = ["sweep", CFG, "--seeds", "1", "--set", "budget=smoke", "--set", "stream.samples_per_class=40",
         "--set", "eval.every=2", "--set", "kernels=torch", "--set", "eval.probe=false"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A sweep of one finished smoke run (made once per module), and its data root."""
    from streamvae.data import datasets

    from .conftest import write_fashion_root

    base = tmp_path_factory.mktemp("hostile")
    root = str(write_fashion_root(base / "data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "SYSTEM_DIRS", {})
        mp.setenv("STREAMVAE_CACHE", str(base / "cache"))
        datasets.clear_cache()
        assert main([*SWEEP, "--data-root", root, "--out", str(base / "sweep")]) == 0
    datasets.clear_cache()
    (run,) = [p.parent for p in (base / "sweep").rglob("results.json")]
    return base / "sweep", run.relative_to(base / "sweep"), root


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` pixels (1 bit, grey) with one tiny IDAT: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _results(run: Path, **change) -> str:
    r = json.loads((run / "results.json").read_text())
    r.update(change)
    return json.dumps(r)


def _metrics(run: Path, edit) -> str:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return "".join(json.dumps(edit(r)) + "\n" for r in rows)


# (file, what it holds, which commands read it); each was a traceback (or, the FIFO, a hang) before
CASES = {
    "config-invalid-yaml": ("config.yaml", lambda run: "learner: [unclosed\n", ("report", "compare")),
    "config-a-list": ("config.yaml", lambda run: "- a list\n- of things\n", ("report", "compare")),
    "config-a-string": ("config.yaml", lambda run: "just a string\n", ("report", "compare")),
    "results-a-list": ("results.json", lambda run: "[1, 2, 3]\n", ("report", "compare", "sweep")),
    "results-not-utf8": ("results.json", lambda run: b'{"name": "\xff\xfe"}', ("report", "compare", "sweep")),
    "results-400-digits": ("results.json", lambda run: _results(run, recon_sse=int("9" * 400)),
                           ("report", "compare", "sweep")),
    "results-string-numbers": ("results.json", lambda run: _results(run, ll_iw20="high", memory="lots"),
                               ("report", "compare", "sweep")),
    "results-list-learner": ("results.json", lambda run: _results(run, learner=["reservoir"]),
                             ("report", "compare", "sweep")),
    "metrics-rows-are-lists": ("metrics.jsonl", lambda run: "[1, 2]\n[3, 4]\n", ("report", "compare")),
    "metrics-without-arrival": ("metrics.jsonl", lambda run: _metrics(run, lambda r: {k: v for k, v in r.items()
                                                                                      if k != "arrival"}),
                                ("report", "compare")),
    "events-garbage-rows": ("events.jsonl", lambda run: '{"arrival": "soon", "R": "big"}\n7\n', ("report", "compare")),
    "png-decompression-bomb": ("samples.png", lambda run: png_header_only(40000, 40000), ("report",)),
}
PARAMS = [pytest.param(case, command, id=f"{case}-{command}") for case, (_, _, commands) in CASES.items()
          for command in commands]


@pytest.mark.parametrize("case, command", PARAMS)
def test_a_hostile_run_file_is_one_line_and_a_nonzero_exit(template, tmp_path, capsys, case, command):
    sweep, rel, root = template
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    run = copy / rel
    name, make, _ = CASES[case]
    data = make(run)
    (run / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    capsys.readouterr()
    if command == "sweep":  # the finished run is skipped; the summary reads its results.json
        code = main([*SWEEP, "--data-root", root, "--out", str(copy)])
    else:
        code = main([command, str(run), *(["--out", str(tmp_path / "report")] if command == "report" else [])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and "Traceback" not in err[0] and name in err[0], err


def test_a_fifo_lock_is_one_line_not_a_hang(template, tmp_path):
    """Was: report opened .lock without O_NONBLOCK and waited forever for a writer (a subprocess, so that
    the old behaviour fails the test instead of hanging it)."""
    sweep, rel, _ = template
    run = tmp_path / "run"
    shutil.copytree(sweep / rel, run)
    (run / "results.json").unlink()  # an interrupted run: report asks whether it is still running
    os.mkfifo(run / ".lock")
    env = {**os.environ, "PYTHONPATH": str(Path(streamvae.__file__).parents[1])}
    argv = ["report", str(run), "--out", str(tmp_path / "report")]
    try:
        done = subprocess.run([sys.executable, "-c", f"import sys; from streamvae.cli import main; sys.exit(main({argv!r}))"],
                              env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("streamvae report hung on a FIFO .lock")
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and ".lock" in err[0], done.stderr[-500:]


@pytest.mark.parametrize("name", ["config.yaml", "samples.png", "extra.png"])
def test_report_never_reads_outside_the_run_directory(template, tmp_path, capsys, name):
    """Was: a symlinked config.yaml was reproduced in the report, a *.png symlink to any file copied into
    the report folder and base64-embedded (bytes that did not decode as a PNG were embedded anyway)."""
    sweep, rel, _ = template
    run = tmp_path / "run"
    shutil.copytree(sweep / rel, run)
    secret = tmp_path / "secret.txt"
    secret.write_text("stream: {}\nTOKEN-7f3a: the private key\n")
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(secret)
    out = tmp_path / "report"
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and "symbolic link" in err[0], err
    written = [p.read_bytes() for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not any(b"TOKEN-7f3a" in data or b"VE9LRU4tN2YzYT" in data for data in written)


def test_a_png_that_does_not_decode_is_never_embedded(template, tmp_path, capsys):
    sweep, rel, _ = template
    run = tmp_path / "run"
    shutil.copytree(sweep / rel, run)
    (run / "extra.png").write_bytes(b"TOKEN-7f3a not a picture")
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 2
    assert "extra.png" in capsys.readouterr().err
    assert not out.exists() or not any(b"TOKEN-7f3a" in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_nan_and_infinity_in_run_files_are_flagged_in_the_tables(template, tmp_path, capsys):
    sweep, rel, _ = template
    run = tmp_path / "run"
    shutil.copytree(sweep / rel, run)
    results = json.loads((run / "results.json").read_text())
    results["ll_iw20"], results["recon_sse"] = float("nan"), float("inf")
    (run / "results.json").write_text(json.dumps(results))  # json writes NaN / Infinity
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "NaN (!)" in md and "inf (!)" in md
    capsys.readouterr()
    assert main(["compare", str(run)]) == 0
    assert "NaN (!)" in capsys.readouterr().out


def test_report_md_escapes_run_names_and_keeps_them_on_one_line(template, tmp_path, data_root, capsys):
    """Was: a run named <img src=x onerror=alert(1)> appeared 13 times as raw HTML in report.md."""
    evil = "<img src=x onerror=alert(1)>"
    out = tmp_path / "evil"
    assert main(["run", CFG, *SMOKE, *FAST, "--set", f"name={evil}", "--data-root", data_root, "--out", str(out)]) == 0
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    prose = re.sub(r"\n(`{3,})yaml\n.*?\n\1\n", "\n", md, flags=re.S)  # config.yaml shown verbatim in a code fence
    assert prose.count("```") == 0 and "name: <img" in md  # the fence holds it (code is never rendered as HTML)
    assert "<img" not in prose and prose.count("&lt;img src=x onerror=alert(1)&gt;") >= 3
    assert "<img" not in (tmp_path / "report" / "report.html").read_text().replace('<img src="data:image/png', "")
    # a newline in a name (refused when a run is configured; a hand-edited results.json has one)
    results = json.loads((out / "results.json").read_text())
    results["name"] = "two\n# lines <b>bold</b>"
    (out / "results.json").write_text(json.dumps(results))
    assert main(["report", str(out), "--out", str(tmp_path / "report2")]) == 0
    md = (tmp_path / "report2" / "report.md").read_text()
    assert "<b>" not in md and not any(line.startswith("# lines") for line in md.splitlines())
    capsys.readouterr()
    assert main(["run", CFG, *SMOKE, "--set", 'name="two\\nlines"', "--data-root", data_root,
                 "--out", str(tmp_path / "nl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "control character" in err[0]


def test_a_report_never_writes_through_links_planted_in_the_run_directory(template, tmp_path, capsys):
    sweep, rel, _ = template
    run = tmp_path / "run"
    shutil.copytree(sweep / rel, run)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    (run / "report").mkdir()
    (run / "report" / "report.md").symlink_to(victim)  # the default --out is RUN_DIR/report
    assert main(["report", str(run)]) == 0
    assert victim.read_text() == "the user's file\n" and not (run / "report" / "report.md").is_symlink()
    shutil.rmtree(run / "report")
    (run / "report").symlink_to(tmp_path)
    assert main(["report", str(run)]) == 2
    assert "symbolic link" in capsys.readouterr().err and not (tmp_path / "report.md").exists()
