"""Model-guidance training: `train_one_epoch` / `evaluate` (engine), checkpoints and resume, and
`train_run` / `train_from_file` (runner), which the CLI and the notebooks call."""
