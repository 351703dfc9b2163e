"""Which learner a name means, plugins that add learners, and config loading that knows both.

Built-in learners are the literal dict ``streamvae.learners.LEARNERS``. A learner written outside
the package subclasses :class:`streamvae.Learner` (or ``VAELearner``) and registers itself:

    from streamvae import VAELearner, register_learner

    @register_learner("window")
    class Window(VAELearner): ...

and is loaded with ``streamvae run CONFIG --plugin FILE_OR_MODULE`` (or a ``plugins:`` list in the
YAML). The config is resolved against the learner's own dataclasses (``streamvae.config.resolve``);
a run records its plugins (as absolute paths) in ``config.yaml`` so that ``--resume`` finds them.
Plugins are code the user chose to run: they are imported, never read from untrusted run files
other than the user's own ``config.yaml``.
"""
from __future__ import annotations

import importlib
import importlib.util
import hashlib
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable

import yaml

from . import config as C
from .data.streams import check_datasets
from .errors import ConfigError
from .learners import LEARNERS, Learner

_PLUGINS: dict[str, type[Learner]] = {}  # registered by register_learner (plugins)
_LOADED: dict[str, Any] = {}  # plugin spec -> its module (a plugin file is imported once per process)


def register_learner(name: str) -> Callable[[type[Learner]], type[Learner]]:
    """Class decorator: make ``name`` a learner for ``learner.name``. Built-in names cannot be taken."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ConfigError(f"register_learner: a learner name is a non-empty word, got {name!r}")

    def add(cls: type[Learner]) -> type[Learner]:
        if not (isinstance(cls, type) and issubclass(cls, Learner)):
            raise ConfigError(f"register_learner({name!r}): {cls!r} is not a subclass of streamvae.Learner")
        if name in LEARNERS:
            raise ConfigError(f"register_learner({name!r}): a built-in learner already has this name")
        if cls.model_kind not in C.MODEL_CONFIGS:
            raise ConfigError(f"{cls.__name__}.model_kind={cls.model_kind!r}; choose one of: "
                              f"{', '.join(C.MODEL_CONFIGS)}")
        for attr, base in (("config_class", C.LearnerConfig), ("memory_class", C.MemoryConfig)):
            if not issubclass(getattr(cls, attr), base):
                raise ConfigError(f"{cls.__name__}.{attr} must subclass streamvae.config.{base.__name__}")
        _PLUGINS[name] = cls
        return cls

    return add


def learner_names() -> list[str]:
    return [*LEARNERS, *_PLUGINS]


def get_learner(name: str) -> type[Learner]:
    """The learner class for ``learner.name`` (built-in first, then plugins)."""
    if name in LEARNERS:
        return LEARNERS[name]
    if name in _PLUGINS:
        return _PLUGINS[name]
    hint = "" if _PLUGINS else " (a learner from a file needs --plugin FILE)"
    raise ConfigError(f"learner.name={name!r} is unknown; choose one of: {', '.join(learner_names())}{hint}")


def default_config(name: str) -> dict[str, Any] | None:
    """Today's defaults of a run of learner ``name``, flattened to dotted keys (``C.flatten``); None
    for a learner this process does not know (a plugin not imported). A run written by an older
    version lacks the fields added since; their defaults keep the behaviour it had."""
    try:
        return C.flatten(C.to_dict(C.skeleton(get_learner(name), name)))
    except ConfigError:
        return None


def load_plugin(spec: str) -> str:
    """Import a plugin (a ``.py`` file or an importable module name); returns its canonical spec
    (the absolute path of a file), which is what a run records."""
    path = Path(spec).expanduser()
    if spec.endswith(".py") or path.exists():
        if not path.is_file():
            raise ConfigError(f"plugin file not found: {spec}")
        key = str(path.resolve())
        if key not in _LOADED:
            mod_name = "streamvae_plugin_" + hashlib.sha256(key.encode()).hexdigest()[:12]
            module_spec = importlib.util.spec_from_file_location(mod_name, key)
            if module_spec is None or module_spec.loader is None:
                raise ConfigError(f"cannot import plugin {spec}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[mod_name] = module
            try:
                module_spec.loader.exec_module(module)
            except ConfigError:
                raise
            except Exception as e:  # a broken plugin: one line naming the file and the error
                del sys.modules[mod_name]
                raise ConfigError(f"plugin {spec} failed to import: {type(e).__name__}: {e}") from None
            _LOADED[key] = module
        return key
    if spec not in _LOADED:
        try:
            _LOADED[spec] = importlib.import_module(spec)
        except ImportError as e:
            raise ConfigError(f"plugin {spec!r} is neither a .py file nor an importable module ({e})") from None
    return spec


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                plugins: Sequence[str] = ()) -> C.RunConfig:
    """Load a YAML config for its learner: plugins, budget preset, then the ``--set`` overrides.

    Raises:
        ConfigError: unknown learner, key or budget, wrong type, invalid value, unreadable file.
    """
    raw = C.read_yaml(path) if path is not None else {}
    listed = raw.pop("plugins", None) or []
    if not isinstance(listed, list):
        raise ConfigError(f"{path}: plugins must be a list of files or modules")
    base = Path(path).parent if path is not None else Path(".")
    # plugin files listed in a YAML are relative to that file; --plugin ones to the working directory
    specs = [load_plugin(str(base / p) if str(p).endswith(".py") else str(p)) for p in listed]
    specs += [load_plugin(p) for p in plugins]
    cfg = C.resolve(raw, overrides, get_learner, label=str(path) if path is not None else "<defaults>")
    check_datasets(cfg.stream)  # names only: nothing is read
    return C._apply(cfg, "plugins", list(dict.fromkeys(specs)))


def from_dict(d: dict, overrides: list[str] | tuple[str, ...] = ()) -> C.RunConfig:
    """Rebuild a resolved config (``to_dict`` output: a checkpoint's or a run's ``config.yaml``)."""
    d = dict(d)
    for p in d.get("plugins") or []:
        load_plugin(str(p))
    d.pop("budgets", None)
    budget = d.get("budget", "paper")  # already applied: do not apply a preset again
    cfg = C.resolve({**d, "budget": "paper"}, overrides, get_learner, label="<resolved config>")
    return C._apply(cfg, "budget", budget)


def load_resolved(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> C.RunConfig:
    """Load a run directory's resolved ``config.yaml`` (budget already applied) plus overrides."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: is this a streamvae run directory?") from None
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not a readable config: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections")
    return from_dict(raw, overrides)


__all__ = ["register_learner", "get_learner", "learner_names", "load_plugin", "load_config", "from_dict",
           "load_resolved", "default_config"]
