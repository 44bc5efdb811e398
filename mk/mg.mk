# Model guidance (Rao et al. 2023): the experiment grid of a profile, resumable and `make -j N` safe.
#
#   make mg PROFILE=paper DATA_ROOT=/data WEIGHTS_ROOT=/weights [-j N] [MG_GPUS=N]
#   make mg-demo            (the synthetic demo grid alone; `make demo` trains it beside AIM's)
#
# `rightfocus grid` writes every run's config, the group manifests and a generated fragment
# ($(RESULTS)/$(PROFILE)/mg/grid.mk). Paper profile: one target per run (its `done` file), each
# depending on the baselines it starts from, so Make trains baselines first, runs independent runs
# in parallel under -j, skips finished runs and resumes interrupted ones (`rightfocus train` continues
# from ckpt/latest.pt). Demo profile: one papermill execution of notebooks/mg_train.ipynb per group
# (kernel start-up costs ~10 s, a demo run ~1 s), after one execution that trains the shared baselines.
#
# Several GPUs: with MG_GPUS=N the generator prefixes run k's command with CUDA_VISIBLE_DEVICES=k mod N
# (round-robin); run `make mg -j N MG_GPUS=N` so that at most N runs share the N devices. A cluster
# scheduler works the same way: each generated recipe is one self-contained command per run.

# Paper profile: `rightfocus check` runs first (datasets, weights, disk, device, GPU-hours); it writes
# nothing, so a missing piece stops `make mg` before any config or run folder exists.
# CHECK_ARGS=--no-measure skips timing the training steps.
CHECK_ARGS ?=

MG_GPUS ?= 0
MG_GRID_MK = $(RESULTS)/$(PROFILE)/mg/grid.mk
# parallel jobs for the generated fragment (empty: whatever -j the caller gave)
MG_JOBS ?=

.PHONY: mg mg-check mg-grid mg-train mg-demo
mg-check: setup
	$(if $(filter paper,$(PROFILE)),$(PY) -m rightfocus check --paper mg --profile $(PROFILE) --data-root $(DATA_ROOT) \
	  $(if $(WEIGHTS_ROOT),--weights-root "$(WEIGHTS_ROOT)") --results $(RESULTS) $(CHECK_ARGS),@:)

mg-grid: setup mg-check
	$(PY) -m rightfocus grid --paper mg --profile $(PROFILE) --results $(RESULTS) --data-root $(DATA_ROOT) --gpus $(MG_GPUS)

mg-train: mg-grid
	$(if $(WEIGHTS_ROOT),WEIGHTS_ROOT="$(WEIGHTS_ROOT)") $(MAKE) $(if $(MG_JOBS),-j$(MG_JOBS)) -f $(MG_GRID_MK) mg-runs PY="$(abspath $(PY))"

mg: mg-train
	$(MAKE) figures PROFILE=$(PROFILE) RESULTS=$(RESULTS)

# two groups at once, one torch thread each (demo configs set threads=1): both cores busy
mg-demo: data
	$(MAKE) mg-train PROFILE=demo MG_JOBS=2

GRID_TARGETS += mg-grid
GRID_FRAGMENTS += $(MG_GRID_MK)
# before AIM's: MG's groups and rendering go beside AIM's main group and the AIM groups after it
RENDER_GOALS := $(addprefix render-mg.,$(RENDER_PARTS)) $(RENDER_GOALS)
# the longest MG group (5 guided epochs of 8 runs), started beside AIM's main group (longest first)
GRID_FIRST += $(RESULTS)/$(PROFILE)/mg/stamps/waterbirds
