# Fresh-machine entry points: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	# facenet-pytorch pins torch<2.3 and numpy<2; its code works with current torch.
	# Install it alone, without dependencies, so pip's resolver never sees those pins.
	$(BIN)/pip install -q --no-deps facenet-pytorch==2.6.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/forensics demo

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo build *.egg-info
