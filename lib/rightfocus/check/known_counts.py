"""What the real dataset releases hold, as data: the counts `rightfocus check` compares a DATA_ROOT
against, each with its source. Only counts known for sure are listed; everything else is checked for
presence only, and `presence_only` says what that is (no count is guessed).

A count that differs from the release is a warning (a different version, a partial download or a
stand-in tree), never an error: the loaders can still read the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KnownCounts:
    """One release. ``images`` / ``objects``: split (the loader's split name) -> count; ``groups``:
    split -> per-group image counts (None = not known); ``classes``: number of classes."""

    release: str
    source: str
    images: dict[str, int] = field(default_factory=dict)
    objects: dict[str, int] = field(default_factory=dict)
    objects_what: str = ""
    groups: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    classes: int | None = None
    presence_only: str = ""
    #: how to put the release in place (the fix printed when it is missing)
    get: str = ""


#: key: the grid's dataset name (Waterbirds: ``waterbirds-<confounder>``; see `counts_key`)
KNOWN: dict[str, KnownCounts] = {
    "voc2007": KnownCounts(
        release="PASCAL VOC 2007",
        source="VOC2007 development kit documentation, Table 1 (objects: non-difficult only)",
        images={"train": 2501, "val": 2510, "trainval": 5011, "test": 4952},
        objects={"train": 6301, "val": 6307, "trainval": 12608, "test": 12032},
        objects_what="non-difficult objects",
        classes=20,
        get="extract VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar into the dataset folder "
            "(<folder>/VOCdevkit/VOC2007/...)",
    ),
    "coco2014": KnownCounts(
        release="MS COCO 2014",
        source="COCO 2014 release (Lin et al. 2014; train2014 82,783 / val2014 40,504 images)",
        # the MG "test" split is all of val2014; "train2014" is the whole train folder
        images={"test": 40504, "train2014": 82783},
        classes=80,
        presence_only="the MG train/val split files (subsets of train2014, NN-Explainer) and the "
                      "annotation counts: not known here, checked for presence only",
        get="extract train2014.zip, val2014.zip and annotations_trainval2014.zip (cocodataset.org) into the "
            "dataset folder and add splits/{train,val}.txt (the NN-Explainer split of train2014)",
    ),
    "waterbirds-95": KnownCounts(
        release="Waterbirds (95 %, Sagawa et al. 2020)",
        source="the Waterbirds release (waterbird_complete95_forest2water2 metadata.csv); groups 2*y+place",
        images={"train": 4795, "val": 1199, "test": 5794},
        groups={"train": (3498, 184, 56, 1057), "val": (467, 466, 133, 133), "test": (2255, 2255, 642, 642)},
        classes=2,
        get="extract waterbird_complete95_forest2water2.tar.gz (Sagawa et al.) into the dataset folder, "
            "with CUB_200_2011/ beside it (boxes, segmentations)",
    ),
    "waterbirds-100": KnownCounts(
        release="Waterbirds-100 (Petryk et al. 2022)",
        source="split sizes as Waterbirds-95 (both split CUB's 5,994 train images into train/val and "
               "keep its 5,794 test images; they differ only in the train confounder); "
               "groups 1 and 2 are empty in train by definition of 100 %",
        images={"train": 4795, "val": 1199, "test": 5794},
        groups={"train": (None, 0, 0, None)},
        classes=2,
        presence_only="val/test group sizes: not known here",
        get="extract waterbird_complete100_forest2water2 (Petryk et al. 2022) into the dataset folder, "
            "with CUB_200_2011/ beside it (boxes, segmentations)",
    ),
    "cub": KnownCounts(
        release="CUB-200-2011",
        source="Wah et al. 2011, CUB-200-2011 technical report (11,788 images: 5,994 train / 5,794 test)",
        images={"train": 5994, "test": 5794},
        objects={"train": 5994, "test": 5794},
        objects_what="boxes (one per image)",
        classes=200,
        get="extract CUB_200_2011.tgz (and segmentations.tgz) into the dataset folder",
    ),
    "travelingbirds": KnownCounts(
        release="TravelingBirds (Koh et al. 2020)",
        source="the TravelingBirds release: CUB_fixed/{train,test} hold every CUB image; CUB train images are read from "
               "the train tree, CUB test images from the test tree (CUB: 5,994 / 5,794)",
        images={"train": 5994, "test": 5794},
        objects={"train": 5994, "test": 5794},
        objects_what="boxes (CUB's, one per image)",
        classes=200,
        get="extract CUB_fixed.tar.gz (Koh et al., Concept Bottleneck Models release) into the dataset "
            "folder, with CUB_200_2011/ inside or beside it",
    ),
    "imagenet100": KnownCounts(
        release="ImageNet-100 (ILSVRC-2012 subset)",
        source="ILSVRC-2012 (Russakovsky et al. 2015): 50 validation images per class",
        images={"val": 5000},
        classes=100,
        presence_only="train images (~1,300 per class; class lists differ between ImageNet-100 "
                      "versions) and ILSVRC boxes: checked for presence only",
        get="copy the 100 classes' folders of ILSVRC-2012 train/ and val/ (val sorted into <wnid>/) into "
            "the dataset folder",
    ),
    "imagewoof": KnownCounts(
        release="ImageWoof (fast.ai)",
        source="fast.ai ImageWoof: 10 dog breeds of ImageNet",
        classes=10,
        presence_only="image counts depend on the ImageWoof version: checked for presence only",
        get="extract imagewoof2 (fast.ai) into the dataset folder ({train,val}/<wnid>/)",
    ),
    "hardimagenet": KnownCounts(
        release="Hard-ImageNet (Moayeri et al. 2022)",
        source="Moayeri et al. 2022: 15 ImageNet classes with object masks",
        classes=15,
        presence_only="image and mask counts: not known here, checked for presence only",
        get="put the Hard-ImageNet masks into <folder>/{train,val}/ and the ImageNet images of its 15 "
            "classes into <folder>/imagenet/{train,val}/<wnid>/",
    ),
}


def counts_key(dataset: str, loader: str, options: dict) -> str:
    """The `KNOWN` key of the grid's `dataset` read by `loader` with `options` (Waterbirds: by the
    confounder, 100 being the loader's default, as MG's runs read it)."""
    if loader == "waterbirds":
        return f"waterbirds-{int(options.get('confounder', 100))}"
    return dataset
