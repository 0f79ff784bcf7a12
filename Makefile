# ssld: `make demo` runs the SSLD pipeline on Fashion-MNIST, `make test` runs the test suite.
# Both set everything up first (venv, package, dataset) and are safe to run again.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ssld-installed
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
# pass the IDX folder to the pipeline only when it is not the Debian package's
IDX_OVERRIDE := $(if $(filter-out /usr/share/datasets/fashion-mnist,$(FMNIST_DIR)),-o data.idx_dir=$(FMNIST_DIR))
RUN_DIR ?= runs/demo
# more `ssld pipeline` flags for the demo, e.g. DEMO_ARGS=--force to reuse a RUN_DIR made by an older config
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup dataset demo test bench bench-photos photos ablate lint clean help

help:
	@echo "make demo   - set up, then run the SSLD pipeline (quick profile) on Fashion-MNIST"
	@echo "              (RUN_DIR=runs/demo; DEMO_ARGS=--force reuses a run dir made by an older config)"
	@echo "make test   - set up, then run the test suite"
	@echo "make bench  - set up, then run the benchmark suite (docs/benchmarks.md); PADDLECLAS_SRC=DIR adds PaddleClas side by side"
	@echo "make bench-photos - dedup on photographs from the Debian wallpaper packages: 128-256 px crops, 384-512 px crops, whole photographs (docs/mining.md)"
	@echo "make ablate - set up, then run the ablations (long; resumable)"

setup: $(STAMP) dataset

# Reinstall only when the package metadata changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# PaddleClas parity tests: paddlepaddle (the paddle extra) and PaddleClas's model definitions without its
	@# training dependencies; where they cannot install, those tests skip and say why.
	-$(BIN)/python -m pip install --quiet -e ".[dev,paddle]" && \
		$(BIN)/python -m pip install --quiet --no-deps paddleclas==2.6.0
	@touch $(STAMP)

dataset:
	@if ls $(FMNIST_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"; \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	else \
		echo "Fashion-MNIST IDX files not found in $(FMNIST_DIR): run 'sudo apt-get install -y dataset-fashion-mnist'," \
		     "or download the four *-ubyte.gz files and run 'make demo FMNIST_DIR=/path/to/them'"; \
		exit 1; \
	fi

demo: setup
	$(BIN)/ssld pipeline -c configs/fashion_mnist/ssld.yaml --profile quick --run-dir $(RUN_DIR) $(IDX_OVERRIDE) $(DEMO_ARGS)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/run_all.py $(if $(PADDLECLAS_SRC),--paddleclas-src $(PADDLECLAS_SRC))

# photographs for benchmarks/dedup_photos.py (Debian wallpaper packages, OpenCV's samples; installed once, as root)
WALLPAPERS := gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers ukui-wallpapers lomiri-wallpapers opencv-doc
photos:
	@if [ -d /usr/share/backgrounds/mate/nature ] && [ -d /usr/share/wallpapers/Autumn ] \
		&& [ -d /usr/share/doc/opencv-doc/examples/data ]; then \
		true; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(WALLPAPERS) >/dev/null; \
	else \
		echo "run 'sudo apt-get install -y $(WALLPAPERS)' first"; exit 1; \
	fi

bench-photos: setup photos
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/dedup_photos.py --scale 60000,10000
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/dedup_photos.py --out bench_out/photos_large --crop-sides 384,512 --plant 200
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/dedup_whole_photos.py

ablate: setup
	$(BIN)/ssld ablate -c configs/fashion_mnist/ablations.yaml

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf runs output bench_out .pytest_cache
