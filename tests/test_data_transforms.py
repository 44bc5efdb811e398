"""Joint transforms, box utilities, encodings and annotation budgets. Properties are checked with
hypothesis against the exact geometry of random masks: a box must follow the flip / crop / resize of
its object, so every object pixel of the transformed mask stays inside the transformed box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms import Normalize

from rightfocus.data import (TrainTransform, annotation_subset, boxes_to_masks, class_masks, clip_boxes,
                             collate, dilate_boxes, encode, hflip, load_dataset, resize, resized_crop,
                             round_boxes)
from rightfocus.data.synthetic import make


def _tight(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@st.composite
def object_image(draw):
    """A random image with one object: a random subset of a random rectangle (so the object need not
    fill its box), its tight box as the ground truth."""
    h, w = draw(st.integers(6, 40)), draw(st.integers(6, 40))
    x0, y0 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
    x1, y1 = draw(st.integers(x0 + 1, w)), draw(st.integers(y0 + 1, h))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    seg = torch.zeros((h, w), dtype=torch.long)
    region = (torch.rand((y1 - y0, x1 - x0), generator=g) < 0.6).long()
    region[draw(st.integers(0, y1 - y0 - 1)), draw(st.integers(0, x1 - x0 - 1))] = 1
    seg[y0:y1, x0:x1] = region
    box = _tight(seg > 0)
    image = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    return image, torch.tensor([[2.0, *box]]), seg


def _inside(seg: torch.Tensor, boxes: torch.Tensor) -> bool:
    inside = torch.zeros_like(seg, dtype=torch.bool)
    for _, x0, y0, x1, y1 in boxes.tolist():
        inside[int(y0):int(y1), int(x0):int(x1)] = True
    return bool(inside[seg > 0].all())


@settings(max_examples=60, deadline=None)
@given(object_image())
def test_hflip_moves_box_exactly(sample):
    image, boxes, seg = sample
    im2, b2, s2 = hflip(image, boxes, seg)
    assert torch.equal(im2.flip(-1), image) and torch.equal(s2.flip(-1), seg)
    assert tuple(int(v) for v in b2[0, 1:].tolist()) == _tight(s2 > 0)
    assert torch.equal(hflip(im2, b2, s2)[1], boxes)  # an involution


@settings(max_examples=60, deadline=None)
@given(object_image(), st.integers(4, 48), st.integers(4, 48))
def test_resize_keeps_object_inside_box(sample, out_h, out_w):
    image, boxes, seg = sample
    im2, b2, s2 = resize(image, boxes, seg, (out_h, out_w))
    assert im2.shape == (3, out_h, out_w) and s2.shape == (out_h, out_w)
    b2, _ = clip_boxes(round_boxes(b2, "outward"), out_w, out_h)
    assert _inside(s2, b2)
    # truncation (the MG reference's rounding) loses at most one pixel row / column per side
    bt = round_boxes(resize(image, boxes, seg, (out_h, out_w))[1], "truncate")
    assert (bt[:, 1:] - b2[:, 1:]).abs().max() <= 1


@settings(max_examples=80, deadline=None)
@given(object_image(), st.data())
def test_crop_moves_box_with_object(sample, data):
    image, boxes, seg = sample
    h, w = seg.shape
    top, left = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    ch, cw = data.draw(st.integers(1, h - top)), data.draw(st.integers(1, w - left))
    size = (data.draw(st.integers(4, 40)), data.draw(st.integers(4, 40)))
    im2, b2, s2 = resized_crop(image, boxes, seg, top, left, ch, cw, size)
    b2, _ = clip_boxes(round_boxes(b2, "outward"), size[1], size[0])
    assert _inside(s2, b2)
    if (s2 > 0).any():
        assert len(b2) == 1
    # without resizing, the cropped box is exactly the crop of the original box
    im3, b3, s3 = resized_crop(image, boxes, seg, top, left, ch, cw, (ch, cw))
    assert torch.equal(s3, seg[top:top + ch, left:left + cw])
    b3, _ = clip_boxes(b3, cw, ch)
    tight = _tight(s3 > 0)
    if tight is not None:
        x0, y0, x1, y1 = b3[0, 1:].tolist()
        assert x0 <= tight[0] and y0 <= tight[1] and x1 >= tight[2] and y1 >= tight[3]


def test_train_transform_moves_boxes_with_masks_in_a_dataset(tmp_path):
    root = make("cub", tmp_path / "cub", seed=1, per_class=4, num_classes=3)
    ds = load_dataset("cub", root, "train", size=32, train_transform={"scale": (0.3, 1.0)}, box_rounding="outward")
    torch.manual_seed(0)
    flipped_or_cropped = 0
    plain = load_dataset("cub", root, "train", size=32)
    for _ in range(3):
        for i in range(len(ds)):
            s = ds[i]
            assert s["image"].shape == (3, 32, 32) and s["seg"].shape == (32, 32)
            assert _inside(s["seg"], s["boxes"])
            flipped_or_cropped += not torch.equal(s["image"], plain[i]["image"])
    assert flipped_or_cropped > 0


def test_train_transform_spec_errors():
    from rightfocus.data.transforms import make_train_transform

    with pytest.raises(ValueError, match="unknown train_transform keys"):
        make_train_transform({"scal": (0.1, 1)})
    assert make_train_transform(True) == TrainTransform() and make_train_transform(False) is None
    assert make_train_transform({"flip": 0.0, "scale": [0.5, 1.0]}).scale == (0.5, 1.0)


def test_dilate_boxes_hand_values():
    boxes = torch.tensor([[0.0, 10, 20, 30, 30], [1.0, 0, 0, 5, 9], [2.0, 20, 20, 34, 27]])
    out = dilate_boxes(boxes, 0.25, (40, 40))
    # box 0: w=20 -> 5 px each side; h=10 -> int(2.5)=2; box 1: w=5 -> int(1.25)=1, h=9 -> 2; clamped at 0;
    # box 2: w=14 -> int(3.5)=3 (not rounded up), h=7 -> int(1.75)=1
    assert out.tolist() == [[0.0, 5, 18, 35, 32], [1.0, 0, 0, 6, 11], [2.0, 17, 19, 37, 28]]
    assert dilate_boxes(boxes, 0.5, (31, 32))[0].tolist() == [0.0, 0, 15, 32, 31]
    assert torch.equal(dilate_boxes(boxes, 0.0, (40, 40)), boxes)
    with pytest.raises(ValueError, match=">= 0"):
        dilate_boxes(boxes, -0.1, (40, 40))


def test_boxes_to_masks_hand_values():
    b = torch.tensor([[0.0, 1, 1, 3, 2], [1.0, 0, 0, 1, 1], [0.0, 2, 2, 4, 4]])
    m = boxes_to_masks(b, 0, (4, 4))
    expect = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.float32)
    assert torch.equal(m, expect)
    batch = boxes_to_masks([b, torch.zeros((0, 5))], torch.tensor([1, 0]), (4, 4), invert=[False, True])
    assert batch.shape == (2, 4, 4) and batch[0].sum() == 1 and batch[0, 0, 0] == 1 and batch[1].sum() == 16
    km = class_masks(b, 3, (4, 4))
    assert torch.equal(km[0], expect) and km[1].sum() == 1 and km[2].sum() == 0
    assert torch.equal(class_masks(b, 3, (4, 4), invert=True), 1 - km)
    both = class_masks([b, torch.zeros((0, 5))], 3, (4, 4))
    assert both.shape == (2, 3, 4, 4) and torch.equal(both[0], km) and both[1].sum() == 0
    with pytest.raises(ValueError, match="one class per image"):
        boxes_to_masks([b], torch.tensor([0, 1]), (4, 4))


def test_clip_boxes_counts_and_drops():
    b = torch.tensor([[0.0, -3, 2, 5, 5], [1.0, 1, 1, 2, 2], [2.0, 12, 0, 15, 3]])
    out, changed = clip_boxes(b, 10, 10)
    assert changed == 2 and out.tolist() == [[0.0, 0, 2, 5, 5], [1.0, 1, 1, 2, 2]]


def test_encode_matches_torchvision_normalize():
    x = torch.rand(2, 3, 5, 7)
    ref = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(x)
    assert torch.allclose(encode(x, "imagenet"), ref, atol=1e-6)
    b = encode(x, "bcos")
    assert b.shape == (2, 6, 5, 7) and torch.equal(b[:, :3], x) and torch.allclose(b[:, 3:], 1 - x)
    assert torch.equal(encode(x[0], "none"), x[0]) and encode(x[0], "bcos").shape == (6, 5, 7)
    with pytest.raises(ValueError, match="unknown input encoding"):
        encode(x, "clip")
    with pytest.raises(ValueError, match="RGB"):
        encode(torch.rand(2, 6, 4, 4), "bcos")


@settings(deadline=None)
@given(st.integers(0, 300), st.floats(0, 1), st.integers(0, 10))
def test_annotation_subset_size_and_nesting(n, frac, seed):
    keep = annotation_subset(n, frac, seed)
    assert keep.dtype == bool and keep.shape == (n,) and keep.sum() == int(frac * n)
    bigger = annotation_subset(n, min(1.0, frac + 0.1), seed)
    assert not (keep & ~bigger).any()
    assert np.array_equal(keep, annotation_subset(n, frac, seed))


def test_annotation_fraction_in_dataset(tmp_path):
    root = make("imagefolder", tmp_path / "if", seed=0, n_train=5, n_val=1, num_classes=2)
    full = load_dataset("imagefolder", root, "train", loc_csv=True)
    part = load_dataset("imagefolder", root, "train", loc_csv=True, annotation_fraction=0.3, annotation_seed=4)
    sized = load_dataset("imagefolder", root, "train", loc_csv=True, annotation_fraction=0.3, annotation_seed=4, size=16)
    none = load_dataset("imagefolder", root, "train", loc_csv=True, annotation_fraction=0.0)
    kept = [part[i]["has_boxes"] for i in range(len(part))]
    assert sum(kept) == int(0.3 * len(part)) == 3
    for i in range(len(part)):
        s, f = part[i], full[i]
        assert torch.equal(s["labels"], f["labels"])  # labels are never withheld
        assert torch.equal(s["boxes"], f["boxes"]) if s["has_boxes"] else s["boxes"].shape == (0, 5)
        assert none[i]["boxes"].shape == (0, 5) and not none[i]["has_boxes"]
    other_seed = load_dataset("imagefolder", root, "train", loc_csv=True, annotation_fraction=0.3, annotation_seed=5)
    assert [other_seed[i]["has_boxes"] for i in range(len(part))] != kept
    batch = collate([sized[i] for i in range(4)])
    assert batch["has_boxes"].tolist() == kept[:4]


def test_dilation_only_for_training_and_applied(tmp_path):
    root = make("cub", tmp_path / "c", seed=0, per_class=3, num_classes=2)
    plain = load_dataset("cub", root, "train", size=40)
    dil = load_dataset("cub", root, "train", size=40, dilation=0.5)
    for i in range(len(plain)):
        assert torch.equal(dil[i]["boxes"], dilate_boxes(plain[i]["boxes"], 0.5, (40, 40)))
    with pytest.raises(ValueError, match="dilation"):
        load_dataset("cub", root, "test", dilation=0.1)


def test_cache_gives_identical_samples(tmp_path):
    root = make("voc2007", tmp_path / "v", seed=0, n_train=6, n_val=2, n_test=2)
    a = load_dataset("voc2007", root, "train", size=24)
    b = load_dataset("voc2007", root, "train", size=24, cache=True).preload()
    assert len(b._cache) == len(b)
    for i in range(len(a)):
        sa, sb = a[i], b[i]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k])), k


def test_center_crop_equals_torchvision_resize_and_center_crop_with_box_and_mask(tmp_path):
    """An evaluation centre crop (AIM: shorter side to 224 / 0.875 = 256, then 224 x 224) of a 500 x 375
    image equals torchvision's Resize(256) + CenterCrop(224) pixel for pixel; its box equals
    torchvision.transforms.v2's box through the same two transforms (then rounded as the dataset
    rounds), its segmentation torchvision's nearest-exact resize + centre crop of the mask."""
    from PIL import Image
    from torchvision import tv_tensors
    from torchvision.transforms import CenterCrop, InterpolationMode, Resize, v2
    from torchvision.transforms import functional as TF

    from rightfocus.data.base import BoxDataset, Record

    rng = np.random.default_rng(0)
    path = tmp_path / "im.png"
    Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(path)
    seg = np.zeros((375, 500), dtype=np.int64)
    seg[50:200, 60:300] = (rng.random((150, 240)) < 0.7).astype(np.int64)
    box = [0, 60.0, 50.0, 300.0, 200.0]  # class, x0, y0, x1, y1 (the mask's extent)
    rec = Record(path, [0], np.array([box], np.float32), seg=lambda: seg, size=(375, 500))
    ds = BoxDataset([rec], ["bird"], name="t", split="test", size=224, center_crop=0.875)
    sample = ds[0]

    pil = Image.open(path).convert("RGB")
    expected = TF.pil_to_tensor(CenterCrop(224)(Resize(256)(pil))).float() / 255.0
    assert sample["image"].shape == (3, 224, 224)
    assert torch.equal(sample["image"], expected)

    boxes = tv_tensors.BoundingBoxes([box[1:]], format="XYXY", canvas_size=(375, 500))
    moved = v2.Compose([v2.Resize(256), v2.CenterCrop(224), v2.ClampBoundingBoxes()])(boxes)
    assert torch.equal(sample["boxes"][:, 1:], torch.trunc(moved.as_subclass(torch.Tensor)))

    mask = TF.center_crop(TF.resize(torch.from_numpy(seg)[None], [256, 341], InterpolationMode.NEAREST_EXACT), [224, 224])
    assert torch.equal(sample["seg"], mask[0])
    assert sample["seg"].sum() > 0 and sample["boxes"][0, 1] == 0  # the crop cut the box's left part

    # TravelingBirds' 299: shorter side 342 (torchvision's Inception-v3 evaluation preset)
    ds299 = BoxDataset([rec], ["bird"], name="t", split="test", size=299, center_crop=0.875)
    expected = TF.pil_to_tensor(CenterCrop(299)(Resize(342)(pil))).float() / 255.0
    assert torch.equal(ds299[0]["image"], expected)
    with pytest.raises(ValueError, match="center_crop"):
        BoxDataset([rec], ["bird"], name="t", split="test", size=None, center_crop=0.875)
