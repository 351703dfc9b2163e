"""Every command of README.md's "Commands" section runs when pasted in order (issue 15).

The commands are read from the README's bash blocks (from the top of the file to the end of the
"## Commands" section), in order, and run in a fresh folder through ``streamvae.cli.main`` (what the
``streamvae`` console script calls). Only what makes them fast is changed: ``budget=...`` becomes
``budget=smoke``, the importance samples of a re-scoring become the smoke budget's 20, progress bars
are off, and the data come from a tiny Fashion-MNIST-format root (``STREAMVAE_DATA``). The set-up
commands (``make demo``, ``make test``) are not run (their effect is this environment); their Makefile
targets must exist. A command that names a run directory no earlier command created, or a config,
subcommand or option that does not exist, fails the test.
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from streamvae.cli import main
from streamvae.data import datasets

from .conftest import REPO, write_fashion_root

FAST = {"budget": "smoke", "eval.iw_samples": "20"}  # --set key -> the value that makes a command fast
SUBCOMMANDS_WITH_RUN_DIRS = ("eval", "report", "compare")  # their positional arguments are run directories
FLAGS = {"--no-progress", "--tensorboard", "--debug", "--accept-config-change", "--allow-unverified"}  # no value


def readme_commands(text: str) -> list[str]:
    """The shell commands of the bash blocks from the README's top to the end of "## Commands", in order
    (comments dropped, ``\\`` continuations joined)."""
    start = text.index("\n## Commands")
    end = text.find("\n## ", start + 1)
    section = text[: end if end >= 0 else len(text)]
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def fast_argv(words: list[str]) -> list[str]:
    """``main``'s argv for ``streamvae WORDS...``: FAST values in ``--set``, no progress bar for ``run``."""
    argv = []
    for i, w in enumerate(words):
        if i > 0 and words[i - 1] == "--set" and "=" in w and w.split("=", 1)[0] in FAST:
            w = f"{w.split('=', 1)[0]}={FAST[w.split('=', 1)[0]]}"
        argv.append(w)
    if argv and argv[0] == "run":
        if "--resume" not in argv and not any(a.startswith("budget=") for a in argv):
            argv += ["--set", "budget=smoke"]
        argv.append("--no-progress")
    return argv


def run_dirs_named(argv: list[str]) -> tuple[list[str], str | None]:
    """``(run directories the command reads, run directory it creates)``."""
    reads, creates = [], None
    positional = []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" not in a and a not in FLAGS:
            value = argv[i + 1] if i + 1 < len(argv) else None
            if a == "--resume":
                reads.append(value)
            elif a == "--out" and argv[0] == "run":
                creates = value
            i += 2
            continue
        if not a.startswith("-"):
            positional.append(a)
        i += 1
    if argv and argv[0] in SUBCOMMANDS_WITH_RUN_DIRS:
        reads += positional
    return reads, creates


def run_readme(commands: list[str], makefile: str) -> list[str]:
    """Run the commands in order in the current folder; the problems found (empty: all ran)."""
    problems, created = [], set()
    for command in commands:
        words = shlex.split(command)
        if words[0] == "make":
            targets = [w for w in words[1:] if not w.startswith("-")]
            problems += [f"{command}: no target {t!r} in the Makefile" for t in targets
                         if not re.search(rf"^{re.escape(t)}:", makefile, flags=re.M)]
            continue
        if words[0] in ("source", ".") or words[:2] == ["bash", "scripts/setup.sh"]:
            continue  # the set-up's effect is this environment
        if words[0] != "streamvae":
            problems.append(f"{command}: not a streamvae command (the test cannot run it)")
            continue
        argv = fast_argv(words[1:])
        reads, creates = run_dirs_named(argv)
        missing = [d for d in reads if d is None or Path(d).resolve() not in created]
        if missing:
            problems.append(f"{command}: reads {missing}, which no earlier command creates")
            continue
        try:
            status = main(argv)
        except SystemExit as e:  # argparse: an unknown subcommand or option
            status = e.code
        if status != 0:
            problems.append(f"{command}: exit status {status} (ran as streamvae {shlex.join(argv)})")
            continue
        if creates:
            created.add(Path(creates).resolve())
    return problems


@pytest.fixture()
def readme_folder(tmp_path, monkeypatch):
    """A fresh working folder; datasets from a tiny Fashion-MNIST root only."""
    root = write_fashion_root(tmp_path / "data")
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})
    monkeypatch.setenv("STREAMVAE_DATA", str(root))
    monkeypatch.setenv("STREAMVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path / "data")  # a folder of its own: the commands' relative paths land here
    datasets.clear_cache()
    yield tmp_path / "data"
    datasets.clear_cache()


def test_the_readme_lists_the_main_commands():
    commands = readme_commands((REPO / "README.md").read_text())
    subcommands = {shlex.split(c)[1] for c in commands if c.startswith("streamvae ")}
    assert {"run", "report", "compare"} <= subcommands, commands
    assert any(c.startswith("make ") for c in commands)  # the set-up


def test_the_streamvae_command_is_installed():
    assert (Path(sys.executable).parent / "streamvae").exists()  # `streamvae` = this environment's script


def test_every_readme_command_runs_when_pasted_in_order(readme_folder):
    commands = readme_commands((REPO / "README.md").read_text())
    problems = run_readme(commands, (REPO / "Makefile").read_text())
    assert not problems, "\n".join(problems)
    # what the report and compare commands say they write
    for command in commands:
        words = shlex.split(command)
        for option, written in (("--out", "report.html"), ("--csv", ""), ("--latex", ""), ("--md", "")):
            if words[:2] in (["streamvae", "report"], ["streamvae", "compare"]) and option in words:
                assert (readme_folder / words[words.index(option) + 1] / written).is_file(), command


@pytest.mark.parametrize("bad", [
    "streamvae eval runs/never-made",  # no earlier command creates it
    "streamvae report runs/never-made --out r",
    "streamvae run --resume runs/never-made",
    "streamvae run split_fashion/no-such-config --out runs/x",
    "streamvae frobnicate runs/x",
    "streamvae list --no-such-option",
    "make no-such-target",
])
def test_a_readme_command_that_cannot_work_is_reported(readme_folder, bad):
    assert run_readme([bad], (REPO / "Makefile").read_text()), bad
