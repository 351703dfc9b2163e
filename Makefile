# The two commands of the README. Both do all set-up themselves, once: .venv/.setup-stamp holds a hash of
# pyproject.toml and scripts/setup.sh, and set-up runs again only when one of them changed (or .venv is gone).
.PHONY: setup venv demo test bench

STAMP := .venv/.setup-stamp
HASH = $$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

venv:
	@if [ ! -x .venv/bin/python ] || [ "$$(cat $(STAMP) 2>/dev/null)" != "$(HASH)" ]; then \
	  bash scripts/setup.sh && echo "$(HASH)" > $(STAMP); \
	fi

setup:  # set-up again, whatever the stamp says
	bash scripts/setup.sh && echo "$(HASH)" > $(STAMP)

# fine-tuning vs OCM vs Dynamic-OCM on Split Fashion-MNIST at the `demo` budget (about 5 minutes on 2 idle
# cores), then a table beside the published values; the runs go to runs/demo/ (rm -rf runs/demo to redo them)
demo: venv
	.venv/bin/streamvae demo --out runs/demo

test: venv
	.venv/bin/python -m pytest -q

bench: venv
	.venv/bin/python benchmarks/bench_vae.py
