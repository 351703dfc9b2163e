#!/usr/bin/env bash
# GPU check (issue 14), about 5-8 minutes on one GPU:
#  1. a smoke run of every learner on CUDA and the same runs (same seed) on the CPU, each through
#     `streamvae sweep` (OUT/cpu, OUT/cuda: run directories, summary.md, run.log per run);
#  2. agreement: every final ll_iw* (recon_sse for the VAE-GANs) of a CUDA run lies within
#     max(2, 0.5 %) of the CPU run's. The devices draw different noise (CUDA generators), so the runs
#     agree statistically, not bit for bit. The tolerance is about 3x the largest seed-to-seed
#     difference of these smoke runs on the synthetic data (0.3-0.6 nats, recon_sse 0.4-0.7; two CPU
#     seeds of all nine learners); with GPU_CHECK_DATA (real images) the spread, and a failure, can be larger.
#     Then the same weights with the same noise on both devices: the MLP VAE's log-weights within
#     0.05 nats per image and the VAE-GAN's reconstructions within 0.01 per pixel (fp32; TF32 convolutions);
#  3. the time of a released-protocol training step on CUDA (and on the CPU for comparison): the MLP
#     VAE's 50-sample ELBO Adam step at batch 64, and one full-width VAE-GAN (DEMC) update at batch 64,
#     with the training time of the released reservoir protocol on Split Fashion that it implies.
# Exit status 0 when every check passes. Usage:
#   scripts/gpu_check.sh [OUT_DIR]                     # default runs/gpu-check-<time>
#   GPU_CHECK_DATA=DIR scripts/gpu_check.sh            # a data root with Fashion-MNIST (else synthetic IDX files)
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_LEARNERS="finetune reservoir" scripts/gpu_check.sh   # dry run without CUDA
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${1:-runs/gpu-check-$(date +%Y%m%d-%H%M%S)}
DEV=${GPU_CHECK_DEVICE:-cuda}
LEARNERS=${GPU_CHECK_LEARNERS:-finetune reservoir iid ocm iwae-ocm dynamic-ocm demc reservoir-vaegan finetune-vaegan}
mkdir -p "$OUT"
START=$(date +%s)

"$PY" - "$DEV" <<'EOF'
import sys, torch
dev = sys.argv[1]
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuda available: {torch.cuda.is_available()}")
if dev == "cuda":
    if not torch.cuda.is_available():
        sys.exit("gpu_check: CUDA is not available here (GPU_CHECK_DEVICE=cpu makes a dry run)")
    print("GPU:", torch.cuda.get_device_name(0))
EOF

DATA=${GPU_CHECK_DATA:-}
if [ -z "$DATA" ]; then  # offline and deterministic: tiny synthetic Fashion-format IDX files
  DATA="$OUT/data"
  "$PY" - "$DATA" <<'EOF'
import gzip, struct, sys
from pathlib import Path
import numpy as np

def write(path, arr):
    head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(head + arr.astype(np.uint8).tobytes()))

for prefix, n, seed in (("train", 40, 1), ("t10k", 10, 2)):  # class c lights rows 2c+2..2c+8
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), n)
    images = rng.integers(0, 40, size=(len(labels), 28, 28))
    for i, c in enumerate(labels):
        images[i, 2 * c + 2: 2 * c + 8, 4:24] = rng.integers(180, 256, size=(6, 20))
    write(Path(sys.argv[1]) / "fashion-mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
    write(Path(sys.argv[1]) / "fashion-mnist" / f"{prefix}-labels-idx1-ubyte.gz", labels)
EOF
fi

CONFIGS=()
for l in $LEARNERS; do CONFIGS+=("split_fashion/$l"); done
echo "== 1. smoke runs of ${#CONFIGS[@]} learners on the CPU and on $DEV (data: $DATA)"
status=0
"$PY" -m streamvae.cli sweep "${CONFIGS[@]}" --set budget=smoke --set device=cpu --jobs 4 \
  --data-root "$DATA" --out "$OUT/cpu" || status=1
"$PY" -m streamvae.cli sweep "${CONFIGS[@]}" --set budget=smoke --set "device=$DEV" --jobs 3 \
  --data-root "$DATA" --out "$OUT/$DEV-runs" || status=1

echo "== 2. agreement"
"$PY" - "$OUT/cpu" "$OUT/$DEV-runs" "$DEV" <<'EOF' || status=1
import json, re, sys
from pathlib import Path
cpu_dir, dev_dir, dev = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
bad = 0
print(f"{'run':40s} {'metric':22s} {'cpu':>10s} {dev:>10s} {'diff':>8s} {'tolerance':>9s}")
for a_path in sorted(cpu_dir.rglob("results.json")):
    b_path = dev_dir / a_path.relative_to(cpu_dir)
    name = str(a_path.parent.relative_to(cpu_dir))
    if not b_path.exists():
        print(f"{name:40s} missing on {dev}"); bad += 1; continue
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    if not b["device"].startswith(dev):
        print(f"{name:40s} ran on {b['device']}, not {dev}"); bad += 1
    keys = [k for k in a if re.fullmatch(r"ll_iw\d+(_selected|_mixture)?", k)] or ["recon_sse"]
    for k in keys:
        diff, tol = abs(a[k] - b[k]), max(2.0, 0.005 * abs(a[k]))
        bad += diff > tol
        print(f"{name:40s} {k:22s} {a[k]:10.2f} {b[k]:10.2f} {diff:8.2f} {tol:9.2f}{'  FAIL' if diff > tol else ''}")

import torch
from torch.distributions import Normal
from streamvae import load_config
from streamvae.catalog import config_path
from streamvae.config import ModelConfig
from streamvae.models import VAE, build_model

def log_weights(vae, x, eps):  # models/vae.py's reference terms for given noise eps: (k, B, Z)
    q = vae.encode(x)
    z = q.loc + q.scale * eps
    prior = Normal(torch.zeros_like(q.loc), torch.ones_like(q.loc))
    return vae.decode(z).log_prob(x) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)

g = torch.Generator().manual_seed(0)
torch.manual_seed(0)
vae = VAE(ModelConfig()).eval()
x = torch.rand(256, 784, generator=g).bernoulli(generator=g)
eps = torch.randn(50, 256, 50, generator=g)
with torch.no_grad():
    ref = log_weights(vae, x, eps)
    out = log_weights(vae.to(dev), x.to(dev), eps.to(dev)).cpu()
d = (ref - out).abs().max().item()
bad += d > 0.05
print(f"MLP VAE log-weights, same weights and noise: max |cpu - {dev}| = {d:.2e} nats (tolerance 0.05)")
cfg = load_config(config_path("split_fashion/demc"), [])
torch.manual_seed(0)
gan = build_model(cfg.model, 784, shape=(1, 28, 28)).eval()
xs = torch.rand(64, 784, generator=g)
with torch.no_grad():
    ref = gan.reconstruct(xs)
    out = gan.to(dev).reconstruct(xs.to(dev)).cpu()
d = (ref - out).abs().max().item()
bad += d > 0.01
print(f"VAE-GAN reconstructions, same weights: max |cpu - {dev}| = {d:.2e} per pixel (tolerance 0.01)")
sys.exit(1 if bad else 0)
EOF

echo "== 3. released-protocol training steps"
"$PY" - "$DEV" <<'EOF' || status=1
import sys, time, torch
from streamvae import load_config
from streamvae.catalog import config_path
from streamvae.config import ModelConfig
from streamvae.learners import LEARNERS
from streamvae.models import VAE, build_model

dev = sys.argv[1]

def sync():
    if dev == "cuda":
        torch.cuda.synchronize()

def per_call(step, n, warmup=5):
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - t0) / n

def vae_step(device):  # VAELearner.train_pass's step: 50-sample ELBO, Adam (lr 1e-4, betas 0.5, 0.999)
    torch.manual_seed(0)
    vae = VAE(ModelConfig()).to(device)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=True)
    g = torch.Generator(device=device).manual_seed(1)
    x = torch.rand(64, 784, device=device).bernoulli()

    def step():
        loss = -vae.elbo(x, 50, g).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step

def vaegan_update(device):  # one DEMC update (critic, G + E, E alone) of the full-width VAE-GAN
    cfg = load_config(config_path("split_fashion/demc"), [f"device={device}"])
    torch.manual_seed(0)
    model = build_model(cfg.model, 784, shape=(1, 28, 28)).to(device)
    learner = LEARNERS["demc"](cfg, model, torch.Generator(device=device).manual_seed(1))
    x = torch.rand(64, 784, device=device)
    return lambda: learner.update(x)

rows = []
for device, n_vae, n_gan in [(dev, 300, 50)] * (dev != "cpu") + [("cpu", 20, 3)]:
    rows.append((device, per_call(vae_step(device), n_vae), per_call(vaegan_update(device), n_gan, warmup=2)))
for device, t_vae, t_gan in rows:
    print(f"{device:5s} MLP VAE 50-sample ELBO step, batch 64: {1e3 * t_vae:8.2f} ms   "
          f"full-width VAE-GAN update, batch 64: {1e3 * t_gan:8.2f} ms")
# the released reservoir protocol on Split Fashion: 937 arrivals of 64, 100 passes over memory (<= 3000) + batch
steps = sum(100 * ((min(64 * t, 3000) + 64) // 64) for t in range(60000 // 64))
print(f"released reservoir protocol, Split Fashion: {steps:,} steps = {steps * rows[0][1] / 3600:.1f} h of "
      f"training steps on {rows[0][0]} (evaluation and selection not included)")
EOF

echo "== done in $(( $(date +%s) - START )) s; runs in $OUT; status $status"
exit $status
