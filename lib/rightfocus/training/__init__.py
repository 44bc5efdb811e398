"""Training for both papers: one run engine (`engine.run`: lock, build, resume, epochs, selection,
test, `done`) and one task per paper (`mg_task.MgTask`, `aim_loop.AimTask`); `runner.train_run` /
`train_runs` / `train_from_file` are what the CLI and the notebooks call."""
