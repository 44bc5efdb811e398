"""What a run is, below every layer that trains, evaluates or plots it: its configuration and id
(`config`: `RunConfig`, `run_id`), the guidance signal it names (`mask_spec`) and its results on disk
(`store`: the results layout, atomic writes, checkpoints, metrics).

Training, the widgets, the figures and the grids all read these; none of them is imported here.
"""
