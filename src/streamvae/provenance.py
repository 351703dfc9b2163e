"""Where a run's settings come from: experiment files, a run's own ``config.yaml``, and budget labels.

An experiment file (``configs/<stream>/<learner>.yaml``) names a budget whose preset is applied when
it is loaded. A run directory's ``config.yaml`` is the *resolved* config: every field of its learner,
the budget already applied and recorded as a label. :func:`load_any` loads either, so

    streamvae run RUN/config.yaml --out NEW

reruns a run with its own settings (the recorded budget is not applied again); ``--set budget=B``
that differs from the recorded one is refused, since it would only relabel the same settings.
:func:`budget_label` checks a finished run's label against its settings (``compare``, reports):
a run whose settings differ from its shipped config at that budget shows the fields that differ.

    cfg = load_any("runs/x/config.yaml", ["threads=1"])
    budget_label(run_config_dict, "fast")   # "fast", or "fast + memory.capacity=1000"
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import config as C
from .errors import ConfigError

# fields that say where and how a run executes, or which run it is, not what the budget sets
NOT_BUDGET = ("name", "seed", "out_dir", "plugins", "checkpoint_every", "threads", "kernels", "precision", "device",
              "progress", "tensorboard", "budget")


def is_resolved(raw: dict) -> bool:
    """Whether a config dict is a resolved config (a run's ``config.yaml``): no ``budgets`` or ``include``
    section, and every field of its learner present. A hand-written file that leaves fields to their
    defaults is an experiment file, whatever budget it names."""
    if not isinstance(raw, dict) or "budgets" in raw or "include" in raw:
        return False
    from . import registry

    learner = raw.get("learner")
    name = learner.get("name") if isinstance(learner, dict) else None
    if not isinstance(name, str):
        return False
    try:  # (a plugin learner is known only once the user's --plugin is loaded: load_any does that first)
        defaults = C.flatten(C.to_dict(C.skeleton(registry.get_learner(name), name)))
    except ConfigError:
        return False
    return set(defaults) <= set(C.flatten(raw))


def load_any(name_or_path: str | Path, overrides: Sequence[str] = (), plugins: Sequence[str] = ()) -> C.RunConfig:
    """A shipped config's name, an experiment YAML, or a run's resolved ``config.yaml``, with overrides.

    Raises:
        ConfigError: as :func:`streamvae.registry.load_config`; also ``--set budget=B`` on a resolved
            config whose recorded budget is not B (it would relabel the run's settings).
    """
    from . import registry
    from .catalog import config_path

    path = config_path(str(name_or_path))
    raw = C.read_yaml(path)
    # a run's config.yaml (it records plugin_sha256) is data: nothing it names is imported; the plugins the
    # user names are compared with its record and imported only when they match
    recorded_plugins = isinstance(raw, dict) and "plugin_sha256" in raw and bool(raw.get("plugins"))
    if recorded_plugins:
        registry.check_plugins(raw.get("plugins"), raw.get("plugin_sha256"), list(plugins), str(path))
    if not is_resolved(raw):
        return registry.load_config(path, list(overrides), plugins=plugins)
    recorded = raw.get("budget", "paper")
    rest = []
    for o in overrides:
        key, value = C.parse_override(o)
        if key == "budget":
            if value != recorded:
                hint = shipped_name(str(raw.get("name", "")))
                start = f"streamvae run {hint} --set budget={value}" if hint else "the experiment file it came from"
                raise ConfigError(f"{path} is a run's resolved config: budget {recorded} is already applied and its "
                                  f"settings are that run's; --set budget={value} would only relabel them. For budget "
                                  f"{value} start from {start}")
            continue
        rest.append(o)
    cfg = registry.from_dict(raw, rest)
    if plugins and not recorded_plugins:
        specs = [registry.load_plugin(p) for p in plugins]
        cfg = C._apply(cfg, "plugins", list(dict.fromkeys([*cfg.plugins, *specs])))
    return cfg


@lru_cache(maxsize=None)
def _shipped_by_name() -> dict[str, str]:
    from .catalog import CONFIGS, shipped_configs

    out: dict[str, str] = {}
    for n in shipped_configs():
        try:
            name = C.read_yaml(CONFIGS / f"{n}.yaml").get("name")
        except ConfigError:
            continue
        if isinstance(name, str):
            out.setdefault(name, n)
    return out


def shipped_name(config_name: str) -> str | None:
    """The shipped config (``split_fashion/ocm``) whose ``name`` field is ``config_name``, if any."""
    return _shipped_by_name().get(config_name)


@lru_cache(maxsize=256)
def _budget_settings(shipped: str, learner: str, budget: str) -> dict[str, Any] | None:
    from . import registry
    from .catalog import CONFIGS

    try:
        cfg = registry.load_config(CONFIGS / f"{shipped}.yaml", [f"learner.name={learner}", f"budget={budget}"])
    except ConfigError:  # the budget is not defined there, or the learner is a plugin this process lacks
        return None
    return C.flatten(C.to_dict(cfg))


def budget_differences(config: dict, budget: str) -> dict[str, Any] | None:
    """``{dotted key: the run's value}`` where a run's resolved config differs from its shipped config
    at ``budget`` (fields that do not set the budget left out); None when there is no shipped config
    to check against (the run's own experiment file, a plugin learner)."""
    shipped = shipped_name(str(config.get("name", "")))
    learner = (config.get("learner") or {}).get("name") if isinstance(config.get("learner"), dict) else None
    if shipped is None or not isinstance(learner, str):
        return None
    want = _budget_settings(shipped, learner, budget)
    if want is None:
        return None
    have = C.flatten(config)
    return {k: have[k] for k in sorted(have) if k in want and k.split(".")[0] not in NOT_BUDGET
            and k not in NOT_BUDGET and _norm(have[k]) != _norm(want[k])}


def _norm(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def budget_label(config: dict, recorded: str, limit: int = 3) -> str:
    """The budget label a run's settings support: ``recorded`` when they are its shipped config's at that
    budget (or there is nothing to check against), else ``"fast + memory.capacity=1000"`` (the fields that
    differ), so a table never shows a budget label over settings that are not that budget's."""
    try:
        diff = budget_differences(config, recorded)
    except Exception:  # noqa: BLE001 (a damaged or foreign config: the label is shown as recorded, unverified)
        return f"{recorded} (unverified)"
    if not diff:
        return recorded
    parts = [f"{k}={v}" for k, v in list(diff.items())[:limit]]
    more = f" (+{len(diff) - limit} more)" if len(diff) > limit else ""
    return f"{recorded} + {', '.join(parts)}{more}"


__all__ = ["is_resolved", "load_any", "shipped_name", "budget_differences", "budget_label"]
