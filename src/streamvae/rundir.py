"""A run directory's life: one writer at a time, no leftovers, and a resume that trusts the checkpoint.

* **Lock.** A run holds ``RUN_DIR/.lock`` with ``fcntl.flock`` for its whole life; a second writer
  fails at once with one line naming the directory. The kernel drops the lock when the process
  dies (even on SIGKILL), so a stale lock file never blocks anyone; a run that ends removes the
  file (under the lock). A new run checks again under the lock that the directory holds no run
  (:func:`refuse_existing_run`): a run started beside it may have finished meanwhile.
* **Leftovers.** Temporary files of atomic writes (``.NAME.*.tmp``) that a kill left behind are
  removed when the run starts or resumes; a directory that a failed start created and left empty
  (nothing but the lock file) is removed.
* **Resume.** The configuration that governs a resumed run is the one stored in the checkpoint.
  ``config.yaml`` may differ only in run-environment fields (:data:`ENV_FIELDS`); any other edit is
  refused, or, with ``--accept-config-change``, applied from the resume point on and recorded
  (``config-changes.jsonl`` and ``results.json``). Fields that define the stream, the model or the
  memories (:data:`FIXED_FIELDS`) can never change on resume. Nothing in the run directory is
  imported: a run made with plugins needs them named again with ``--plugin`` (compared by sha256).

    with RunDirLock(run_dir):      # ConfigError when another process writes there
        remove_temp_files(run_dir)
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from . import config as C
from .errors import CheckpointError, ConfigError

LOCK_NAME = ".lock"
# fields of config.yaml that describe where and how the run executes, not what it computes
ENV_FIELDS = ("kernels", "threads", "progress", "tensorboard", "out_dir", "device")
# prefixes that fix the stream, the model and the memories: a change would make the checkpoint meaningless
FIXED_FIELDS = ("seed", "stream.", "model.", "memory.", "learner.name", "plugins", "plugin_sha256")
CHANGES_NAME = "config-changes.jsonl"


def writer_pid(run_dir: Path) -> int | None:
    """The pid in ``run_dir/.lock`` when that process is alive and the run has not finished (read only:
    the lock is not taken)."""
    try:
        text = (run_dir / ".lock").read_text().strip()
    except OSError:
        return None
    if not text.isdigit() or (run_dir / "results.json").exists():
        return None
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return int(text)
    return int(text)


class RunDirLock:
    """``fcntl.flock`` on ``RUN_DIR/.lock`` while the run writes to the directory (a context manager).

    On exit the lock file is removed while still locked, so a finished (or failed) run leaves no
    ``.lock`` behind; only a killed writer does, and that one blocks nobody. Whoever acquires the lock checks that the file it locked is still the one at
    ``RUN_DIR/.lock`` (and tries again when it was removed meanwhile), so two writers can never both
    hold it. A ``.lock`` that is a link, a FIFO or a device is refused, never opened for reading.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def _open(self) -> int:
        import stat

        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            if self.path.is_symlink():
                raise ConfigError(f"{self.path} is a symbolic link, not a lock file; remove it") from None
            raise e
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ConfigError(f"{self.path} is not a regular file (a FIFO or device?); remove it")
        return fd

    def __enter__(self) -> "RunDirLock":
        import fcntl

        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # BlockingIOError: held by a live process
                owner = os.read(fd, 64).decode(errors="replace").strip()
                os.close(fd)
                who = f" (pid {owner})" if owner.isdigit() else ""
                raise ConfigError(f"{self.path.parent} is in use by another streamvae run{who}; wait for it to "
                                  "finish or choose another --out") from None
            try:  # the holder before us may have removed the file as it finished: lock the current one
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.fd is None:
            return
        try:  # no lock file left behind (removed while still held; only a killed writer leaves one)
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(self.fd), os.stat(self.path, follow_symlinks=False)):
                    os.unlink(self.path)
        finally:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def refuse_existing_run(run_dir: str | Path) -> None:
    """A new run (not ``--resume``) must not replace one: called under the lock, where no other writer
    can be finishing one meanwhile (the check before the lock can be overtaken by a run started at the
    same time)."""
    run_dir = Path(run_dir)
    for name in ("results.json", "checkpoint.pt"):
        if os.path.lexists(run_dir / name):
            raise ConfigError(f"{run_dir} already holds a run ({name}); use --resume {run_dir} or another --out")


def remove_temp_files(run_dir: str | Path) -> list[str]:
    """Delete the temporary files of interrupted atomic writes (``.NAME.<random>.tmp``); returns their names."""
    removed = []
    for p in Path(run_dir).glob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def remove_if_empty(run_dir: str | Path) -> bool:
    """Remove ``run_dir`` when it holds nothing but the lock file (a failed start created it)."""
    run_dir = Path(run_dir)
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return False
    if names - {LOCK_NAME}:
        return False
    try:
        (run_dir / LOCK_NAME).unlink(missing_ok=True)
        run_dir.rmdir()
    except OSError:
        return False
    return True


def is_finished(run_dir: str | Path) -> bool:
    """A run is finished once ``results.json`` exists (it is written last, atomically)."""
    return (Path(run_dir) / "results.json").is_file()




def config_changes(saved: dict, current: dict) -> dict[str, list]:
    """``{dotted key: [checkpoint value, config.yaml value]}`` for every field that differs, run-environment
    fields (:data:`ENV_FIELDS`) left out. A key missing on one side shows as ``None`` there, except a
    field the checkpoint lacks because it was added after the checkpoint was written: at its default it
    is no change (a new field's default keeps the behaviour older runs had); nor is a field the learner
    does not have that only the checkpoint lists (older versions listed every learner's fields)."""
    from .registry import default_config  # noqa: PLC0415 (the registry imports every learner)

    a, b = C.flatten(saved), C.flatten(current)
    defaults = default_config(str(a.get("learner.name", ""))) or {}
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b))
            if k not in ENV_FIELDS and a.get(k) != b.get(k)
            and not (k not in a and k in defaults and b.get(k) == defaults[k])
            and not (k not in b and defaults and k not in defaults)}  # a field this learner does not have


def _describe(changes: dict[str, list], limit: int = 6) -> str:
    parts = [f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(changes.items())[:limit]]
    more = f" (and {len(changes) - limit} more)" if len(changes) > limit else ""
    return "; ".join(parts) + more


def check_changes(changes: dict[str, list], accept: bool, run_dir: str | Path) -> None:
    """Refuse config.yaml edits that a resume cannot honour (one line); others need ``accept``."""
    if not changes:
        return
    fixed = {k: v for k, v in changes.items() if k.startswith(FIXED_FIELDS)}
    config = Path(run_dir) / "config.yaml"
    if fixed:
        raise ConfigError(f"{config} differs from the checkpoint in fields a resume cannot change "
                          f"({_describe(fixed)}); restore them, or start a new run with another --out")
    if not accept:
        raise ConfigError(f"{config} differs from the checkpoint's config ({_describe(changes)}); --resume uses "
                          "the checkpoint's: restore config.yaml, or pass --accept-config-change to apply and "
                          "record the change from this point on")


def saved_config(ckpt: dict, path: str | Path) -> dict:
    """The checkpoint's resolved config as a dict (a CheckpointError when it has none)."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the checkpoint holds no run configuration")
    return saved


def resume_config(run_dir: str | Path, ckpt: dict, accept: bool = False,
                  overrides: list[str] | tuple[str, ...] = (), plugins: list[str] | tuple[str, ...] = ()
                  ) -> C.RunConfig:
    """The configuration to continue (or re-evaluate) a run with: the checkpoint's, with the
    run-environment fields of ``config.yaml``; with ``accept`` an edited ``config.yaml`` as it is.

    Nothing in the run directory is imported: ``config.yaml`` and the checkpoint are data. A run made
    with plugins needs the same plugins named again in ``plugins`` (the command line's ``--plugin``);
    they are compared with what the checkpoint records (path or module and sha256 of the file) before
    any is imported, and a missing or different plugin is one ConfigError naming the plugin the run
    needs (:func:`streamvae.registry.check_plugins`).
    """
    from . import registry

    run_dir = Path(run_dir)
    saved = saved_config(ckpt, run_dir / "checkpoint.pt")
    registry.check_plugins(saved.get("plugins"), saved.get("plugin_sha256"), plugins, str(run_dir))
    edited = registry.load_resolved(run_dir / "config.yaml", overrides)
    current = C.to_dict(edited)
    changes = config_changes(saved, current)
    eval_keys = {o.split("=", 1)[0].strip() for o in overrides}
    changes = {k: v for k, v in changes.items() if k not in eval_keys}  # asked for on the command line
    check_changes(changes, accept, run_dir)
    if accept and changes:
        return edited
    keep = {k: current[k] for k in ENV_FIELDS if k in current}
    return registry.from_dict({**saved, **keep}, overrides)


def record_changes(run_dir: str | Path, arrival: int, changes: dict[str, list]) -> dict:
    """Append ``{"arrival", "changes"}`` to ``config-changes.jsonl``; returns the entry."""
    from .utils import read_jsonl, write_jsonl

    entry = {"arrival": arrival, "changes": changes}
    path = Path(run_dir) / CHANGES_NAME
    rows = read_jsonl(path)
    if not rows or json.dumps(rows[-1]) != json.dumps(entry):  # a repeated resume records it once
        write_jsonl(path, rows + [entry])
    return entry


__all__ = ["RunDirLock", "refuse_existing_run", "remove_temp_files", "remove_if_empty", "is_finished", "config_changes", "check_changes",
           "resume_config", "record_changes", "saved_config", "ENV_FIELDS", "FIXED_FIELDS"]
