# rightfocus: `make demo` reproduces everything on synthetic data (CPU, minutes);
# `make test` runs the test suite. See README.md for the paper profile.
SHELL := /bin/bash
PY_BOOT ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= demo
RESULTS ?= results
DATA_ROOT ?= data
WEIGHTS_ROOT ?=
export PYTHONUNBUFFERED := 1
export MPLBACKEND := Agg

# Experiment parts add themselves here (mk/*.mk): the target that writes a paper's grid for $(PROFILE),
# the Make fragment it generates, the goals that render its ids once that fragment's <paper>-runs are
# trained (`render-<paper>.<k>`, in the order `make demo` should prefer them) and any target to start first.
GRID_TARGETS :=
GRID_FRAGMENTS :=
RENDER_GOALS :=
GRID_FIRST :=
# each paper's ids render in this many processes at once (render-<paper>.<k>, k in RENDER_PARTS)
RENDER_PARTS := 1 2

.PHONY: help setup test test-slow test-browser site site-check demo demo-train data gallery draw-gallery figures bench bench-layers protocol-docs clean
help:
	@echo "Set up and try it (CPU, synthetic data):"
	@echo "  make setup        create .venv with the pinned packages (then run .venv/bin/rightfocus ...)"
	@echo "  make data         write the synthetic datasets into DATA_ROOT/synthetic (default data/)"
	@echo "  make gallery      data, then a picture of samples with boxes and masks"
	@echo "  make demo         synthetic data, both demo grids, every figure and table into figures/demo/"
	@echo "  make mg-demo      model guidance's demo grid alone"
	@echo "  make aim-demo     AIM's demo grid alone"
	@echo "  make figures      render every inventory id from existing results (PROFILE=demo|paper)"
	@echo "Paper profile (PROFILE=paper DATA_ROOT=... WEIGHTS_ROOT=...):"
	@echo "  make mg-check     rightfocus check for model guidance's grid (data, weights, disk, device, time)"
	@echo "  make aim-check    the same for AIM's grid"
	@echo "  make mg|aim       check, then train the paper grid [-j N] and render its figures"
	@echo "  make ext          guidance beyond boxes (masks, a teacher, AIM's masks), after or beside mg and aim"
	@echo "  make rehearse     both paper grids on stand-in data and weights, every run capped (FULL=1: all runs)"
	@echo "Tests and measurements:"
	@echo "  make test         the fast test suite"
	@echo "  make test-slow    also the slow checks (full gradchecks, bigger models)"
	@echo "  make test-browser the interactive notebooks in JupyterLab + headless Chromium (~2 min)"
	@echo "  make bench        speed/memory benchmarks -> benchmarks/out/*.json"
	@echo "  make bench-layers re-measure Fig. 8's speed-up per tap -> benchmarks/recorded/layer_speedup_*.json"
	@echo "  make protocol-docs regenerate docs/protocol.md (every id's protocol card)"
	@echo "  make site         static HTML site (docs/ + one page per paper) -> site/index.html"
	@echo "  make site-check   open that site in headless Chromium (every page, image and link)"
	@echo "  make clean        remove the demo results, figures/demo and the synthetic data"
	@echo "Cluster: .venv/bin/rightfocus launch --help (SLURM through submitit)"

# Idempotent: reinstalls only when constraints.txt or pyproject.toml change.
$(VENV)/.stamp: constraints.txt pyproject.toml
	test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	touch $@
setup: $(VENV)/.stamp

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

# Debian's chromium (never a browser download); installed here when missing (needs root and apt)
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }; \
	else \
	  echo "test-browser needs Debian's chromium at $(CHROMIUM): run 'sudo apt-get install chromium' (or set CHROMIUM=...)"; exit 1; \
	fi
	@test -x $(CHROMIUM) || { echo "apt-get did not install $(CHROMIUM); install Debian's chromium package by hand"; exit 1; }

test-browser: setup $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -m browser

# The results site, offline: docs/, CHANGELOG.md, benchmarks/recorded/ and one page per paper from
# figures/$(PROFILE)/ (+ the executed notebooks under $(RESULTS)/$(PROFILE)/notebooks/ when they exist)
site: setup
	$(PY) -m rightfocus.site --profile $(PROFILE) --results $(RESULTS) --out site

# the site in headless Chromium: pages load without console errors, images and internal links resolve
# (tests/test_site.py, also part of test-browser)
site-check: setup $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -m browser tests/test_site.py

data: setup
	$(PY) -m rightfocus make-data all --out $(DATA_ROOT)/synthetic

GALLERY = $(PY) -m rightfocus gallery --data $(DATA_ROOT)/synthetic --out figures/$(PROFILE)/data_gallery.png
gallery: data
	$(GALLERY)
# the gallery of existing synthetic data (`make demo` draws it beside the first training jobs)
draw-gallery:
	$(GALLERY)

-include mk/*.mk

demo: setup data
	$(MAKE) demo-train PROFILE=demo

# Both papers' grids and renderings as one graph under one jobserver (DEMO_JOBS notebook executions or
# renderings at once, one torch thread each), goals in the order Make should prefer: AIM's main group
# (GRID_FIRST: the other AIM groups share its runs and wait for it) and MG's longest group first, then
# MG's other groups and rendering, AIM's other groups and rendering (Make starts MG's rendering only
# when a slot frees after AIM's groups have started, so it overlaps AIM's last groups at best). One graph
# keeps both cores busy where one paper after the other leaves one idle; DEMO_JOBS=3 on 2 cores is no
# faster (benchmarks/recorded/demo_timing_2026-12-01.md).
DEMO_JOBS ?= 2
demo-train: $(GRID_TARGETS)
	$(MAKE) -j$(DEMO_JOBS) -f Makefile $(addprefix -f ,$(GRID_FRAGMENTS)) $(GRID_FIRST) draw-gallery $(RENDER_GOALS) \
	  PY="$(abspath $(PY))"

# the k-th slice of a paper's ids (render-<paper>.<k>, k in RENDER_PARTS: several processes, so that the
# rendering left at the end keeps both cores busy), once that paper's grid (<paper>-runs) is trained
.SECONDEXPANSION:
render-%: $$(basename $$*)-runs
	$(PY) -m rightfocus figures --profile $(PROFILE) --results $(RESULTS) --only '$(basename $*).*' --part $(subst .,,$(suffix $*))/$(words $(RENDER_PARTS))

figures: setup
	$(PY) -m rightfocus figures --profile $(PROFILE) --results $(RESULTS)

bench: setup
	mkdir -p benchmarks/out
	for b in benchmarks/bench_*.py; do $(PY) $$b --out benchmarks/out || exit 1; done

# Fig. 8's speed-up panel (and claim R9) read the newest dated record this writes (tracked in git);
# on a GPU: make bench-layers BENCH_LAYERS_ARGS="--device cuda --size 224 --batch 64" (the paper's step)
BENCH_LAYERS_ARGS ?=
bench-layers: setup
	$(PY) benchmarks/bench_layers.py --record $(BENCH_LAYERS_ARGS)

protocol-docs: setup
	$(PY) -m rightfocus protocol --all --format md > docs/protocol.md

clean:
	rm -rf $(RESULTS)/demo figures/demo $(DATA_ROOT)/synthetic
