# The rehearsal: both papers' paper-profile grids at the papers' architectures, resolutions and batch
# sizes, on stand-in data (synthetic, release layouts and typical image sizes) and stand-in weights
# (random values, release file names and layouts), every run capped (1-2 epochs, a few steps, a small
# evaluation subset), through the same generated Make fragment, training notebooks (papermill),
# selection and figure renderers as `make mg` / `make aim`. Finds crashes before a GPU hour is spent.
#
#   make rehearse            CPU: one run per group and model kind x tap (AIM: kind x backbone x stage)
#   make rehearse FULL=1     every run of both paper grids, capped (a GPU machine); IMAGES=80 per split
#                            so that MG trains full batches of 64
#
# Results: $(RESULTS)/rehearsal, figures/rehearsal (every figure and table says REHEARSAL); stand-in
# data and weights under $(REHEARSE_DATA) and $(REHEARSE_WEIGHTS). Nothing is mixed with real results.

REHEARSE_DATA ?= data/rehearsal
REHEARSE_WEIGHTS ?= data/rehearsal-weights
FULL ?=
IMAGES ?= $(if $(FULL),80,4)
# CPU: two runs at once, one torch thread each
REHEARSE_JOBS ?= 2
REHEARSE_STAMP = $(REHEARSE_DATA)/.stamp-$(IMAGES)
REHEARSE_ENV = WEIGHTS_ROOT="$(abspath $(REHEARSE_WEIGHTS))"
# the environment was set up by this make (rehearse-data needs setup): sub-makes do not re-check it
SUBMAKE = $(MAKE) -o $(VENV)/.stamp VENV=$(VENV)

.PHONY: rehearse rehearse-data rehearse-check
$(REHEARSE_STAMP): | setup
	rm -f $(REHEARSE_DATA)/.stamp-*
	$(PY) -m rightfocus.experiments.rehearsal data $(REHEARSE_DATA) --images $(IMAGES)
	$(PY) -m rightfocus.experiments.rehearsal weights $(REHEARSE_WEIGHTS)
	touch $@
rehearse-data: $(REHEARSE_STAMP)

# `rightfocus check` on the stand-in tree, as `make mg` / `make aim` run it on real data (the count
# warnings are expected here; no step timing)
rehearse-check: rehearse-data
	$(PY) -m rightfocus check --paper mg --profile rehearsal --data-root $(REHEARSE_DATA) --weights-root "$(REHEARSE_WEIGHTS)" --results $(RESULTS) --no-measure
	$(PY) -m rightfocus check --paper aim --profile rehearsal --data-root $(REHEARSE_DATA) --weights-root "$(REHEARSE_WEIGHTS)" --results $(RESULTS) --no-measure

# CPU sample: both grids, then MG's ids through the CLI and AIM's through AIM's figures notebook (as
# `make aim` renders them), each id once
ifeq ($(FULL),)
rehearse: rehearse-check
	$(PY) -m rightfocus.experiments.rehearsal grid --paper mg --sample --results $(RESULTS) --data-root $(REHEARSE_DATA)
	$(PY) -m rightfocus.experiments.rehearsal grid --paper aim --sample --results $(RESULTS) --data-root $(REHEARSE_DATA)
	$(REHEARSE_ENV) OMP_NUM_THREADS=1 $(MAKE) -j$(REHEARSE_JOBS) -f $(RESULTS)/rehearsal/mg/grid.mk mg-runs PY="$(abspath $(PY))"
	$(REHEARSE_ENV) OMP_NUM_THREADS=1 $(MAKE) -j$(REHEARSE_JOBS) -f $(RESULTS)/rehearsal/aim/grid.mk aim-runs PY="$(abspath $(PY))"
	$(PY) -m rightfocus figures --profile rehearsal --results $(RESULTS) --only 'mg.*'
	$(SUBMAKE) aim-figures PROFILE=rehearsal RESULTS=$(RESULTS)
else
rehearse: rehearse-check
	$(SUBMAKE) mg PROFILE=rehearsal DATA_ROOT=$(REHEARSE_DATA) WEIGHTS_ROOT="$(abspath $(REHEARSE_WEIGHTS))" RESULTS=$(RESULTS)
	$(SUBMAKE) aim PROFILE=rehearsal DATA_ROOT=$(REHEARSE_DATA) WEIGHTS_ROOT="$(abspath $(REHEARSE_WEIGHTS))" RESULTS=$(RESULTS)
endif
