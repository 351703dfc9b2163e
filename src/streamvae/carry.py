"""Carry an unfinished run from one machine to the next as ONE file, as small as an exact resume allows.

A session's machine does not come back, so a run longer than a session travels through git: one
``carry/<name>.carry`` per run, replaced in place at the end of each session (one version per
session in history) and deleted (``git rm``) once the run has finished and its record is committed
under ``results/``. Nothing else of a run goes into git (``carry/`` and ``runs/`` are git-ignored;
add the file with ``git add -f``).

    streamvae carry pack runs/reproduce/ocm-table1/paper/ocm-split_fashion-s0   # -> carry/ocm-split_fashion-s0.carry
    streamvae carry unpack carry/ocm-split_fashion-s0.carry runs/reproduce/ocm-table1/paper/ocm-split_fashion-s0
    streamvae carry show carry/ocm-split_fashion-s0.carry                      # also: is it recorded already?
    streamvae run --resume runs/reproduce/ocm-table1/paper/ocm-split_fashion-s0          # or re-run the reproduce command

``streamvae reproduce`` unpacks by itself: a cell whose run directory has no checkpoint, while
``carry/<run>.carry`` holds a run of the cell's configuration, is unpacked there and resumed.

The file holds the run's ``checkpoint.pt`` and its small text files (config.yaml, metrics.jsonl,
events.jsonl, train.jsonl, ...: a resumed run appends to them), compacted losslessly:

- a float32 tensor whose every value is exactly k/255 (the stored images of the memories) is kept as
  uint8 and restored bit for bit (the compaction is checked bit for bit before it is used);
- every other float32 tensor (weights, Adam's moments) is kept exactly, its bytes grouped by position
  in the float (byte planes), which xz compresses better; generator states and the rest as they are;
- the whole is xz-compressed.

A carried file whose run is finished and recorded under ``results/`` is left over: ``show`` and
``streamvae reproduce ... --record`` name it (:func:`recorded_at`), and a test fails while one stays in
the repository.

Unpacking gives a checkpoint whose every tensor is bitwise equal to the packed one, so the resumed
run is the run that would have continued on the first machine. Unpacking refuses to overwrite a
finished run or a checkpoint at the same or a later arrival. Loading never runs code
(``torch.load(weights_only=True)`` on the decompressed bytes).
"""
from __future__ import annotations

import io
import json
import lzma
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, StreamVAEError
from .utils import stretches

CARRY_DIR = Path("carry")  # where ``pack`` writes by default and ``streamvae reproduce`` looks for carried runs
FORMAT = "streamvae-carry"
VERSION = 1
U8_KEY = "__carry_u8_over_255__"  # {U8_KEY: uint8 tensor}: a float32 tensor of values k/255
SHUFFLE_KEY = "__carry_f32_bytes__"  # {SHUFFLE_KEY: uint8 (4, n), "shape": [...]}: a float32 tensor's byte planes
TEXT_FILES = ("config.yaml", "metrics.jsonl", "events.jsonl", "train.jsonl", "config-changes.jsonl", "run.log",
              "log.txt")
MAX_UNPACKED = 4 << 30  # bytes: a carried file never decompresses to more than this


def _as_u8(t: torch.Tensor) -> torch.Tensor | None:
    """``t`` as uint8 k when every value of the float32 tensor ``t`` is bitwise ``k / 255``; else None."""
    if t.dtype != torch.float32 or t.numel() < 256 or t.is_sparse:
        return None
    t = t.detach().cpu().contiguous()
    if not bool(torch.isfinite(t).all()) or float(t.min()) < 0 or float(t.max()) > 1:
        return None
    u = torch.round(t * 255).to(torch.uint8)
    back = u.to(torch.float32) / 255
    return u if torch.equal(back.view(torch.int32), t.view(torch.int32)) else None


def _shuffled(t: torch.Tensor) -> torch.Tensor | None:
    """A float32 tensor's bytes grouped by position in the float (all first bytes, then all second...):
    the same bits, in an order xz compresses about 8% better (exponents are alike, mantissas are not)."""
    if t.dtype != torch.float32 or t.numel() < 256 or t.is_sparse:
        return None
    return t.detach().cpu().contiguous().view(torch.uint8).reshape(-1, 4).t().contiguous()


def _container(obj: dict, items) -> dict:
    out = type(obj)(items) if isinstance(obj, OrderedDict) else dict(items)
    if hasattr(obj, "_metadata"):  # a module's state_dict carries its version metadata
        out._metadata = obj._metadata  # type: ignore[attr-defined]
    return out


def compact(obj: Any) -> Any:
    """The checkpoint with every k/255 float32 tensor as uint8 (:data:`U8_KEY`) and every other float32
    tensor byte-shuffled (:data:`SHUFFLE_KEY`); the rest as it is. :func:`expand` undoes it bit for bit."""
    if isinstance(obj, torch.Tensor):
        u = _as_u8(obj)
        if u is not None:
            return {U8_KEY: u}
        b = _shuffled(obj)
        return obj if b is None else {SHUFFLE_KEY: b, "shape": list(obj.shape)}
    if isinstance(obj, dict):
        return _container(obj, ((k, compact(v)) for k, v in obj.items()))
    if isinstance(obj, list):
        return [compact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(compact(v) for v in obj)
    return obj


def expand(obj: Any) -> Any:
    """Undo :func:`compact` bit for bit."""
    if isinstance(obj, dict):
        if set(obj) == {U8_KEY} and isinstance(obj[U8_KEY], torch.Tensor) and obj[U8_KEY].dtype == torch.uint8:
            return obj[U8_KEY].to(torch.float32) / 255
        if set(obj) == {SHUFFLE_KEY, "shape"} and isinstance(obj[SHUFFLE_KEY], torch.Tensor):
            b = obj[SHUFFLE_KEY]
            if b.dtype != torch.uint8 or b.dim() != 2 or b.shape[0] != 4:
                raise ConfigError("a carried tensor is damaged (byte planes of the wrong shape)")
            return b.t().contiguous().view(torch.float32).reshape(obj["shape"])
        return _container(obj, ((k, expand(v)) for k, v in obj.items()))
    if isinstance(obj, list):
        return [expand(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(expand(v) for v in obj)
    return obj


def how_it_ran(ckpt: dict) -> str:
    """``"495,000 steps; precision bf16 from arrival 0, fp32 from arrival 459; device cpu"``: a checkpoint's steps and
    the precision and device of each stretch of the run (what its results.json will say)."""
    found = ckpt.get("learner")
    learner: dict = found if isinstance(found, dict) else {}

    def history(key: str, single: str) -> str:  # an older checkpoint has only the single value
        return stretches(learner.get(key) or [[0, learner.get(single, ckpt.get(single, "?"))]])

    steps = learner.get("steps")
    return (f"{steps:,} steps; " if isinstance(steps, int) else "") + \
        f"precision {history('precisions', 'precision')}; device {history('devices', 'device')}"


def pack(run_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Write ``dest`` (default ``carry/<run folder name>.carry``) from ``run_dir``'s checkpoint and text files."""
    from .utils import atomic_write_bytes, load_checkpoint

    run_dir = Path(run_dir)
    if (run_dir / "results.json").exists():
        raise ConfigError(f"{run_dir} is finished (results.json): commit its record under results/, carry nothing")
    if not (run_dir / "checkpoint.pt").is_file():
        raise ConfigError(f"{run_dir} has no checkpoint.pt: nothing to carry")
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")  # written atomically: safe while the run goes on
    files = {name: (run_dir / name).read_text() for name in TEXT_FILES if (run_dir / name).is_file()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, "arrival": ckpt.get("arrival"), "files": files,
                "checkpoint": compact(ckpt)}, buf)
    dest = Path(dest) if dest is not None else CARRY_DIR / f"{run_dir.name}.carry"
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    return dest


def read(path: str | Path) -> dict:
    """A carried file's contents (checkpoint still compacted); a damaged or foreign file is one error."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        dec = lzma.LZMADecompressor()
        data = dec.decompress(raw, max_length=MAX_UNPACKED)
        if not dec.eof:
            raise ConfigError(f"{path}: truncated, or larger than {MAX_UNPACKED >> 30} GiB unpacked")
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (lzma.LZMAError, RuntimeError, EOFError, ValueError) as e:
        raise ConfigError(f"{path} is not a carried run ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
                          ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("version") != VERSION:
        raise ConfigError(f"{path} is not a {FORMAT} file of version {VERSION}")
    if not isinstance(obj.get("checkpoint"), dict) or not isinstance(obj.get("files"), dict):
        raise ConfigError(f"{path}: no checkpoint or file table inside")
    return obj


def _arrival(path: Path) -> int:
    from .utils import load_checkpoint

    try:
        return int(load_checkpoint(path).get("arrival", -1))
    except (StreamVAEError, OSError, TypeError, ValueError):
        return -1


def _config(config_text: str) -> dict | None:
    import yaml

    try:
        cfg = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return None
    return cfg if isinstance(cfg, dict) else None


def _fixed_fields(config_text: str) -> str | None:
    """What a resume can never change in a run's config.yaml (its name, seed, budget, stream, model,
    memories and learner): equal for a run and its record even after an accepted config change."""
    cfg = _config(config_text)
    if cfg is None:
        return None
    learner = cfg.get("learner")
    fixed = {k: cfg.get(k) for k in ("name", "seed", "budget", "stream", "model", "memory")}
    fixed["learner"] = learner.get("name") if isinstance(learner, dict) else learner
    return json.dumps(fixed, sort_keys=True, default=list)


def carried_config(path: str | Path) -> tuple[dict | None, int]:
    """The carried run's config.yaml as a mapping (None when it has none or it is not one) and its arrival."""
    obj = read(path)
    return _config(obj["files"].get("config.yaml", "")), int(obj.get("arrival") or 0)


def recorded_at(path: str | Path, results: str | Path = "results") -> Path | None:
    """The finished record under ``results`` (``<spec>/<budget>/<run>/`` with a results.json) of the run
    carried in ``path``, or None: a carried file whose run is recorded is left over and goes (``git rm``)."""
    obj = read(path)
    mine = _fixed_fields(obj["files"].get("config.yaml", ""))
    if mine is None:
        return None
    for config in sorted(Path(results).glob("*/*/*/config.yaml")):
        if config.is_symlink() or not config.is_file() or config.stat().st_size > 1 << 20:
            continue  # a record's config.yaml is a few kB of its own: anything else is not one
        if (config.parent / "results.json").is_file() and _fixed_fields(config.read_text(errors="replace")) == mine:
            return config.parent
    return None


def unpack(path: str | Path, run_dir: str | Path) -> int:
    """Restore ``path`` into ``run_dir``; returns the checkpoint's arrival. Refuses to overwrite a finished
    run or a checkpoint at the same or a later arrival."""
    from .utils import atomic_write_text, save_checkpoint

    obj = read(path)
    run_dir = Path(run_dir)
    arrival = int(obj.get("arrival") or -1)
    if (run_dir / "results.json").exists():
        raise ConfigError(f"{run_dir} is finished (results.json): nothing to unpack into it")
    here = _arrival(run_dir / "checkpoint.pt") if (run_dir / "checkpoint.pt").exists() else -1
    if here >= arrival >= 0 or (here >= 0 and arrival < 0):
        raise ConfigError(f"{run_dir} is at arrival {here}, the carried file at {arrival}: not overwritten")
    bad = [n for n in obj["files"] if n not in TEXT_FILES or not isinstance(obj["files"][n], str)]
    if bad:
        raise ConfigError(f"{path}: unexpected file {bad[0]!r} inside; carried files: {', '.join(TEXT_FILES)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in obj["files"].items():
        atomic_write_text(run_dir / name, text)
    save_checkpoint(run_dir / "checkpoint.pt", expand(obj["checkpoint"]))  # last: a resume needs all of it
    return arrival


def command(args) -> int:
    """``streamvae carry pack|unpack|show`` (the parser is the command line's, :mod:`streamvae.cli`)."""
    if args.action == "pack":
        dest = pack(args.run_dir, args.dest)
        ckpt = Path(args.run_dir) / "checkpoint.pt"
        obj = read(dest)
        print(f"{dest}: arrival {obj.get('arrival')}, {how_it_ran(obj['checkpoint'])}, "
              f"{dest.stat().st_size:,} bytes (checkpoint.pt {ckpt.stat().st_size:,} bytes)")
    elif args.action == "unpack":
        arrival = unpack(args.file, args.run_dir)
        print(f"{args.run_dir}: restored at arrival {arrival}; resume: streamvae run --resume {args.run_dir}")
    else:
        obj = read(args.file)
        print(f"{args.file}: arrival {obj.get('arrival')}, {how_it_ran(obj['checkpoint'])}, files "
              f"{', '.join(obj['files'])}, {Path(args.file).stat().st_size:,} bytes")
        done = recorded_at(args.file, args.results)
        if done is not None:
            print(f"{args.file}: its run is finished and recorded in {done}: remove it (git rm {args.file})")
    return 0
