# Guidance beyond boxes (inventory ids ext.*): model-guidance runs guided by segmentation masks, a B-cos
# teacher's explanations or AIM's masks (`rightfocus.experiments.ext_grids`). Its runs read MG's and
# AIM's runs, so its demo groups wait for those groups' stamps and its paper-profile runs for the runs
# their mask sources name.
#
#   make ext PROFILE=paper DATA_ROOT=/data WEIGHTS_ROOT=/weights [-j N]   (after or beside `make mg` / `make aim`)

EXT_GRID_MK = $(RESULTS)/$(PROFILE)/ext/grid.mk

.PHONY: ext ext-grid ext-train
ext-grid: setup
	$(PY) -m rightfocus grid --paper ext --profile $(PROFILE) --results $(RESULTS) --data-root $(DATA_ROOT)

ext-train: ext-grid mg-grid aim-grid
	$(if $(WEIGHTS_ROOT),WEIGHTS_ROOT="$(WEIGHTS_ROOT)") $(MAKE) -f $(EXT_GRID_MK) -f $(MG_GRID_MK) -f $(AIM_GRID_MK) \
	  ext-runs PY="$(abspath $(PY))"

ext: ext-train
	$(PY) -m rightfocus figures --profile $(PROFILE) --results $(RESULTS) --only 'ext.*'

GRID_TARGETS += ext-grid
GRID_FRAGMENTS += $(EXT_GRID_MK)
RENDER_GOALS += $(addprefix render-ext.,$(RENDER_PARTS))
# the metric-suite ids (ext.metric_agreement*, ext.sanity) read MG's and AIM's runs as well: they render
# once both grids are trained, on one torch thread per rendering process (ext.sanity evaluates models)
$(addprefix render-ext.,$(RENDER_PARTS)): mg-runs aim-runs
render-ext.%: export OMP_NUM_THREADS := 1
