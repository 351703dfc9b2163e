"""Remake the generated tables of RESULTS.md from the committed records under results/.

    python scripts/results-tables.py           # rewrites RESULTS.md's generated blocks in place
    python scripts/results-tables.py --check   # exit 1 when RESULTS.md differs from its records

Each block is what `streamvae reproduce NAME --budget B --from results/` prints; a test
(tests/test_results_page.py) fails when the committed page and the records disagree.
"""
import argparse
import sys
from pathlib import Path

from streamvae.reproduce import page_blocks, regenerate_page
from streamvae.utils import atomic_write_text

REPO = Path(__file__).resolve().parents[1]

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
args = p.parse_args()
page = REPO / "RESULTS.md"
text = page.read_text()
new = regenerate_page(text, REPO / "results")
blocks = ", ".join(f"{n} ({b})" for n, b in page_blocks(text))
if args.check:
    print(f"RESULTS.md {'matches' if new == text else 'differs from'} its records: {blocks}")
    sys.exit(0 if new == text else 1)
if new != text:
    atomic_write_text(page, new)
print(f"RESULTS.md: {blocks} {'remade' if new != text else 'already up to date'}")
