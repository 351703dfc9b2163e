"""What a newcomer can ask the tool: the learners, the shipped configs and their budgets, a config
resolved with every field's comment, and config names (``split_fashion/ocm``) as well as paths.

    streamvae list
    streamvae config show split_fashion/dynamic-ocm --set budget=fast
"""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from . import config as C
from .errors import ConfigError
from .registry import get_learner, learner_names

CONFIGS = Path(__file__).with_name("configs")  # shipped in the wheel; the repository's configs/ links here


def shipped_configs() -> list[str]:
    """Names of the shipped configs, ``stream/learner`` (presets under ``_presets`` are not configs)."""
    return sorted(str(p.relative_to(CONFIGS).with_suffix("")) for p in CONFIGS.rglob("*.yaml")
                  if not any(part.startswith("_") for part in p.relative_to(CONFIGS).parts))


def config_path(name_or_path: str) -> Path:
    """A config file from a path, or from a shipped name such as ``split_fashion/ocm``."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    candidate = CONFIGS / (name_or_path if name_or_path.endswith(".yaml") else name_or_path + ".yaml")
    if candidate.is_file() and not any(part.startswith("_") for part in Path(name_or_path).parts):
        return candidate
    if p.exists():
        raise ConfigError(f"{name_or_path} is not a config file")
    raise ConfigError(f"config {name_or_path!r} is neither a file nor a shipped config; shipped configs: "
                      f"{', '.join(shipped_configs())} (streamvae list)")


def learner_summary(name: str) -> str:
    """The first line of a learner's class docstring (else its module's): what the method is."""
    import sys

    cls = get_learner(name)
    doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else ""


def budgets_of(path: Path) -> list[str]:
    return sorted(C.read_yaml(path).get("budgets", {}), key=lambda b: C.BUDGET_NAMES.index(b)
                  if b in C.BUDGET_NAMES else 99)


def list_text() -> str:
    lines = ["learners (learner.name; model kind):"]
    for name in learner_names():
        cls = get_learner(name)
        lines.append(f"  {name:18s} {cls.model_kind:8s} {learner_summary(name)}")
    lines += ["", f"configs ({CONFIGS}; run one by name: streamvae run split_fashion/ocm --set budget=fast):"]
    by_stream: dict[str, list[str]] = {}
    for n in shipped_configs():
        stream, _, learner = n.partition("/")
        by_stream.setdefault(stream, []).append(learner)
    for stream, learners in by_stream.items():
        lines.append(f"  {stream + '/':16s} {', '.join(learners)}")
    lines += ["", "budgets (--set budget=NAME; each config lists what its budgets change):",
              "  paper   the released protocol (default; hours on a CPU, meant for a GPU)",
              "  hour    VAE-GAN configs (28x28): half width, 20 updates per arrival; about an hour per run",
              "  fast    well under an hour per Split Fashion run on 2 cores",
              "  demo    a few minutes: one pass, one sample",
              "  smoke   seconds: for tests",
              "", "fields: streamvae config show CONFIG [--set key=value ...]"]
    return "\n".join(lines)


def show_text(cfg: C.RunConfig) -> str:
    """The resolved config as YAML, each field followed by its comment (unit, choices, released value)."""
    out: list[str] = [f"# resolved config: learner {cfg.learner.name}, budget {cfg.budget}"]

    def emit(obj: Any, indent: str) -> None:
        comments = C.field_comments(type(obj))
        for f in fields(obj):
            v = getattr(obj, f.name)
            if is_dataclass(v):
                if not fields(v):
                    continue
                out.append(f"{indent}{f.name}:")
                emit(v, indent + "  ")
                continue
            value = C.yaml.safe_dump(list(v) if isinstance(v, tuple) else v, default_flow_style=True).strip()
            value = value.removesuffix("\n...").removesuffix("...").strip()
            text = f"{indent}{f.name}: {value}"
            note = comments.get(f.name)
            out.append(f"{text:44s}  # {note}" if note else text)

    emit(cfg, "")
    return "\n".join(out)
