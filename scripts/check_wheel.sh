#!/usr/bin/env bash
# The wheel ships the native source: build a wheel from this repository, install it into a fresh
# virtual environment, then, from a directory outside the repository, check that the installed
# package (not src/) compiles its native library from the shipped bernoulli.c and that the VAE uses
# it. Without a C compiler only the packaging is checked (the native part is reported as skipped).
#
# Both ways it also checks that `pip install` of the wheel, with its dependencies resolved, keeps the
# supported torch the environment already has (same version, files and dist-info; not reinstalled).
#
#   bash scripts/check_wheel.sh          # seconds: torch & co. from the project's .venv (not copied)
#   FULL=1 bash scripts/check_wheel.sh   # torch==2.13.0 first, then the wheel and the other dependencies
#                                        # from pip's indexes (minutes)
#   PY=...                               # the interpreter that builds the wheel (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

t0=$(date +%s)
# from a copy of the files git knows (tracked or not ignored): a stale src/*.egg-info manifest would
# otherwise put files in the wheel that the package data leaves out. The project's own setuptools
# builds it when it has one (no isolated build environment to download).
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/src" 2>/dev/null || true
isolation=--no-build-isolation
"$PY" -c "import setuptools" 2>/dev/null || isolation=  # else pip fetches setuptools for the build
"$PY" -m pip wheel --no-deps $isolation -q -w "$tmp/dist" "$tmp/src"
wheel=$(ls "$tmp"/dist/streamvae-*.whl)
"$PY" -c 'import sys, zipfile; sys.exit("streamvae/native/bernoulli.c" not in zipfile.ZipFile(sys.argv[1]).namelist())' \
  "$wheel" || { echo "check_wheel: FAILED: streamvae/native/bernoulli.c is not in $(basename "$wheel")"; exit 1; }

# What identifies the torch an environment imports: version, where its files are, the dist-info
# (RECORD) that pip wrote and the modification time of torch/__init__.py. A reinstall or an upgrade
# changes at least one of them.
torch_state() {
  "$tmp/venv/bin/python" - <<'EOF3'
import importlib.metadata as md, importlib.util, os
dist = md.distribution("torch")  # the first on sys.path, as `import torch` finds it (without importing it)
init = os.path.realpath(importlib.util.find_spec("torch").origin)
record = os.path.realpath(os.path.join(str(getattr(dist, "_path", "?")), "RECORD"))
mtime = lambda p: os.stat(p).st_mtime_ns if os.path.exists(p) else "?"
print(f"torch {dist.version} at {init} (mtime_ns {mtime(init)}), {record} (mtime_ns {mtime(record)})")
EOF3
}

"$PY" -m venv "$tmp/venv"
if [ "${FULL:-0}" = 1 ]; then
  # as scripts/setup.sh does: the pinned CPU torch first (an unpinned one would be a CUDA build), then
  # the wheel with everything else from pip's configured indexes (minutes)
  "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
  torch_before=$(torch_state)
  "$tmp/venv/bin/python" -m pip install --disable-pip-version-check "$wheel" > "$tmp/pip-install.log" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) \
    || { cat "$tmp/pip-install.log"; echo "check_wheel: FAILED: pip install $(basename "$wheel") after torch==2.13.0"; exit 1; }
else
  # the dependencies (torch, ...) are the project environment's, seen through a .pth line rather than
  # copied (1.3 GB); streamvae itself is the wheel's, installed into the fresh environment
  deps=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$deps" > "$site/project-dependencies.pth"
  # the setuptools that `python -m venv` bundles (65.x on 3.11) would hide the project's, which torch
  # requires (>= 77): without it the fresh environment's packages are exactly the project's
  "$tmp/venv/bin/python" -m pip uninstall -q -y --disable-pip-version-check setuptools 2>/dev/null || true
  "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --ignore-installed "$wheel"
  # then the install a user does into an environment that already has a supported torch, with its
  # dependencies resolved; --no-index: nothing may be downloaded, so pip must keep what is there
  torch_before=$(torch_state)
  "$tmp/venv/bin/python" -m pip install --disable-pip-version-check --no-index "$wheel" > "$tmp/pip-install.log" \
    || { cat "$tmp/pip-install.log"; echo "check_wheel: FAILED: pip install $(basename "$wheel") wants other dependencies than the installed ones (torch $("$tmp/venv/bin/python" -c 'import torch; print(torch.__version__)'))"; exit 1; }
fi
# pip install keeps a supported torch that is already there: neither reinstalled nor changed
torch_after=$(torch_state)
if [ "$torch_before" != "$torch_after" ] || grep -Eiq "^(Installing collected packages|Successfully installed).*\btorch\b" "$tmp/pip-install.log"; then
  cat "$tmp/pip-install.log"
  echo "check_wheel: FAILED: pip install $(basename "$wheel") replaced the installed torch"
  echo "  before: $torch_before"
  echo "  after:  $torch_after"
  exit 1
fi
grep -Eq "^Requirement already satisfied: torch" "$tmp/pip-install.log" \
  || { cat "$tmp/pip-install.log"; echo "check_wheel: FAILED: pip did not resolve torch against the installed one"; exit 1; }
echo "check_wheel: ok: pip install $(basename "$wheel") kept the installed $torch_after"

cd "$tmp"  # not the repository: the import must find the installed package
STREAMVAE_CACHE="$tmp/cache" REPO="$repo" "$tmp/venv/bin/python" - <<'EOF'
import os
import sys
from pathlib import Path

import torch

import streamvae
from streamvae import native
from streamvae.config import ModelConfig
from streamvae.models import VAE
from streamvae.native import clib

pkg = Path(streamvae.__file__).resolve().parent
assert Path(sys.prefix).resolve() in pkg.parents, f"imported {pkg}, not the fresh environment's copy"
assert Path(os.environ["REPO"]).resolve() not in pkg.parents, f"imported the repository's {pkg}"
assert (pkg / "native" / "bernoulli.c").is_file(), "bernoulli.c was not installed"
if clib._compiler() is None:
    print(f"check_wheel: packaging ok ({pkg}); native library SKIPPED: no C compiler on this machine")
    sys.exit(0)
lib = native.library()
assert lib is not None, f"the installed package could not build its native library: {native.error()}"
built = list((Path(os.environ["STREAMVAE_CACHE"]) / "native").glob("bernoulli-*.so"))
assert len(built) == 1, built  # compiled here, from the installed source
torch.manual_seed(0)
vae = VAE(ModelConfig(), native=True)
x = torch.bernoulli(torch.rand(16, 784))
assert native.supports(vae, x, vae.encode(x))
fast = vae.log_weights(x, 20, torch.Generator().manual_seed(1)).detach()
vae.native = False
ref = vae.log_weights(x, 20, torch.Generator().manual_seed(1)).detach()
assert torch.allclose(fast, ref, rtol=1e-5, atol=2e-3), float((fast - ref).abs().max())
print(f"check_wheel: ok: {pkg} built and uses {built[0].name}; same log-weights as the reference "
      f"(max |diff| {float((fast - ref).abs().max()):.1e})")
EOF
# the README's promise for a regular install: a shipped config by name, a smoke run, the native path
if [ -d /usr/share/datasets/fashion-mnist ] || [ -n "${STREAMVAE_DATA:-}" ]; then
  STREAMVAE_CACHE="$tmp/cache" "$tmp/venv/bin/streamvae" run split_fashion/reservoir --set budget=smoke \
    --no-progress --out "$tmp/run" >/dev/null
  "$tmp/venv/bin/python" - "$tmp/run/results.json" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
from streamvae.native import clib
want = "native" if clib._compiler() is not None else "torch"
assert r["kernels"].startswith(want), f"the smoke run from the wheel used {r['kernels']!r}, expected {want}"
print(f"check_wheel: ok: streamvae run split_fashion/reservoir from the wheel, kernels {r['kernels']!r}")
EOF2
  # the README's Python example (load by name, run at smoke, open the run, sample, score), from the wheel
  mkdir "$tmp/notebook"
  (cd "$tmp/notebook" && STREAMVAE_CACHE="$tmp/cache" "$tmp/venv/bin/python" - "$repo/README.md" <<'EOF4'
import re, sys
from pathlib import Path
text = Path(sys.argv[1]).read_text()
code = re.search(r"<!-- python-example -->\s*```python\n(.*?)```\s*<!-- /python-example -->", text, re.S).group(1)
import streamvae
assert "site-packages" in streamvae.__file__, streamvae.__file__
exec(compile(code, "README.md (python-example)", "exec"), {})
print("check_wheel: ok: the README's Python example ran from the wheel")
EOF4
  )
else
  echo "check_wheel: smoke run and README Python example SKIPPED: no Fashion-MNIST (apt-get install dataset-fashion-mnist)"
fi
echo "check_wheel: $(( $(date +%s) - t0 )) s"
