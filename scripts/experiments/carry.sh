#!/usr/bin/env bash
# Carry unfinished runs from one session to the next through git: a session's machine does not come
# back (its runs/ goes with it), so a run longer than a session is packed into carry/<tag>.tar.gz
# (checkpoint, config, logs and metrics; no lock), committed, and unpacked by the next session,
# which then resumes it with the experiment script that started it (e.g. issue9.sh TAG).
#   bash scripts/experiments/carry.sh save runs/issue9/dyn-paper-s0 [RUN_DIR ...]   # pack (overwrites)
#   bash scripts/experiments/carry.sh restore runs/issue9 [TAG ...]                  # unpack (all, or TAGs)
#   bash scripts/experiments/carry.sh list                                           # what is carried, where it stopped
# restore never overwrites a run directory that holds a checkpoint at the same or a later arrival,
# nor a finished run (results.json). Packing a run that is still going reads its last checkpoint
# (written atomically), so it is safe at any time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=${PY:-.venv/bin/python}
CARRY=carry
mkdir -p "$CARRY"

arrival() {  # the arrival a run directory's checkpoint (or a packed one) stopped at, or -1
  "$PY" - "$1" <<'EOF'
import sys, tarfile, io, torch
path = sys.argv[1]
try:
    if path.endswith(".tar.gz"):
        with tarfile.open(path) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/checkpoint.pt"))
            data = io.BytesIO(tar.extractfile(member).read())
    else:
        data = path
    print(torch.load(data, map_location="cpu", weights_only=True)["arrival"])
except (OSError, StopIteration, KeyError, RuntimeError):
    print(-1)
EOF
}

case "${1:-}" in
  save)
    shift
    [ $# -gt 0 ] || { echo "usage: carry.sh save RUN_DIR [RUN_DIR ...]" >&2; exit 2; }
    for dir in "$@"; do
      dir=${dir%/}
      [ -f "$dir/checkpoint.pt" ] || { echo "$dir has no checkpoint.pt: nothing to carry" >&2; exit 2; }
      tag=$(basename "$dir")
      tmp="$CARRY/.$tag.tar.gz.tmp"
      tar czf "$tmp" -C "$(dirname "$dir")" --exclude=.lock --exclude='*.tmp' "$tag"
      mv "$tmp" "$CARRY/$tag.tar.gz"  # atomic: a half-written pack never replaces a good one
      echo "$CARRY/$tag.tar.gz: $tag at arrival $(arrival "$dir/checkpoint.pt"), $(du -h "$CARRY/$tag.tar.gz" | cut -f1)"
    done ;;
  restore)
    shift
    out=${1:?usage: carry.sh restore OUT_DIR [TAG ...]}; shift
    mkdir -p "$out"
    want=" $* "
    for pack in "$CARRY"/*.tar.gz; do
      [ -e "$pack" ] || { echo "nothing carried"; exit 0; }
      tag=$(basename "$pack" .tar.gz)
      [ $# -gt 0 ] && [[ "$want" != *" $tag "* ]] && continue
      if [ -f "$out/$tag/results.json" ]; then echo "skip $tag: finished in $out"; continue; fi
      packed=$(arrival "$pack"); here=$(arrival "$out/$tag/checkpoint.pt")
      if [ "$here" -ge "$packed" ]; then echo "skip $tag: $out/$tag is at arrival $here (pack: $packed)"; continue; fi
      rm -rf "${out:?}/$tag"
      tar xzf "$pack" -C "$out"
      echo "restored $tag into $out/$tag (arrival $packed)"
    done ;;
  list)
    for pack in "$CARRY"/*.tar.gz; do
      [ -e "$pack" ] || { echo "nothing carried"; exit 0; }
      echo "$(basename "$pack" .tar.gz): arrival $(arrival "$pack"), $(du -h "$pack" | cut -f1)"
    done ;;
  *) echo "usage: carry.sh save RUN_DIR... | restore OUT_DIR [TAG...] | list" >&2; exit 2 ;;
esac
