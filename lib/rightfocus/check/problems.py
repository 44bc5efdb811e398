"""One problem found by `rightfocus check`: a single line with what is wrong and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    """``level`` is `ERROR` (the grid cannot run: exit non-zero) or `WARNING` (it can, but check)."""

    level: str
    where: str  # e.g. "data voc2007/train", "weights", "disk", "device"
    what: str
    fix: str

    def line(self) -> str:
        tag = "ERROR  " if self.level == ERROR else "WARNING"
        return f"{tag} [{self.where}] {one_line(self.what)} -> fix: {one_line(self.fix)}"


def one_line(text: str) -> str:
    """Collapse a (multi-line) message to one line; a loader's "Expected layout:" block is dropped
    (the fix names where the release goes)."""
    text = str(text).split("Expected layout")[0]
    return " ".join(text.split()).rstrip(" .") or "(no message)"
