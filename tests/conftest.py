"""Suite-wide settings: tiny models run fastest (and most repeatably) on one torch thread, and
plots render off-screen."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
