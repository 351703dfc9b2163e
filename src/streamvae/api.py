"""The Python API for notebooks and scripts: load a config, run it, open a run, build a stream.

    import streamvae

    cfg = streamvae.load_config("split_fashion/ocm", budget="smoke", threads=1)  # a shipped config by name
    result = streamvae.run(cfg, "runs/notebook")      # trains with a progress bar; result.results is results.json
    r = streamvae.open_run("runs/notebook")           # config, metrics, events, model of a run directory
    images = r.sample(16)                             # (16, 1, 28, 28) in [0, 1]
    x = r.test_images(100)                            # (100, 784): the test images its evaluation scores
    ll = r.score(x, k=100)                            # (100,) importance-weighted log-likelihood, nats
    for batch in streamvae.stream("split_fashion"):   # batch.x (64, 784); batch.y, batch.task: evaluation only
        ...

Everything here is a thin layer over the modules the command line uses (``registry``, ``loop``,
``provenance``); a run made here is an ordinary run directory (``streamvae report`` / ``compare`` read it).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import RunConfig
    from .data.streams import Stream
    from .learners import Learner


def _override_list(overrides: Sequence[str] | Mapping[str, Any] | None, fields: Mapping[str, Any]) -> list[str]:
    """``["a.b=1"]``, ``{"a.b": 1}`` and keyword fields (``budget="smoke"``) as ``--set`` strings."""
    out: list[str] = []
    if isinstance(overrides, Mapping):
        out += [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in overrides.items()]
    elif overrides is not None:
        if isinstance(overrides, str):
            raise ConfigError("overrides: give a list of 'key=value' strings or a dict, not one string")
        out += list(overrides)
    out += [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in fields.items()]
    return out


def load_config(name_or_path: str | Path, overrides: Sequence[str] | Mapping[str, Any] | None = None, *,
                plugins: Sequence[str] = (), **fields: Any) -> RunConfig:
    """A run configuration, resolved as ``streamvae run`` resolves it.

    Args:
        name_or_path: a shipped config's name (``"split_fashion/ocm"``; ``streamvae list``), an experiment
            YAML, or a finished run's ``config.yaml`` (its own settings; the budget is not applied again).
        overrides: dotted overrides, as ``["memory.capacity=500"]`` or ``{"memory.capacity": 500}``.
        plugins: files or modules that register learners (``--plugin``).
        **fields: top-level fields, e.g. ``budget="smoke"``, ``seed=1``, ``threads=1``.

    Returns:
        A frozen :class:`streamvae.config.RunConfig`.

    Raises:
        ConfigError: an unknown config, key or budget, a wrong type or value (one line naming it).
    """
    from .provenance import load_any

    return load_any(str(name_or_path), _override_list(overrides, fields), plugins=plugins)


@dataclass
class RunResult:
    """What :func:`run` returns: ``results`` (results.json as a dict), the run directory, and the
    trained learner (loaded from the run's final checkpoint on first use)."""

    results: dict
    run_dir: Path
    _run: OpenRun | None = field(default=None, repr=False)

    @property
    def opened(self) -> OpenRun:
        """The run directory opened (:func:`open_run`)."""
        if self._run is None:
            self._run = open_run(self.run_dir)
        return self._run

    @property
    def learner(self) -> Learner:
        """The trained learner (its ``model``, ``components()``, memories), as at the end of the stream."""
        return self.opened.learner

    @property
    def model(self) -> torch.nn.Module:
        return self.opened.model


def run(cfg: RunConfig | str | Path, run_dir: str | Path | None = None, *, data_root: str | None = None,
        progress: bool = True, **fields: Any) -> RunResult:
    """Train on the whole stream and evaluate, writing an ordinary run directory.

    Args:
        cfg: a config (:func:`load_config`) or a name/path to load with ``**fields`` as overrides.
        run_dir: where to write (default: ``cfg.out_dir/NAME-BUDGET-sSEED``); must not hold a run yet.
        data_root: folder with one sub-folder per dataset (default: ``STREAMVAE_DATA``, Debian's Fashion-MNIST).
        progress: show the progress bar (the start banner is printed either way).

    Returns:
        A :class:`RunResult`: ``.results`` (the final metrics), ``.learner`` and ``.model`` (trained).
    """
    from dataclasses import replace

    from .loop import run as run_loop

    from .config import RunConfig

    if not isinstance(cfg, RunConfig):
        cfg = load_config(str(cfg), **fields)
    elif fields:
        raise ConfigError("run(cfg, ...): keyword fields go with a config's name; a loaded config is final "
                          "(load_config(name, ...) takes them)")
    cfg = replace(cfg, progress=progress)
    out = Path(run_dir) if run_dir is not None else Path(cfg.out_dir) / f"{cfg.name}-{cfg.budget}-s{cfg.seed}"
    if (out / "results.json").exists() or (out / "checkpoint.pt").exists():
        raise ConfigError(f"{out} already holds a run; open it with streamvae.open_run({str(out)!r}) or choose "
                          "another run_dir")
    results = run_loop(cfg, out, data_root=data_root)
    return RunResult(results, out)


class OpenRun:
    """A run directory opened for analysis: its files, and its model from the last checkpoint.

    ``config``, ``results``, ``metrics`` and ``events`` read files only; ``learner`` / ``model`` (and
    :meth:`sample`, :meth:`encode`, :meth:`score`, :meth:`test_images`) rebuild the learner from
    ``checkpoint.pt`` (loaded with ``weights_only``: a checkpoint never runs code) on first use.
    """

    def __init__(self, run_dir: str | Path, data_root: str | None = None):
        from .registry import load_resolved

        self.run_dir = Path(run_dir)
        if not (self.run_dir / "config.yaml").is_file():
            raise ConfigError(f"{self.run_dir} is not a run directory (no config.yaml)")
        self.data_root = data_root
        self.config: RunConfig = load_resolved(self.run_dir / "config.yaml", ["progress=False"])
        self._learner: Learner | None = None
        self._stream: Stream | None = None
        self.arrival: int | None = None  # arrivals the loaded checkpoint had seen

    def __repr__(self) -> str:
        state = "finished" if self.results is not None else "unfinished"
        return f"OpenRun({str(self.run_dir)!r}, learner={self.config.learner.name!r}, budget={self.config.budget!r}, {state})"

    # -- files -----------------------------------------------------------------------------------
    @property
    def results(self) -> dict | None:
        """results.json (None while the run is unfinished)."""
        import json

        p = self.run_dir / "results.json"
        return json.loads(p.read_text()) if p.is_file() else None

    @property
    def metrics(self) -> list[dict]:
        """metrics.jsonl: one dict per evaluation point (the last one is the final evaluation)."""
        from .utils import read_jsonl

        return read_jsonl(self.run_dir / "metrics.jsonl")

    @property
    def events(self) -> list[dict]:
        """events.jsonl: selection events, R and expansions of memory learners ([] for the others)."""
        from .utils import read_jsonl

        return read_jsonl(self.run_dir / "events.jsonl")

    @property
    def train_log(self) -> list[dict]:
        """train.jsonl: the learner's logs, one dict per arrival."""
        from .utils import read_jsonl

        return read_jsonl(self.run_dir / "train.jsonl")

    # -- the model ---------------------------------------------------------------------------------
    def _load(self) -> None:
        from .loop import build, restore_checkpoint
        from .utils import load_checkpoint

        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            raise ConfigError(f"{self.run_dir} has no checkpoint.pt (the run was made before its first checkpoint)")
        ckpt = load_checkpoint(path)
        stream, learner = build(self.config, self.data_root)
        self.arrival, _ = restore_checkpoint(learner, ckpt, path)
        for c in learner.components():
            c.eval()
        self._stream, self._learner = stream, learner

    @property
    def learner(self) -> Learner:
        """The learner restored from ``checkpoint.pt`` (the final one for a finished run)."""
        if self._learner is None:
            self._load()
        assert self._learner is not None
        return self._learner

    @property
    def model(self) -> torch.nn.Module:
        """The trained model: a VAE, a MixtureVAE (``.components``) or a VAE-GAN."""
        return self.learner.model

    @property
    def shape(self) -> tuple[int, ...]:
        """One image's shape, ``(C, H, W)``."""
        self.learner  # noqa: B018 (loads the stream with the learner)
        assert self._stream is not None
        return tuple(self._stream.shape)

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.learner.device).manual_seed(seed)

    @torch.no_grad()
    def sample(self, n: int = 16, seed: int = 0) -> torch.Tensor:
        """``n`` generated images ``(n, C, H, W)`` in [0, 1]; a mixture draws each image's component
        uniformly (the uniform mixture ``ll_iw1000_mixture`` scores)."""
        if n < 1:
            raise ConfigError(f"sample(n={n}): n must be at least 1")
        g = self._generator(seed)
        components: list[Any] = list(self.learner.components())
        which = torch.randint(len(components), (n,), generator=g, device=g.device)
        x = torch.empty(n, self._stream.x_dim if self._stream else 0, device=self.learner.device)
        for j, comp in enumerate(components):
            m = which == j
            if m.any():
                x[m] = comp.sample(int(m.sum()), g).reshape(int(m.sum()), -1).to(x.dtype)
        return x.reshape((n,) + self.shape).cpu()

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        d = self._stream.x_dim if self._stream is not None else int(torch.tensor(self.shape).prod())
        if x.numel() % d or x.dim() < 1:
            raise ConfigError(f"images must be (N, {d}) or (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        return x.reshape(-1, d).to(self.learner.device)

    @torch.no_grad()
    def assign(self, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """``(N,)`` the component that explains each image best (10-sample ELBO; zeros for one component)."""
        x = self._flat(x)
        if len(list(self.learner.components())) == 1:
            return torch.zeros(len(x), dtype=torch.long)
        model: Any = self.model  # a MixtureVAE here
        return model.assign(x, 10, self._generator(seed)).cpu()

    @torch.no_grad()
    def encode(self, x: torch.Tensor, seed: int = 0) -> torch.distributions.Normal:
        """q(z|x) of each image, ``Normal`` with ``loc``/``scale`` ``(N, latent)``; a mixture uses each
        image's best component (:meth:`assign`). VAE-GAN: its encoder's posterior."""
        x = self._flat(x)
        components: list[Any] = list(self.learner.components())
        choice = self.assign(x, seed).to(x.device)
        locs, scales = [], []
        for i in range(len(x)):  # small N in a notebook; one component per image
            q = components[int(choice[i])].encode(x[i:i + 1])
            locs.append(q.loc)
            scales.append(q.scale)
        return torch.distributions.Normal(torch.cat(locs).cpu(), torch.cat(scales).cpu())

    @torch.no_grad()
    def score(self, x: torch.Tensor, k: int = 1000, seed: int = 0, mixture: bool = False) -> torch.Tensor:
        """``(N,)`` importance-weighted log-likelihood bounds in nats (binarised images for Bernoulli
        models: :meth:`test_images`). A mixture: each image's best component (the paper's ``ll_iw1000``,
        ``selected``), or ``mixture=True`` for the uniform mixture."""
        from .evaluation.evaluator import score_components

        if k < 1:
            raise ConfigError(f"score(k={k}): k must be at least 1")
        s = score_components(list(self.learner.components()), self._flat(x), k, self._generator(seed),
                             self.config.eval.chunk_rows)
        if "ll" not in s:
            raise ConfigError(f"learner {self.config.learner.name} has no likelihood (a VAE-GAN); "
                              "reconstruction error only")
        return (s["mixture"] if mixture else s["ll"]).float().cpu()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Reconstructions ``(N, C, H, W)`` (decoder mean at the encoder mean; a mixture's best component)."""
        x = self._flat(x)
        components: list[Any] = list(self.learner.components())
        choice = self.assign(x, seed)
        out = torch.stack([components[int(j)].reconstruct(x[i:i + 1])[0] for i, j in enumerate(choice)])
        return out.reshape((len(x),) + self.shape).cpu()

    def test_images(self, n: int = 0) -> torch.Tensor:
        """``(n, D)`` test images as this run's evaluation sees them (binarised once with
        ``eval.binarize_seed``; a seeded subset of ``n``, 0 = all)."""
        self.learner  # noqa: B018
        assert self._stream is not None
        return self._stream.test_set(self.config.eval, n).x


def open_run(run_dir: str | Path, data_root: str | None = None) -> OpenRun:
    """Open a run directory (finished or not): ``config``, ``results``, ``metrics``, ``events`` and, from
    its checkpoint, ``learner``/``model`` with ``sample``, ``encode``, ``score``, ``reconstruct``."""
    return OpenRun(run_dir, data_root)


def stream(name: str = "split_fashion", *, data_root: str | None = None, seed: int = 0,
           **fields: Any) -> Stream:
    """A task-free stream for a training loop of your own.

    Args:
        name: a shipped stream (``split_mnist``, ``split_fashion``, ``mnist_fashion``, ``cross_domain``,
            ...: the folders ``streamvae list`` shows), whose ``stream:`` section is used.
        data_root: folder with one sub-folder per dataset.
        seed: the stream's seed (``pairs`` order with shuffling).
        **fields: ``stream.*`` fields, e.g. ``batch_size=32``, ``samples_per_class=100``, ``order="pairs"``.

    Returns:
        A :class:`streamvae.data.streams.Stream`: ``len()`` arrivals; iterating (or ``.batch(t)``) gives
        ``Batch(x (B, D) in [0, 1], y, task)``; ``.test_set(eval_cfg, size)``, ``.task_ends()``, ``.shape``.
    """
    from .catalog import CONFIGS
    from .config import StreamConfig, _apply, read_yaml
    from .data.streams import Stream

    folder = CONFIGS / name
    files = sorted(folder.glob("*.yaml")) if folder.is_dir() and not name.startswith("_") else []
    if not files:
        streams = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise ConfigError(f"stream {name!r} is not a shipped stream; choose one of: {', '.join(streams)}")
    section = read_yaml(files[0]).get("stream") or {}
    cfg = StreamConfig()
    for k, v in {**section, **fields}.items():
        cfg = _apply(cfg, str(k), v, f"stream.{k}")
    cfg.validate()
    return Stream(cfg, data_root=data_root, seed=seed)


__all__ = ["load_config", "run", "RunResult", "open_run", "OpenRun", "stream"]
