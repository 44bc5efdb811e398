# AIM (Alshami et al. 2025): the experiment grid of a profile, resumable and `make -j N` safe.
#
#   make aim PROFILE=paper DATA_ROOT=/data WEIGHTS_ROOT=/weights [-j N]
#   make aim-demo            (the synthetic demo grid alone; `make demo` trains it beside MG's)
#
# `rightfocus grid --paper aim` writes every run's config, the group manifests and a
# generated fragment ($(RESULTS)/$(PROFILE)/aim/grid.mk). Paper profile: one target per run (its
# `done` file; `rightfocus train CONFIG`), so Make skips finished runs, resumes interrupted ones from
# ckpt/latest.pt and runs independent runs in parallel under -j (give each job its own GPU, e.g. a
# wrapper setting CUDA_VISIBLE_DEVICES). Demo profile: one papermill execution of
# notebooks/aim_train.ipynb per group; the groups that share runs with aim-main wait for it.
# The ImageNet backbone weights are torchvision's release files, dropped into WEIGHTS_ROOT unchanged
# under their own names (never downloaded; see docs/weights.md): convnext_tiny-983f1562.pth,
# resnet50-0676ba61.pth, resnet101-63fe2227.pth (from https://download.pytorch.org/models/).
#
# Demo runs use one torch thread each (RunConfig.threads: 2 threads on a busy 2-core machine cost ~10x
# the CPU time); parallelism comes from `make -j`. Its time on 2 cores:
# benchmarks/recorded/aim_demo_schedule_2026-12-01.md.

AIM_GRID_MK = $(RESULTS)/$(PROFILE)/aim/grid.mk
# Paper profile: `rightfocus check --paper aim` runs first and writes nothing (see mk/mg.mk)
CHECK_ARGS ?=

.PHONY: aim aim-check aim-grid aim-train aim-figures aim-demo
aim-check: setup
	$(if $(filter paper,$(PROFILE)),$(PY) -m rightfocus check --paper aim --profile $(PROFILE) --data-root $(DATA_ROOT) \
	  $(if $(WEIGHTS_ROOT),--weights-root "$(WEIGHTS_ROOT)") --results $(RESULTS) $(CHECK_ARGS),@:)

aim-grid: setup aim-check
	$(PY) -m rightfocus grid --paper aim --profile $(PROFILE) --results $(RESULTS) --data-root $(DATA_ROOT)

aim-train: aim-grid
	$(if $(WEIGHTS_ROOT),WEIGHTS_ROOT="$(WEIGHTS_ROOT)") $(MAKE) -f $(AIM_GRID_MK) aim-runs PY="$(abspath $(PY))"

aim-figures: setup
	mkdir -p $(RESULTS)/$(PROFILE)/aim/executed
	$(PY) -m papermill --no-progress-bar -k python3 -p profile $(PROFILE) -p results $(RESULTS) \
	  notebooks/aim_figures.ipynb $(RESULTS)/$(PROFILE)/aim/executed/aim_figures.ipynb

aim: aim-train
	$(MAKE) aim-figures PROFILE=$(PROFILE) RESULTS=$(RESULTS)

aim-demo: data
	$(MAKE) aim-train PROFILE=demo -j2

GRID_TARGETS += aim-grid
GRID_FRAGMENTS += $(AIM_GRID_MK)
RENDER_GOALS += $(addprefix render-aim.,$(RENDER_PARTS))
# the group whose runs the other AIM groups share (its fragment makes them wait for it)
GRID_FIRST += $(RESULTS)/$(PROFILE)/aim/stamps/aim-main
