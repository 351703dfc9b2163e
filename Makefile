# The two commands of the README. Both do all set-up themselves.
.PHONY: setup demo test bench

setup:
	bash scripts/setup.sh

# Dynamic-OCM on the whole Split Fashion-MNIST stream, `demo` budget (a few minutes on 2 cores), then a results table.
demo: setup
	.venv/bin/streamvae run configs/split_fashion/dynamic-ocm.yaml --set budget=demo --out runs/demo-$$(date +%Y%m%d-%H%M%S)

test: setup
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python benchmarks/bench_vae.py
