# Fresh-machine entry points: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-done

.PHONY: setup browser demo test test-fast clean

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

# The report tests render the HTML report in headless Chromium: installed here (Debian's package,
# needs root and apt-get) where it is missing, never from inside a test; a missing browser fails them.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the report rendering tests"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# Everything: unit tests and the end-to-end tests through the CLI on real images.
test: setup browser
	$(BIN)/python -m pytest -q

# The quick lane (a few minutes): everything not marked slow.
test-fast: setup browser
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) demo build *.egg-info
