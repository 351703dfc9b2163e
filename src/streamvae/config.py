"""Run configuration: frozen dataclasses, resolved from YAML, with checked dotted overrides.

A config file is sectioned YAML (``stream``, ``model``, ``memory``, ``learner``, ``eval`` plus
top-level run fields) with an optional ``budgets`` section that maps a budget name (``paper``,
``fast``, ``demo``, ``smoke``) to dotted overrides, and an optional ``include`` of shared files.
The ``learner``, ``memory`` and ``model`` sections are the dataclasses the learner declares next to
its ``observe`` (``config_class``, ``memory_class``, ``model_kind``), so a run's ``config.yaml``
holds only the fields that apply to it. Resolution order, last one wins:

    the learner's dataclass defaults -> YAML file -> budgets[<budget>] -> --set overrides

This module knows no learner: ``streamvae.registry.load_config`` looks the learner up and calls
:func:`resolve`. Every number that changes behaviour is a field, with its unit in the trailing comment.

    cfg = load_config("configs/split_fashion/reservoir.yaml", ["budget=smoke", "memory.capacity=500"])
"""
from __future__ import annotations

import ast
import math
import re
import typing
import warnings
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import ConfigError

# ---------------------------------------------------------------------------------------------
# sections


@dataclass(frozen=True)
class StreamConfig:
    datasets: tuple[str, ...] = ("fashion",)  # concatenated in this order (MNIST then Fashion, ...)
    order: str = "class-order"  # class-order | pairs (five two-class tasks per dataset)
    shuffle_within_task: bool = False  # pairs only: shuffle the images inside each task
    tasks: str = "pairs"  # how the *evaluator* groups classes: pairs (label // 2) | dataset
    batch_size: int = 64  # images per arrival; the remainder at the end is dropped
    samples_per_class: int = 0  # 0 = all training images; else the first N of each class
    max_batches: int = 0  # 0 = the whole stream; else stop after this many arrivals
    binarize: bool = True  # Bernoulli-binarise images (dynamic for training, once for the test set)

    def validate(self) -> None:
        check_choice("stream.order", self.order, ("class-order", "pairs"))
        check_choice("stream.tasks", self.tasks, ("pairs", "dataset"))
        check_positive("stream.batch_size", self.batch_size)
        check_nonnegative("stream.samples_per_class", self.samples_per_class)
        check_nonnegative("stream.max_batches", self.max_batches)
        if not self.datasets:
            raise ConfigError("stream.datasets needs at least one dataset")
        # the names themselves are checked where streams are built (streamvae.data.streams.check_datasets)


@dataclass(frozen=True)
class ModelConfig:
    """The Burda et al. MLP VAE (learners whose ``model_kind`` is ``vae`` or ``mixture``)."""

    name: str = "mlp-vae"  # the Burda et al. MLP VAE (OCM spec section 3.1)
    encoder_hidden: tuple[int, ...] = (200, 200)  # units per hidden layer
    decoder_hidden: tuple[int, ...] = (200, 200)  # units per hidden layer
    encoder_activations: tuple[str, ...] = ("tanh", "tanh")  # one per encoder hidden layer
    decoder_activations: tuple[str, ...] = ("tanh", "relu")  # released OCM code: tanh then ReLU
    latent: int = 50  # latent dimensions
    likelihood: str = "bernoulli"  # bernoulli | gaussian
    gaussian_std: float = 0.7071067811865476  # gaussian likelihood: fixed std per pixel
    min_std: float = 1e-6  # added to the encoder std (released code: sigma + 1e-6)
    init: str = "glorot"  # weights: glorot (released TF1 Dense: Glorot-uniform, zero bias) | torch (nn.Linear default)

    def validate(self) -> None:
        check_choice("model.likelihood", self.likelihood, ("bernoulli", "gaussian"))
        check_choice("model.init", self.init, ("glorot", "torch"))
        check_positive("model.latent", self.latent)
        if not self.encoder_hidden or not self.decoder_hidden:
            raise ConfigError("model.encoder_hidden and model.decoder_hidden need at least one layer each")
        for key, units in (("model.encoder_hidden", self.encoder_hidden), ("model.decoder_hidden", self.decoder_hidden)):
            for u in units:
                check_positive(key, u)
        if len(self.encoder_activations) != len(self.encoder_hidden):
            raise ConfigError("model.encoder_activations needs one activation per model.encoder_hidden layer")
        if len(self.decoder_activations) != len(self.decoder_hidden):
            raise ConfigError("model.decoder_activations needs one activation per model.decoder_hidden layer")
        for a in self.encoder_activations + self.decoder_activations:
            check_choice("model.*_activations", a, ACTIVATIONS)
        check_positive("model.gaussian_std", self.gaussian_std)
        check_nonnegative("model.min_std", self.min_std)


@dataclass(frozen=True)
class VAEGANConfig:
    """DEMC's encoder + generator + WGAN critic (learners whose ``model_kind`` is ``vaegan``);
    the image shape comes from the stream."""

    name: str = "vaegan"
    latent: int = 50  # latent dimensions
    width: float = 1.0  # multiplier on every hidden width (1.0 = the released networks)
    init_std: float = 0.02  # std of the N(0, s) weight init (DCGAN ops.py); 0 = PyTorch defaults
    generation_prior: str = "uniform"  # z for sampling: uniform U(-1,1) (released) | normal N(0,I)

    def validate(self) -> None:
        check_positive("model.latent", self.latent)
        check_positive("model.width", self.width)
        check_nonnegative("model.init_std", self.init_std)
        check_choice("model.generation_prior", self.generation_prior, ("uniform", "normal"))


@dataclass(frozen=True)
class CNDPMModelConfig:
    """CN-DPM's experts (released ``mlp_sharing_vae``; learners whose ``model_kind`` is ``cndpm``):
    Bernoulli MLP VAEs, PyTorch's default initialisation (as released)."""

    name: str = "cndpm-mlp"
    hidden: int = 64  # vae_nf_base: units of the first expert's layers and of every decoder
    ext: int = 16  # vae_nf_ext: units of a later expert's own encoder column
    latent: int = 16  # z_dim
    # |log sigma^2| of q(z|x) is clamped here (0 = no limit, released). Inert below it; the released
    # protocol on Split Fashion reaches ~110 at expert 38's initialisation and goes NaN (docs/peers.md)
    logvar_limit: float = 80.0

    def validate(self) -> None:
        for key in ("hidden", "ext", "latent"):
            check_positive(f"model.{key}", getattr(self, key))
        if not (math.isfinite(self.logvar_limit) and self.logvar_limit >= 0):
            raise ConfigError(f"model.logvar_limit must be a finite number >= 0 (0 = no limit), got {self.logvar_limit}")


# the model section's dataclass for each ``model_kind`` a learner may declare
MODEL_CONFIGS: dict[str, type[ModelConfig] | type[VAEGANConfig] | type[CNDPMModelConfig]] = {
    "vae": ModelConfig, "mixture": ModelConfig, "limix": ModelConfig, "vaegan": VAEGANConfig,
    "cndpm": CNDPMModelConfig}
ACTIVATIONS = ("tanh", "relu", "softplus", "elu")  # what model.*_activations accept


@dataclass(frozen=True)
class LearnerConfig:
    """Base of every learner's own config dataclass (declared next to its ``observe``)."""

    name: str = ""  # the learner: a built-in (streamvae list) or one registered by a --plugin


@dataclass(frozen=True)
class MemoryConfig:
    """Base of a learner's memory section; learners without a memory keep this empty one."""

    def images_held(self) -> int | None:
        """The most images the memories hold besides the incoming batch (for the planned steps and the
        no-step check): none for the empty section; ``None`` (unknown) for one with fields, unless it says."""
        return None if fields(self) else 0


@dataclass(frozen=True)
class EvalConfig:
    iw_samples: int = 1000  # k of the importance-weighted bound ll_iw{k}
    chunk_rows: int = 32768  # k * images evaluated at once (bounds memory)
    every: int = 0  # evaluate every N arrivals (0: at task boundaries seen by the evaluator only)
    points: int = 5  # when every == 0: number of evenly spaced evaluation points along the stream
    test_size: int = 0  # 0 = the whole test set; else a seeded random subset of this size
    curve_test_size: int = 2000  # test images used at intermediate evaluation points (0 = test_size)
    curve_iw_samples: int = 100  # k used at intermediate evaluation points
    binarize_seed: int = 20220531  # the test set is binarised once with this seed
    grid: int = 64  # images in each sample / reconstruction grid
    probe: bool = True  # linear-probe and kNN accuracy on encoder means at every evaluation point
    probe_train_size: int = 5000  # labelled training images the probes are fitted on (seeded subset; 0 = all)
    probe_test_size: int = 0  # test images the probes are scored on (0 = the likelihood's test subset)
    probe_knn: int = 5  # neighbours of the kNN probe
    probe_features: str = "selected"  # a mixture's representation: selected (best-ELBO component's mean) | concat (all K means)
    elbo_mixture_samples: int = 0  # 0 = off; else also CN-DPM's estimator: log sum_j pi_j exp(ELBO_j(x)), ELBO with this many z draws (released: 16), nats and bits/dim
    # FID / IS with a named feature network (evaluation spec section 3)
    fid: bool = False  # add fid_classifier_* / is_classifier_* (generations and reconstructions)
    fid_curve: bool = False  # also at intermediate evaluation points (else only at the final one)
    fid_generated: int = 5000  # generated images scored
    fid_reference: int = 5000  # random test images (tasks seen so far) as the reference; also reconstructed
    fid_classifier_epochs: int = 3  # epochs of the feature classifier (trained once, cached on disk)
    fid_classifier_train_size: int = 0  # 0 = the whole training split; else a seeded random subset
    fid_classifier_width: int = 16  # channels of its first conv layer (the second has twice as many)
    fid_classifier_seed: int = 0  # seeds its initialisation and data order (part of the cache key)
    is_splits: int = 10  # the Inception Score is the mean over this many splits
    fid_inception: str = ""  # optional: a TorchScript FID Inception-v3 (pool3, 2048-d) file; empty = off
    fid_inception_sha256: str = ""  # hex sha256 the fid_inception file must have (empty: unchecked, only recorded)

    def validate(self) -> None:
        for key in ("iw_samples", "chunk_rows", "points", "grid", "probe_knn", "curve_iw_samples", "fid_generated",
                    "fid_reference", "fid_classifier_epochs", "fid_classifier_width", "is_splits"):
            check_positive(f"eval.{key}", getattr(self, key))
        for key in ("every", "test_size", "curve_test_size", "probe_train_size", "probe_test_size", "elbo_mixture_samples",
                    "fid_classifier_train_size", "fid_classifier_seed", "binarize_seed"):
            check_nonnegative(f"eval.{key}", getattr(self, key))
        for key in ("fid_classifier_seed", "binarize_seed"):
            check_seed(f"eval.{key}", getattr(self, key))
        check_choice("eval.probe_features", self.probe_features, ("selected", "concat"))
        if self.grid > 4096:
            raise ConfigError(f"eval.grid={self.grid}: at most 4096 images in a grid")
        if self.fid_inception_sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", self.fid_inception_sha256):
            raise ConfigError(f"eval.fid_inception_sha256 must be 64 hex digits, got {self.fid_inception_sha256!r}")


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"  # run directory name under out_dir unless --out is given
    seed: int = 0  # seeds every generator of the run
    budget: str = "paper"  # paper | hour | fast | demo | smoke (presets from the config's budgets section)
    out_dir: str = "runs"  # parent folder of run directories
    checkpoint_every: int = 100  # arrivals between checkpoints (0: only at the end)
    threads: int = 0  # torch intra-op threads (0: follow the cores other processes leave free, streamvae.threads)
    kernels: str = "auto"  # auto | native | torch: the native fast path (auto: when a C compiler works)
    precision: str = "fp32"  # fp32 | bf16 | auto: the training step's matrix products (bf16: fp32 master weights; evaluation stays fp32; auto: bf16 where it measures faster)
    device: str = "auto"  # auto | cpu | cuda: model, memories and evaluation (auto: CUDA when available)
    progress: bool = True  # show a progress bar
    tensorboard: bool = False  # also log scalars and image grids to run_dir/tensorboard (pip install tensorboard)
    plugins: tuple[str, ...] = ()  # files or modules that register learners (see --plugin); resolved to absolute paths
    plugin_sha256: tuple[str, ...] = ()  # hex sha256 of each plugin's file, in the order of plugins (recorded by the run)
    stream: StreamConfig = field(default_factory=StreamConfig)
    # the next three sections are the dataclasses the learner declares (resolved by streamvae.registry)
    model: Any = field(default_factory=ModelConfig)  # ModelConfig (vae, mixture) | VAEGANConfig (vaegan)
    memory: Any = field(default_factory=MemoryConfig)  # the learner's memory_class
    learner: Any = field(default_factory=LearnerConfig)  # the learner's config_class
    eval: EvalConfig = field(default_factory=EvalConfig)


BUDGET_NAMES = ("paper", "hour", "fast", "demo", "smoke")
SECTIONS = ("stream", "model", "memory", "learner", "eval")

# ---------------------------------------------------------------------------------------------
# checks shared by the sections' validate() methods


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(choices)}")


def check_positive(key: str, value: float) -> None:
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{key} must be positive (a finite number > 0), got {value}")


def check_seed(key: str, value: int) -> None:
    if not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{key} must be between 0 and {MAX_SEED}, got {value}")


def check_unit_interval(key: str, value: float) -> None:
    """``value`` in [0, 1) (Adam's betas, RMSprop's alpha)."""
    if not 0 <= value < 1:
        raise ConfigError(f"{key} must be in [0, 1), got {value}")


def check_nonnegative(key: str, value: float) -> None:
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{key} must be zero or positive (a finite number >= 0), got {value}")


# ---------------------------------------------------------------------------------------------
# helpers


def to_dict(cfg: Any) -> dict:
    """Nested plain dict (tuples become lists) for YAML/JSON; empty sections are left out."""
    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if is_dataclass(v):
            v = to_dict(v)
            if not v:
                continue
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as ``{"a.b.c": value}`` (tuples become lists): how configs are compared."""
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def valid_keys(cfg: Any = None, prefix: str = "") -> list[str]:
    """All dotted keys of a config (an instance: its sections are the learner's own), e.g. ``learner.lr``."""
    cfg = RunConfig() if cfg is None else cfg
    keys = []
    for f in fields(cfg):
        v = getattr(cfg, f.name) if not isinstance(cfg, type) else None
        if v is not None and is_dataclass(v):
            keys += valid_keys(v, prefix + f.name + ".")
        else:
            keys.append(prefix + f.name)
    return keys


def field_comments(cls: type) -> dict[str, str]:
    """``{field: trailing comment}`` read from the dataclass source (for ``streamvae config show``)."""
    import inspect
    import re

    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", src, re.M):
            out[m.group(1)] = m.group(2).strip()
    return out


_MAX_OVERRIDE_LEN = 10_000  # characters in one --set value
_MAX_OVERRIDE_NESTING = 16  # bracket levels in one --set value (a list of lists is 2)
_MAX_OVERRIDE_DIGITS = 100  # digits in a run of digits in one --set value
MAX_SEED = 2**32 - 1  # seeds (run, binarisation, classifier): torch and numpy take them with room for offsets


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages stay one readable line)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Check ``value`` against the annotated type; convert lists to tuples, ints to floats."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(typ)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {inner.__name__}, got {_short(value)}")
        return tuple(_coerce(v, inner, key) for v in value)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {_short(value)}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {_short(value)}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond the float range
                number = float("inf")
            if not math.isfinite(number):  # 1e999, .inf, .nan: never a valid setting
                raise ConfigError(f"{key}: {_short(value)} is not a finite number")
            return number
        raise ConfigError(f"{key}: expected a number, got {_short(value)}")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {_short(value)}")
    raise ConfigError(f"{key}: unsupported type {typ}")  # pragma: no cover


def _apply(cfg: Any, key: str, value: Any, full_key: str | None = None, root: Any = None) -> Any:
    """Return ``cfg`` with the dotted ``key`` set to ``value`` (type-checked)."""
    full_key = full_key or key
    root = cfg if root is None else root
    head, _, rest = key.partition(".")
    names = {f.name for f in fields(cfg)}
    if head not in names:
        section = full_key[: len(full_key) - len(key)]  # e.g. "memory." when the key is inside a section
        keys = [k for k in valid_keys(root) if k.startswith(section)] if section else valid_keys(root)
        learner = getattr(getattr(root, "learner", None), "name", "")
        where = f" for learner {learner}" if learner and section in ("learner.", "memory.", "model.") else ""
        raise ConfigError(f"unknown config key '{full_key}'{where}. Valid keys: {', '.join(keys) or '(none)'}")
    current = getattr(cfg, head)
    if is_dataclass(current):
        if not rest:
            if not isinstance(value, dict):
                raise ConfigError(f"{full_key}: expected a mapping of {type(current).__name__} keys")
            for k, v in value.items():
                current = _apply(current, str(k), v, f"{full_key}.{k}", root)
            return replace(cfg, **{head: current})
        return replace(cfg, **{head: _apply(current, rest, value, full_key, root)})
    if rest:
        raise ConfigError(f"unknown config key '{full_key}': '{head}' is not a section")
    typ = _field_types(type(cfg))[head]
    return replace(cfg, **{head: _coerce(value, typ, full_key)})


def parse_override(text: str) -> tuple[str, Any]:
    """``'a.b=3'`` -> ``('a.b', 3)``; the value is a Python/YAML literal or a bare string."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. learner.lr=1e-3)")
    key, raw = text.split("=", 1)
    if len(raw) > _MAX_OVERRIDE_LEN:
        raise ConfigError(f"override '{key}': the value is longer than {_MAX_OVERRIDE_LEN} characters")
    depth = _nesting(raw)
    if depth > _MAX_OVERRIDE_NESTING:
        raise ConfigError(f"override '{key}': brackets nested {depth} deep (at most {_MAX_OVERRIDE_NESTING})")
    digits = re.search(r"\d{%d,}" % (_MAX_OVERRIDE_DIGITS + 1), raw)
    if digits:
        raise ConfigError(f"override '{key}': a number with {len(digits.group())} digits "
                          f"(at most {_MAX_OVERRIDE_DIGITS})")
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" in a quoted value: not the user's concern
            warnings.simplefilter("ignore")
            value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError, OverflowError):
        try:
            value = yaml.safe_load(raw)
        except (yaml.YAMLError, RecursionError, ValueError, OverflowError, TypeError):
            value = raw
    return key.strip(), value


def _nesting(text: str) -> int:
    """The deepest bracket nesting of ``text`` (``[``, ``{``, ``(``; quotes are not parsed)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]})":
            depth = max(0, depth - 1)
    return deepest


MAX_INCLUDE_DEPTH = 16  # include: chains deeper than this are refused (the shipped configs use 1)
MAX_CONFIG_BYTES = 1 << 20  # a config file (or an included one) larger than this is refused


def read_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A config file as a dict; ``include: other.yaml`` (or a list of files; relative to the file) is
    merged underneath, so presets shared by many configs (budgets) are written once.

    Only regular files of at most :data:`MAX_CONFIG_BYTES` are read (never a FIFO or a device); an
    include cycle is refused naming its files, and so is a chain deeper than :data:`MAX_INCLUDE_DEPTH`.
    """
    from .utils import read_regular

    path = Path(path)
    try:
        text = read_regular(path, MAX_CONFIG_BYTES).decode("utf-8")
        raw = yaml.safe_load(text) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {path}: not UTF-8 text") from None
    except ValueError as e:  # read_regular: a directory, a FIFO, a device, too large
        raise ConfigError(f"{path} {e}; a config must be a YAML file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    except (OSError, RecursionError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level")
    includes = raw.pop("include", None)
    if includes is None:
        return raw
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise ConfigError(f"{path}: include must be a file name or a list of file names, got {_short(includes)}")
    chain = (*_chain, path.resolve())
    if len(chain) > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: includes nested more than {MAX_INCLUDE_DEPTH} deep (starting at {chain[0].name})")
    merged: dict = {}
    for inc in includes:
        target = path.parent / inc
        if target.resolve() in chain:
            cycle = " -> ".join(p.name for p in chain[chain.index(target.resolve()):]) + f" -> {target.name}"
            raise ConfigError(f"{path}: include cycle ({cycle}); a file cannot include itself, directly or not")
        merged = _deep_merge(merged, read_yaml(target, chain))
    return _deep_merge(merged, raw)


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _budget_overrides(budgets: dict, budget: str, path: str) -> dict:
    if budget not in budgets:
        valid = sorted(set(budgets) | {"paper"})
        raise ConfigError(f"budget '{budget}' is not defined in {path}; valid budgets: {', '.join(valid)}")
    table = budgets[budget] or {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: budgets.{budget} must be a mapping of dotted keys to values")
    return table


# A learner class as the resolver sees it: it declares the dataclasses of its sections.
LearnerLookup = Callable[[str], Any]  # name -> class with config_class, memory_class, model_kind


def skeleton(learner_cls: Any, name: str) -> RunConfig:
    """Defaults for a run of ``learner_cls``: its own learner, memory and model dataclasses."""
    model_cls = MODEL_CONFIGS[learner_cls.model_kind]
    return RunConfig(learner=learner_cls.config_class(name=name), memory=learner_cls.memory_class(),
                     model=model_cls())


def _learner_name(raw: dict, parsed: list[tuple[str, Any]], default: str) -> str:
    name = (raw.get("learner") or {}).get("name", default) if isinstance(raw.get("learner"), dict) else default
    for k, v in parsed:
        if k == "learner.name":
            name = v
        elif k == "learner" and isinstance(v, dict) and "name" in v:
            name = v["name"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"learner.name must be a learner's name (a string), got {name!r}")
    return name


def resolve(raw: dict, overrides: list[str] | tuple[str, ...], lookup: LearnerLookup, label: str = "<defaults>",
            default_learner: str = "reservoir") -> RunConfig:
    """Resolve a config dict: the learner's dataclasses, then YAML -> budget preset -> ``--set``.

    Raises:
        ConfigError: unknown learner or key, wrong type, unknown budget, invalid value.
    """
    raw = dict(raw)
    raw.pop("include", None)
    budgets = raw.pop("budgets", {}) or {}
    if not isinstance(budgets, dict):
        raise ConfigError(f"{label}: budgets must be a mapping of budget names to overrides")
    parsed = [parse_override(o) for o in overrides]
    name = _learner_name(raw, parsed, default_learner)
    cfg = skeleton(lookup(name), name)
    if isinstance(raw.get("learner"), dict):  # the learner chosen by --set wins over the file's from the start
        raw["learner"] = {**raw["learner"], "name": name}
    for k, v in raw.items():
        cfg = _apply(cfg, str(k), v)
    for k, v in parsed:  # the budget may itself be chosen with --set budget=NAME
        if k == "budget":
            cfg = _apply(cfg, k, v)
    if cfg.budget not in BUDGET_NAMES:
        raise ConfigError(f"budget '{cfg.budget}' is unknown; valid budgets: {', '.join(BUDGET_NAMES)}")
    if cfg.budget != "paper" or "paper" in budgets:
        for k, v in _budget_overrides(budgets, cfg.budget, label).items():
            cfg = _apply(cfg, str(k), v)
    for k, v in parsed:
        cfg = _apply(cfg, k, v)
    validate(cfg, lookup(cfg.learner.name))
    return cfg


def validate(cfg: RunConfig, learner_cls: Any) -> None:
    """Value checks beyond types: every section's own ``validate()``, and the model the learner needs."""
    check_choice("kernels", cfg.kernels, ("auto", "native", "torch"))
    check_choice("precision", cfg.precision, ("fp32", "bf16", "auto"))
    check_choice("device", cfg.device, ("auto", "cpu", "cuda"))  # cuda without CUDA: refused when the run starts
    check_nonnegative("checkpoint_every", cfg.checkpoint_every)
    check_nonnegative("threads", cfg.threads)
    if cfg.threads > 4096:
        raise ConfigError(f"threads={cfg.threads} is more than 4096; use 0 to follow the free cores")
    check_seed("seed", cfg.seed)
    if not cfg.name or cfg.name in (".", "..") or any(c in cfg.name for c in "/\\\0") or not cfg.name.isprintable():
        raise ConfigError(f"name={_short(cfg.name)} must be a plain folder name (no '/', no newline or other "
                          "control character, not empty)")
    for digest in cfg.plugin_sha256:
        if digest and not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ConfigError(f"plugin_sha256 holds {_short(digest)}; each entry is 64 lowercase hex digits")
    needs = MODEL_CONFIGS[learner_cls.model_kind]
    if not isinstance(cfg.model, needs) or cfg.model.name != needs().name:
        raise ConfigError(f"learner.name={cfg.learner.name} needs model.name={needs().name}, got {cfg.model.name}")
    for section in SECTIONS:
        check = getattr(getattr(cfg, section), "validate", None)
        if check is not None:
            check()


__all__ = [
    "RunConfig", "StreamConfig", "ModelConfig", "VAEGANConfig", "CNDPMModelConfig", "LearnerConfig", "MemoryConfig", "EvalConfig",
    "resolve", "skeleton", "to_dict", "to_yaml", "valid_keys", "parse_override", "read_yaml", "check_choice",
    "check_positive", "check_nonnegative", "field_comments",
]
