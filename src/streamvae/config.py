"""Run configuration: frozen dataclasses, loaded from YAML, with checked dotted overrides.

A config file is sectioned YAML (``stream``, ``model``, ``memory``, ``learner``, ``eval``, ``run``
keys at the top level) plus an optional ``budgets`` section that maps a budget name (``paper``,
``fast``, ``demo``, ``smoke``) to dotted overrides. Resolution order, last one wins:

    dataclass defaults -> YAML file -> budgets[<budget>] -> --set overrides

Every number that changes behaviour is a field here, with its unit in the trailing comment.

    cfg = load_config("configs/split_fashion/reservoir.yaml", ["budget=smoke", "memory.capacity=500"])
"""
from __future__ import annotations

import ast
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class ModelConfig:
    name: str = "mlp-vae"  # the Burda et al. MLP VAE (OCM spec section 3.1)
    encoder_hidden: tuple[int, ...] = (200, 200)  # units per hidden layer
    decoder_hidden: tuple[int, ...] = (200, 200)  # units per hidden layer
    encoder_activations: tuple[str, ...] = ("tanh", "tanh")  # one per encoder hidden layer
    decoder_activations: tuple[str, ...] = ("tanh", "relu")  # released OCM code: tanh then ReLU
    latent: int = 50  # latent dimensions
    likelihood: str = "bernoulli"  # bernoulli | gaussian
    gaussian_std: float = 0.7071067811865476  # gaussian likelihood: fixed std per pixel
    min_std: float = 1e-6  # added to the encoder std (released code: sigma + 1e-6)
    init: str = "glorot"  # mlp-vae weights: glorot (released TF1 Dense: Glorot-uniform, zero bias) | torch (nn.Linear default)
    # vaegan (DEMC's encoder + generator + WGAN critic; the image shape comes from the stream)
    width: float = 1.0  # vaegan: multiplier on every hidden width (1.0 = the released networks)
    init_std: float = 0.02  # vaegan: std of the N(0, s) weight init (DCGAN ops.py); 0 = PyTorch defaults
    generation_prior: str = "uniform"  # vaegan: z for sampling: uniform U(-1,1) (released) | normal N(0,I)


@dataclass(frozen=True)
class MemoryConfig:
    capacity: int = 3000  # reservoir: stored images
    # OCM (short-term / long-term memory); used by the ocm and dynamic-ocm learners
    stm_capacity: int = 512  # a selection event runs when the STM holds more than this
    ltm_capacity: int = 2560  # additions to the LTM stop at this size; nothing is ever evicted
    kernel: str = "laplacian-l2"  # laplacian-l2 (released: exp(-|d|/(sqrt2 sigma))) | squared-exp (paper)
    sigma: float = 10.0  # kernel width
    lambda1_first: float = 1.0  # selection threshold at the first event
    lambda1: float = 0.35  # selection threshold afterwards
    max_per_event: int = 14  # at most this many STM samples move to the LTM per event
    select: str = "similar"  # similar (released: highest scores above lambda1) | diverse (lowest, below)
    # DEMC (temporary memory + memory clusters); used by the demc learner
    temp_capacity: int = 1000  # images kept in the temporary memory after training (1064 while training)
    temp_policy: str = "truncate"  # truncate (released: append, then keep a random capacity) | reservoir
    duplicate_first_batch: bool = False  # released quirk: the first batch enters the temporary memory twice
    cluster_size: int = 64  # images per memory cluster
    cluster_select: str = "low-error"  # temporary images forming a cluster: low-error (released) | high-error | random
    novelty_threshold: float = 5.0  # lambda: expand when the novelty exceeds it (nats: KL per latent dim, mean)
    novelty_agg: str = "max"  # over clusters: max (released: far from at least one) | min (paper: far from all)
    novelty_kl: str = "one-sided"  # one-sided KL(cluster || batch) (released "JS") | symmetric (mean of both KLs)
    refresh_stats: bool = False  # re-encode every cluster's images at each novelty check (released: never)
    novelty_bn: str = "eval"  # BatchNorm for descriptors: eval (running stats) | batch (released: the batch's own)
    max_clusters: int = 0  # 0 = unbounded (released); else no expansion once this many clusters exist


@dataclass(frozen=True)
class LearnerConfig:
    name: str = "reservoir"  # finetune | reservoir | iid | ocm | dynamic-ocm | demc | {reservoir,finetune}-vaegan
    epochs_per_arrival: int = 100  # passes over (memory + incoming batch) after each arrival
    minibatch: int = 64  # images per Adam step; the remainder of a pass is dropped
    elbo_samples: int = 50  # Monte-Carlo samples of z per image in the training objective
    objective: str = "elbo"  # elbo (mean over samples) | iwae (logmeanexp over samples)
    lr: float = 1e-4  # Adam learning rate
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    # dynamic-ocm
    expansion_threshold: float = 10.0  # lambda2, nats: expand when |R - R_last| exceeds it
    max_components: int = 10  # K_max
    expansion_samples: int = 1000  # k of the importance-weighted bound used for R
    expansion_every: int = 1  # test for expansion every N selection events (cross-domain: 31)
    r_last_update: str = "every-event"  # every-event (released) | on-expansion (supplement)
    # demc, reservoir-vaegan (VAE-GAN updates; step 2's Adam uses lr, beta1, beta2 above)
    updates_per_arrival: int = 300  # updates after each arrival (a skipped partial batch counts as one)
    gan_lr: float = 1e-4  # RMSProp learning rate of the critic and of generator+encoder (step 1)
    rmsprop_alpha: float = 0.9  # RMSProp decay (TF1 default)
    rmsprop_eps: float = 1e-10  # RMSProp epsilon (TF1 default)
    kl_weight: float = 0.1  # weight of the KL in L_vae (released KLThreshold)
    vae_weight: float = 1.0  # weight of L_vae inside the generator loss L_g
    gp_weight: float = 10.0  # weight of the gradient penalty in the critic loss
    gp_legacy: bool = False  # released penalty: one eps per batch, norm over the image height only (a bug)
    inference_step: bool = True  # step 2: the encoder alone on L_inf = L_vae (released SVHN/CIFAR: absent)
    step_order: str = "sequential"  # sequential (paper: step 2 after step 1) | simultaneous (released: same snapshot)
    augment: bool = True  # augment every training batch (released: Keras ImageDataGenerator)
    aug_rotation: float = 20.0  # degrees: rotation drawn from U(-r, r)
    aug_shift: float = 0.1  # fraction of the width/height: shifts drawn from U(-s, s)
    aug_hflip: bool = True  # flip horizontally with probability 1/2 (released: even for digits)


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


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"  # run directory name under out_dir unless --out is given
    seed: int = 0  # seeds every generator of the run
    budget: str = "paper"  # paper | fast | demo | smoke (presets from the config's budgets section)
    out_dir: str = "runs"  # parent folder of run directories
    checkpoint_every: int = 100  # arrivals between checkpoints (0: only at the end)
    threads: int = 0  # torch intra-op threads (0: leave torch's default)
    kernels: str = "auto"  # auto | native | torch: the C kernels of streamvae.kernels (auto: when a compiler works)
    progress: bool = True  # show a progress bar
    tensorboard: bool = False  # also log scalars and image grids to run_dir/tensorboard (pip install tensorboard)
    stream: StreamConfig = field(default_factory=StreamConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


BUDGET_NAMES = ("paper", "fast", "demo", "smoke")

# ---------------------------------------------------------------------------------------------
# helpers


def to_dict(cfg: Any) -> dict:
    """Nested plain dict (tuples become lists) for YAML/JSON."""
    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def valid_keys(cls: type = RunConfig, prefix: str = "") -> list[str]:
    """All dotted keys of a config class, e.g. ``learner.lr``."""
    keys = []
    hints = _field_types(cls)
    for f in fields(cls):
        t = hints[f.name]
        if isinstance(t, type) and is_dataclass(t):
            keys += valid_keys(t, prefix + f.name + ".")
        else:
            keys.append(prefix + f.name)
    return keys


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Check ``value`` against the annotated type; convert lists to tuples, ints to floats."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(typ)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {inner.__name__}, got {value!r}")
        return tuple(_coerce(v, inner, key) for v in value)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {typ}")  # pragma: no cover


def _apply(cfg: Any, key: str, value: Any, full_key: str | None = None) -> Any:
    """Return ``cfg`` with the dotted ``key`` set to ``value`` (type-checked)."""
    full_key = full_key or key
    head, _, rest = key.partition(".")
    names = {f.name for f in fields(cfg)}
    if head not in names:
        raise ConfigError(
            f"unknown config key '{full_key}'. Valid keys: {', '.join(valid_keys(RunConfig))}"
        )
    hints = _field_types(type(cfg))
    typ = hints[head]
    current = getattr(cfg, head)
    if is_dataclass(current):
        if not rest:
            if not isinstance(value, dict):
                raise ConfigError(f"{full_key}: expected a mapping of {type(current).__name__} keys")
            for k, v in value.items():
                current = _apply(current, str(k), v, f"{full_key}.{k}")
            return replace(cfg, **{head: current})
        return replace(cfg, **{head: _apply(current, rest, value, full_key)})
    if rest:
        raise ConfigError(f"unknown config key '{full_key}': '{head}' is not a section")
    return replace(cfg, **{head: _coerce(value, typ, full_key)})


def parse_override(text: str) -> tuple[str, Any]:
    """``'a.b=3'`` -> ``('a.b', 3)``; the value is a Python/YAML literal or a bare string."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. learner.lr=1e-3)")
    key, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
    return key.strip(), value


def _budget_overrides(budgets: dict, budget: str, path: str) -> dict:
    if budget not in budgets:
        valid = sorted(set(budgets) | {"paper"})
        raise ConfigError(f"budget '{budget}' is not defined in {path}; valid budgets: {', '.join(valid)}")
    table = budgets[budget] or {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: budgets.{budget} must be a mapping of dotted keys to values")
    return table


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a YAML config, apply its budget preset and the ``--set`` overrides.

    Raises:
        ConfigError: unknown key, wrong type, unknown budget or unreadable file.
    """
    raw: dict = {}
    label = "<defaults>"
    if path is not None:
        label = str(path)
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of config sections at the top level")
    raw = dict(raw)
    budgets = raw.pop("budgets", {}) or {}
    parsed = [parse_override(o) for o in overrides]

    cfg = RunConfig()
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
    validate(cfg)
    return cfg


_CHOICES = {
    "kernels": ("auto", "native", "torch"),
    "stream.order": ("class-order", "pairs"),
    "stream.tasks": ("pairs", "dataset"),
    "model.name": ("mlp-vae", "vaegan"),
    "model.generation_prior": ("uniform", "normal"),
    "model.init": ("glorot", "torch"),
    "memory.temp_policy": ("truncate", "reservoir"),
    "memory.cluster_select": ("low-error", "high-error", "random"),
    "memory.novelty_agg": ("max", "min"),
    "memory.novelty_kl": ("one-sided", "symmetric"),
    "memory.novelty_bn": ("eval", "batch"),
    "learner.step_order": ("sequential", "simultaneous"),
    "model.likelihood": ("bernoulli", "gaussian"),
    "learner.objective": ("elbo", "iwae"),
    "learner.r_last_update": ("every-event", "on-expansion"),
    "memory.kernel": ("laplacian-l2", "squared-exp"),
    "memory.select": ("similar", "diverse"),
}


def validate(cfg: RunConfig) -> None:
    """Value checks beyond types (choices, positivity)."""
    flat = {}
    for k in valid_keys(RunConfig):
        obj: Any = cfg
        for part in k.split("."):
            obj = getattr(obj, part)
        flat[k] = obj
    for k, choices in _CHOICES.items():
        if flat[k] not in choices:
            raise ConfigError(f"{k}={flat[k]!r} is not valid; choose one of: {', '.join(choices)}")
    from .learners import LEARNERS  # local import: the registry imports torch modules

    if cfg.learner.name not in LEARNERS:
        raise ConfigError(f"learner.name={cfg.learner.name!r} is unknown; choose one of: {', '.join(LEARNERS)}")
    for k in ("stream.batch_size", "learner.minibatch", "learner.elbo_samples", "eval.iw_samples",
              "model.latent", "memory.capacity", "eval.chunk_rows"):
        if flat[k] <= 0:
            raise ConfigError(f"{k} must be positive, got {flat[k]}")
    needs = getattr(LEARNERS[cfg.learner.name], "model_name", "mlp-vae")  # demc & co. train a VAE-GAN
    if cfg.model.name != needs:
        raise ConfigError(f"learner.name={cfg.learner.name} needs model.name={needs}, got {cfg.model.name}")
    for k in ("learner.updates_per_arrival", "memory.temp_capacity", "memory.cluster_size", "model.width",
              "eval.fid_generated", "eval.fid_reference", "eval.fid_classifier_epochs", "eval.is_splits"):
        if flat[k] <= 0:
            raise ConfigError(f"{k} must be positive, got {flat[k]}")
    if cfg.memory.cluster_size > cfg.memory.temp_capacity:
        raise ConfigError("memory.cluster_size must not exceed memory.temp_capacity (clusters come from it)")
    if len(cfg.model.encoder_activations) != len(cfg.model.encoder_hidden):
        raise ConfigError("model.encoder_activations needs one activation per model.encoder_hidden layer")
    if len(cfg.model.decoder_activations) != len(cfg.model.decoder_hidden):
        raise ConfigError("model.decoder_activations needs one activation per model.decoder_hidden layer")


def from_dict(d: dict) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict`` output (used by checkpoints and ``--resume``)."""
    cfg = RunConfig()
    for k, v in d.items():
        cfg = _apply(cfg, k, v)
    return cfg


def load_resolved(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a run directory's resolved ``config.yaml`` (budget already applied) plus overrides."""
    try:
        cfg = from_dict(yaml.safe_load(Path(path).read_text()) or {})
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: is this a streamvae run directory?") from None
    for k, v in (parse_override(o) for o in overrides):
        cfg = _apply(cfg, k, v)
    validate(cfg)
    return cfg


__all__ = [
    "RunConfig", "StreamConfig", "ModelConfig", "MemoryConfig", "LearnerConfig", "EvalConfig",
    "load_config", "from_dict", "to_dict", "to_yaml", "valid_keys", "parse_override",
]
