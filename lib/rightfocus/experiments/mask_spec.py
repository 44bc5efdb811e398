"""`rightfocus.experiments.mask_spec` is `rightfocus.runs.mask_spec` (the same module object; the name kept for
existing imports and notebooks)."""

import sys

from rightfocus.runs import mask_spec as _module

sys.modules[__name__] = _module
