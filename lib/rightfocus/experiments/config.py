"""`rightfocus.experiments.config` is `rightfocus.runs.config` (the same module object; the name kept for
existing imports and notebooks)."""

import sys

from rightfocus.runs import config as _module

sys.modules[__name__] = _module
