"""`rightfocus.experiments.store` is `rightfocus.runs.store` (the same module object; the name kept for
existing imports and notebooks)."""

import sys

from rightfocus.runs import store as _module

sys.modules[__name__] = _module
