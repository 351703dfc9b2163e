"""Which learner a name means, plugins that add learners, and config loading that knows both.

Built-in learners are the literal dict ``streamvae.learners.LEARNERS``. A learner written outside
the package subclasses :class:`streamvae.Learner` (or ``VAELearner``) and registers itself:

    from streamvae import VAELearner, register_learner

    @register_learner("window")
    class Window(VAELearner): ...

and is loaded with ``streamvae run CONFIG --plugin FILE_OR_MODULE``. The config is resolved against
the learner's own dataclasses (``streamvae.config.resolve``).

Trust: a plugin is code, imported only when the user names it on the command line (``--plugin``) of
that command. A run records each plugin (the absolute path of a file, or a module name) and the
sha256 of its file; ``eval`` and ``--resume`` import nothing from the run directory, need the same
plugin named again and compare it with the record first (:func:`check_plugins`). A ``plugins:``
list in a YAML says what the config needs; it imports nothing by itself.
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


MAX_PLUGIN_BYTES = 64 << 20  # a plugin file larger than this is not hashed (nor imported)


def _is_file_spec(spec: str) -> bool:
    return spec.endswith(".py") or Path(spec).expanduser().exists()


def canonical_plugin(spec: str) -> str:
    """What a run records for a plugin: the absolute path of a file, or the module name (nothing is imported)."""
    return str(Path(spec).expanduser().resolve()) if _is_file_spec(spec) else spec


def plugin_digest(spec: str) -> str:
    """The sha256 (hex) of the file a plugin spec imports, without importing it: the ``.py`` file, or a
    module's source file as ``importlib`` finds it (a package's ``__init__.py``; a dotted name imports
    its parent packages). ``""`` for a module without a file (a namespace package).

    Raises:
        ConfigError: the file does not exist, is not a regular file, or the module cannot be found.
    """
    from .utils import read_regular

    if _is_file_spec(spec):
        path = Path(spec).expanduser()
        where = spec
    else:
        try:
            found = importlib.util.find_spec(spec)
        except (ImportError, ValueError) as e:
            raise ConfigError(f"plugin {spec!r} is neither a .py file nor an importable module ({e})") from None
        if found is None:
            raise ConfigError(f"plugin {spec!r} is neither a .py file nor an importable module") from None
        if not found.origin or not found.has_location:
            return ""
        path, where = Path(found.origin), f"{spec} ({found.origin})"
    try:
        data = read_regular(path, MAX_PLUGIN_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"plugin file not found: {where}") from None
    except (ValueError, OSError) as e:
        raise ConfigError(f"plugin {where} {e}") from None
    return hashlib.sha256(data).hexdigest()


def _shown(spec: Any) -> str:
    """A plugin spec read from a file, printable on one line (quoted when it holds odd characters)."""
    text = str(spec)
    return text if text.isprintable() and len(text) <= 200 else C._short(text, 200)


def _strings(value: Any, what: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {what} must be a list of strings, got {C._short(value)}")
    return list(value)


def check_plugins(recorded: Any, digests: Any, given: Sequence[str], where: str) -> list[str]:
    """Import the plugins a run was made with, but only as named by the user (``given``: ``--plugin``).

    ``recorded`` and ``digests`` come from the run (its checkpoint: data, never imported); each
    recorded plugin must be matched by a given one with the same sha256 (with no recorded sha256,
    written before they were recorded: the same path or module), and every given one must match.
    Nothing is imported until all match. Returns the recorded specs.

    Raises:
        ConfigError: one line naming the plugin the run needs (a missing ``--plugin``, a changed file,
            or a plugin the run does not use).
    """
    recorded = _strings(recorded, "plugins", where)
    digests = _strings(digests, "plugin_sha256", where)
    digests += [""] * (len(recorded) - len(digests))
    named = [(g, canonical_plugin(g), plugin_digest(g)) for g in given]  # hashed, not imported
    unmatched = list(named)
    for spec, digest in zip(recorded, digests):
        need = f"plugin {_shown(spec)}" + (f" (sha256 {digest[:16]}...)" if digest else "")
        match = next((n for n in unmatched if (n[2] == digest if digest else n[1] == spec)), None)
        if match is None:
            same_name = next((n for n in unmatched if Path(n[1]).name == Path(spec).name), None)
            if same_name is not None and digest:
                raise ConfigError(f"{where} was made with {need}, but --plugin {same_name[0]} has sha256 "
                                  f"{same_name[2][:16]}...: the plugin changed since; name the file the run was "
                                  "made with")
            raise ConfigError(f"{where} was made with {need}; name it with --plugin FILE_OR_MODULE (code is "
                              "imported only from what the command line names, never from a run directory)")
        unmatched.remove(match)
    if unmatched:
        extra = ", ".join(n[0] for n in unmatched)
        made = "plugins " + ", ".join(map(_shown, recorded)) if recorded else "no plugin"
        raise ConfigError(f"{where} was made with {made}; --plugin {extra} is not one of them: leave it out")
    for g, _, _ in named:
        load_plugin(g)
    return recorded


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                plugins: Sequence[str] = ()) -> C.RunConfig:
    """Load a YAML config for its learner: plugins, budget preset, then the ``--set`` overrides.

    ``plugins`` (the command line's ``--plugin``) are the only code imported. A ``plugins:`` list in
    the YAML (or in a file it includes) says which plugins the config needs; each must be named in
    ``plugins`` too (a YAML may come from someone else: it never imports code by itself). The run
    records each plugin's path (or module) and the sha256 of its file.

    Raises:
        ConfigError: unknown learner, key or budget, wrong type, invalid value, unreadable file, a
            plugin the YAML lists but the command line does not name.
    """
    raw = C.read_yaml(path) if path is not None else {}
    label = str(path) if path is not None else "<defaults>"
    listed = _strings(raw.pop("plugins", None), "plugins", label)
    listed_digests = _strings(raw.pop("plugin_sha256", None), "plugin_sha256", label)
    listed_digests += [""] * (len(listed) - len(listed_digests))
    base = Path(path).parent if path is not None else Path(".")
    named = [(canonical_plugin(p), plugin_digest(p)) for p in plugins]  # hashed, not imported yet
    for p, digest in zip(listed, listed_digests):
        # plugin files listed in a YAML are relative to that file; --plugin ones to the working directory
        spec = str((base / p).expanduser().resolve()) if p.endswith(".py") else p
        if not any(n == spec or (digest and d == digest) for n, d in named):
            raise ConfigError(f"{label} lists plugin {_shown(spec)}; streamvae imports code only from what the "
                              f"command line names: add --plugin {_shown(spec)}")
    specs = [load_plugin(p) for p in plugins]
    cfg = C.resolve(raw, overrides, get_learner, label=label)
    check_datasets(cfg.stream)  # names only: nothing is read
    order = list(dict.fromkeys(specs))
    digest_of = dict(zip((n for n, _ in named), (d for _, d in named)))
    cfg = C._apply(cfg, "plugins", order)
    return C._apply(cfg, "plugin_sha256", [digest_of.get(s, "") for s in order])


def from_dict(d: dict, overrides: list[str] | tuple[str, ...] = ()) -> C.RunConfig:
    """Rebuild a resolved config (``to_dict`` output: a checkpoint's or a run's ``config.yaml``).

    Pure data: the ``plugins`` it names are not imported (:func:`check_plugins` does that, for
    plugins the user names); a learner from a plugin that is not loaded is a ConfigError."""
    d = dict(d)
    d.pop("budgets", None)
    budget = d.get("budget", "paper")  # already applied: do not apply a preset again
    cfg = C.resolve({**d, "budget": "paper"}, overrides, get_learner, label="<resolved config>")
    return C._apply(cfg, "budget", budget)


MAX_CONFIG_BYTES = 1 << 20  # a run's config.yaml larger than this is refused


def load_resolved(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> C.RunConfig:
    """Load a run directory's resolved ``config.yaml`` (budget already applied) plus overrides: a
    regular file (never a link out of the run directory, a FIFO or a device), read as data."""
    from .utils import read_regular

    try:
        raw = yaml.safe_load(read_regular(path, MAX_CONFIG_BYTES, follow_symlinks=False).decode("utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: is this a streamvae run directory?") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a readable config: not UTF-8 text") from None
    except ValueError as e:  # read_regular's reason: a link, a FIFO, a device, too large
        raise ConfigError(f"{path} {e}; a run's config.yaml must be a regular file") from None
    except (yaml.YAMLError, OSError, RecursionError) as e:
        raise ConfigError(f"{path} is not a readable config: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections")
    return from_dict(raw, overrides)


__all__ = ["register_learner", "get_learner", "learner_names", "load_plugin", "load_config", "from_dict",
           "load_resolved", "default_config", "check_plugins", "plugin_digest", "canonical_plugin"]
