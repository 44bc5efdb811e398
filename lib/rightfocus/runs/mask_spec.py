"""The guidance signals a model-guidance run can be trained with, as data: the registry of mask sources
and the syntax of ``RunConfig.mask_source`` (``name`` or ``name:<argument>``). What each source does
and the code that builds the masks: `rightfocus.training.mask_sources`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


#: where mask-based guidance reads annotations from (boxes / segmentation) or none ("annotation-free")
ANNOTATION_FREE = ("teacher", "aim")


@dataclass(frozen=True)
class SourceKind:
    """One registered mask source: whether it takes an argument and what it is."""

    name: str
    argument: str | None  # what follows "name:" (None: nothing may follow)
    help: str


MASK_SOURCES: dict[str, SourceKind] = {
    "boxes": SourceKind("boxes", None, "union of the class's boxes (the papers' guidance)"),
    "dilated-boxes": SourceKind("dilated-boxes", "p", "boxes grown by int(p * box side) per side, p >= 0"),
    "segmentation": SourceKind("segmentation", None, "the class's pixels in the dataset's segmentation"),
    "teacher": SourceKind("teacher", "run", "a trained model's input attribution maps (soft targets)"),
    "aim": SourceKind("aim", "run", "an AIM run's merged masks, upsampled (soft, class-agnostic)"),
}


def parse_mask_source(spec: str) -> tuple[str, str | None]:
    """``"teacher:abc"`` -> ("teacher", "abc"); errors name the registered sources."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"mask_source must be a string such as 'boxes' or 'teacher:<run id>', got {spec!r}")
    name, _, arg = spec.partition(":")
    kind = MASK_SOURCES.get(name)
    usage = ", ".join(k if v.argument is None else f"{k}:<{v.argument}>" for k, v in MASK_SOURCES.items())
    if kind is None:
        raise ValueError(f"unknown mask_source {spec!r}; use one of {usage}")
    if (kind.argument is None) != (arg == "") or (kind.argument is not None and not arg):
        want = name if kind.argument is None else f"{name}:<{kind.argument}>"
        raise ValueError(f"mask_source {spec!r} is malformed: write {want!r}")
    if name == "dilated-boxes":
        try:
            p = float(arg)
        except ValueError:
            p = -1.0
        if not p >= 0:
            raise ValueError(f"mask_source {spec!r}: the dilation must be a number >= 0, e.g. dilated-boxes:0.1")
    return name, (arg or None)


def check_mask_source(config: Any) -> None:
    """RunConfig validation of ``mask_source`` (called by `RunConfig.validate`)."""
    name, _ = parse_mask_source(config.mask_source)
    if name == "boxes":
        return
    if config.is_baseline or config.paper != "mg":
        raise ValueError(f"RunConfig.mask_source={config.mask_source!r} applies to guided model-guidance runs "
                         "(paper 'mg' with method / tap / loss); leave it 'boxes' here")
    if config.dilation:
        raise ValueError(f"RunConfig.dilation={config.dilation} dilates boxes; with mask_source="
                         f"{config.mask_source!r} set dilation 0 (or use mask_source 'dilated-boxes:<p>')")
    if name in ANNOTATION_FREE and config.annotation_fraction != 1.0:
        raise ValueError(f"RunConfig.annotation_fraction={config.annotation_fraction}: mask_source "
                         f"{config.mask_source!r} reads no annotation, so it has no budget; use 1.0")


def referenced_run(spec: str) -> str | None:
    """The run a teacher / AIM source reads (its id or folder as written), else None."""
    name, arg = parse_mask_source(spec)
    return arg if name in ANNOTATION_FREE else None
