# Beyond the papers: the explanation-metric ids (ext.metric_agreement, ext.metric_agreement_fig,
# ext.sanity) read MG's and AIM's runs, so they render once both grids are trained; `make demo`
# renders them beside the papers' ids, on one torch thread (~20 CPU-s measured on the demo results).
RENDER_GOALS += render-ext-metrics
.PHONY: render-ext-metrics
render-ext-metrics: mg-runs aim-runs
	OMP_NUM_THREADS=1 $(PY) -m rightfocus figures --profile $(PROFILE) --results $(RESULTS) --only 'ext.metric_agreement*' --only ext.sanity
