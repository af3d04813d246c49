"""Detection: the hand-written blocks against hand-computed cases, COCO I/O, the embedded
scenes, box-aware augmentation, COCOeval scoring, the SM-NAS space and detectors, and the
sm-nas search (one generation of each stage) through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.data.detection import (
    DIGIT_NAMES,
    DetectionSplit,
    make_digit_scenes,
    read_coco,
    write_coco,
)
from nasforge.errors import ArchError, DataError, SearchError
from nasforge.nn.det_ops import (
    BoxCoder,
    ConvWS2d,
    batched_nms,
    box_iou,
    generalized_iou_loss,
    level_anchors,
    match,
    nms,
    sigmoid_focal_loss,
)
from nasforge.nn.smnas import EndToEnd, build_smnas
from nasforge.spaces import get_space
from nasforge.spaces.smnas import SmNasArch, check_code
from nasforge.tasks import get_task
from nasforge.tasks.detection import coco_map, jitter_flip

T = torch.tensor


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread: two threads on a loaded two-core machine wait on each other."""


# -- blocks ---------------------------------------------------------------------------------


def test_box_iou_and_giou_hand_cases() -> None:
    a = T([[0.0, 0, 2, 2]])
    b = T([[1.0, 1, 3, 3], [2.0, 2, 4, 4], [0.0, 0, 2, 2]])
    assert torch.allclose(box_iou(a, b), T([[1 / 7, 0.0, 1.0]]))
    # Disjoint boxes 0..1 and 2..3 (unit squares on a diagonal): IoU 0, hull 9, union 2.
    g = generalized_iou_loss(T([[0.0, 0, 1, 1]]), T([[2.0, 2, 3, 3]]))
    assert torch.allclose(g, T([1 + 7 / 9]))


def test_box_coder_hand_case_and_round_trip() -> None:
    ref = T([[0.0, 0, 10, 20]])
    box = T([[5.0, 0, 15, 40]])  # centre moves +5 x, +10 y; width x1, height x2
    d = BoxCoder().encode(box, ref)
    assert torch.allclose(d, T([[0.5, 0.5, 0.0, math.log(2)]]))
    assert torch.allclose(BoxCoder().decode(d, ref), box)
    w = BoxCoder((10.0, 10.0, 5.0, 5.0))
    assert torch.allclose(w.decode(w.encode(box, ref), ref), box, atol=1e-5)


def test_anchors_hand_case() -> None:
    a = level_anchors(8, 1, 2, (32.0,), (1.0, 2.0))
    # ratio 2 (h/w): w = 32/sqrt2 = 22.6 -> half 11.3 -> round; second location shifted 8.
    assert a.tolist() == [
        [-16, -16, 16, 16],
        [-11, -23, 11, 23],
        [-8, -16, 24, 16],
        [-3, -23, 19, 23],
    ]


def test_nms_keeps_the_best_of_each_overlapping_group() -> None:
    boxes = T([[0.0, 0, 10, 10], [1.0, 1, 10, 10], [20.0, 20, 30, 30], [0.0, 0, 10, 9]])
    scores = T([0.5, 0.9, 0.8, 0.7])
    # IoU(b1, b0) = 81/100 > 0.5 -> b0 out; IoU(b1, b3) = 72/99 > 0.5 -> b3 out.
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    # At 0.85 only IoU(b3, b0) = 90/100 suppresses; at 0.95 nothing does.
    assert nms(boxes, scores, 0.85).tolist() == [1, 2, 3]
    assert nms(boxes, scores, 0.95).tolist() == [1, 2, 3, 0]
    assert nms(boxes, scores, 0.5, max_keep=1).tolist() == [1]
    # Per class: the same overlapping boxes survive when their classes differ.
    assert sorted(batched_nms(boxes, scores, T([0, 1, 0, 2]), 0.5).tolist()) == [0, 1, 2, 3]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_matcher_thresholds_and_low_quality_matches() -> None:
    iou = T([[0.6, 0.45, 0.1, 0.3], [0.2, 0.3, 0.35, 0.1]])
    m = match(iou)
    # 0.6 -> gt0; 0.45 ignored (-2); 0.35 below 0.4 but gt1's best -> matched; 0.3 -> -1.
    assert m.tolist() == [0, -2, 1, -1]
    assert match(iou, allow_low_quality=False).tolist() == [0, -2, -1, -1]


def test_focal_loss_formula() -> None:
    x, y = T([2.0, -1.0]), T([1.0, 0.0])
    p = torch.sigmoid(x)
    want = -0.25 * (1 - p[0]) ** 2 * torch.log(p[0]) - 0.75 * p[1] ** 2 * torch.log(1 - p[1])
    assert torch.allclose(sigmoid_focal_loss(x, y), want)


def test_weight_standardised_conv() -> None:
    torch.manual_seed(0)
    conv = ConvWS2d(3, 4, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 5, 5)
    w = conv.weight.reshape(4, -1)
    ws = ((w - w.mean(1, keepdim=True)) / (w.std(1, keepdim=True) + 1e-5)).reshape(
        conv.weight.shape
    )
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, ws, padding=1), atol=1e-5)
    # Scaling the raw weights does not change the output (the point of WS; up to eps).
    with torch.no_grad():
        conv.weight.mul_(7.0)
    assert torch.allclose(
        conv(x), torch.nn.functional.conv2d(x, ws, padding=1), rtol=1e-3, atol=1e-3
    )


# -- data -----------------------------------------------------------------------------------


def test_digit_scenes_are_deterministic_real_and_boxed() -> None:
    a = make_digit_scenes(6, seed=3)
    b = make_digit_scenes(6, seed=3)
    c = make_digit_scenes(6, seed=4)
    assert torch.equal(a.images, b.images) and all(
        torch.equal(x, y) for x, y in zip(a.boxes, b.boxes, strict=True)
    )
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (6, 3, 64, 64) and a.num_boxes >= 6
    for img, boxes, labels in zip(a.images, a.boxes, a.labels, strict=True):
        assert ((labels >= 0) & (labels <= 9)).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
        assert ((boxes[:, 2:] - boxes[:, :2]) >= 2).all()
        # The background is a photograph: far from flat.
        assert img.float().std() > 10
    with pytest.raises(DataError, match="part must be"):
        make_digit_scenes(1, part="val")


def test_coco_round_trip(tmp_path: Path) -> None:
    split = make_digit_scenes(3, seed=1, part="valid")
    path = write_coco(split, DIGIT_NAMES, tmp_path)
    doc = json.loads(path.read_text())
    assert {c["name"] for c in doc["categories"]} == set(DIGIT_NAMES)
    ann = doc["annotations"][0]
    b = split.boxes[0][0].tolist()
    assert ann["bbox"] == pytest.approx([b[0], b[1], b[2] - b[0], b[3] - b[1]])
    assert ann["category_id"] == int(split.labels[0][0]) + 1
    back, cats = read_coco(path)
    assert cats == DIGIT_NAMES and back.image_ids == split.image_ids
    assert torch.equal(back.images, split.images)  # PNG is lossless
    for x, y, lx, ly in zip(back.boxes, split.boxes, back.labels, split.labels, strict=True):
        assert torch.allclose(x, y) and torch.equal(lx, ly)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="not a COCO annotation file"):
        read_coco(tmp_path / "bad.json")


def test_box_aware_augmentation() -> None:
    img = torch.zeros(3, 10, 10)
    img[:, 2:4, 1:3] = 1.0  # the object: rows 2-3, columns 1-2
    boxes, labels = T([[1.0, 2, 3, 4]]), T([5])
    g = torch.Generator().manual_seed(0)
    out, b, lab = jitter_flip(img, boxes, labels, g, jitter=(1.0, 1.0), flip=False)
    assert torch.equal(out, img) and torch.equal(b, boxes) and lab.tolist() == [5]
    # Flip: the box is mirrored with the pixels (found by trying seeds until one flips).
    for seed in range(20):
        out, b, _ = jitter_flip(
            img, boxes, labels, torch.Generator().manual_seed(seed), jitter=(1.0, 1.0), flip=True
        )
        if not torch.equal(out, img):
            break
    assert torch.equal(out, img.flip(-1)) and b.tolist() == [[7.0, 2, 9, 4]]
    assert out[:, 2:4, 7:9].eq(1).all()
    # Scale x2: the box doubles and moves with the random crop; kept boxes sit on the ink,
    # boxes cropped to under half their area are dropped.
    kept = 0
    for seed in range(12):
        out, b, lab = jitter_flip(
            img, boxes, labels, torch.Generator().manual_seed(seed), jitter=(2.0, 2.0), flip=False
        )
        assert out.shape == img.shape and len(b) == len(lab) <= 1
        if len(b):
            kept += 1
            x1, y1, x2, y2 = (round(v) for v in b[0].tolist())
            assert (x2 - x1) * (y2 - y1) >= 8  # at least half of the 4 x 4 scaled box
            assert out[0, y1:y2, x1:x2].mean() > 0.5 > out[0].mean()
    assert kept > 0


def test_cocoeval_scores() -> None:
    split = make_digit_scenes(4, seed=2, part="test")

    def dets(shift: float) -> list[dict]:
        return [
            {
                "image_id": i,
                "category_id": int(lab) + 1,
                "bbox": [b[0] + shift, b[1], b[2] - b[0], b[3] - b[1]],
                "score": 0.9,
            }
            for i, boxes, labels in zip(split.image_ids, split.boxes, split.labels, strict=True)
            for b, lab in zip(boxes.tolist(), labels.tolist(), strict=True)
        ]

    perfect = coco_map(split, DIGIT_NAMES, dets(0.0))
    assert perfect["map"] == pytest.approx(100.0) and perfect["ap50"] == pytest.approx(100.0)
    off = coco_map(split, DIGIT_NAMES, dets(3.0))
    assert off["map"] < 100.0
    assert coco_map(split, DIGIT_NAMES, []) == {"map": 0.0, "ap50": 0.0}


# -- space and detectors ----------------------------------------------------------------------


def test_space_strings_and_vega_mutations() -> None:
    space = get_space("smnas")
    arch = space.from_string("backbone=r18,width=16,neck=fpn-p2p4,head=retina,res=48")
    assert arch == SmNasArch("11-21-21-21", 16, "fpn-p2p4", "retina", 48)
    assert space.from_string(space.to_string(arch)) == arch
    rng = np.random.default_rng(0)
    for _ in range(30):
        child = space.mutate_backbone(arch, rng)
        groups = child.backbone.split("-")
        # Insert/remove/swap never add or drop a stride-2 block: strides stay 4/8/16/32.
        assert [g.count("2") for g in groups] == [0, 1, 1, 1] and all(groups)
        arch = child
    with pytest.raises(ArchError, match="stage 2 has 2 stride-2 blocks"):
        check_code("11-22-21-21")
    with pytest.raises(ArchError, match="neck 'bifpn'"):
        space.from_string("backbone=r18,width=16,neck=bifpn,head=retina,res=48")
    assert len(space.structural_grid()) == 3 * 3 * 2 * 3
    assert space.encode(arch).shape == space.encode(space.sample(rng)).shape


@pytest.mark.parametrize(
    ("neck", "head"), [("none", "retina"), ("fpn-p2p4", "fcos"), ("fpn-p3p5", "retina")]
)
def test_detectors_train_and_detect_in_input_pixels(neck: str, head: str) -> None:
    torch.manual_seed(0)
    net = build_smnas(
        SimpleNamespace(backbone="1-2-2-2", width=8, neck=neck, head=head, resolution=32),
        num_classes=10,
    )
    x = torch.randn(2, 3, 64, 64)
    targets = [
        {"boxes": T([[10.0, 12, 30, 40]]), "labels": T([3])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    out = net(x)
    loss = net.loss(out, targets)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(p.grad is not None for p in net.head.parameters())
    net.eval()
    with torch.no_grad():
        res = EndToEnd(net)(x)
    assert len(res) == 2
    for r in res:
        assert r["boxes"].shape[1] == 4 and len(r["boxes"]) <= 100
        if len(r["boxes"]):
            assert r["boxes"].max() <= 64 + 1e-4 and r["boxes"].min() >= 0


def test_training_lowers_the_detection_loss() -> None:
    from nasforge.nn import build_network
    from nasforge.train import Trainer, get_recipe, set_seed

    task = get_task("detection-digits")
    data = task.load(seed=0, limit=8)
    set_seed(0)
    arch = get_space("smnas").from_string("backbone=r10,width=8,neck=fpn-p2p4,head=retina,res=32")
    net = build_network("smnas", arch, io=task.network_io(data))
    recipe = get_recipe("smnas-det", epochs=2, batch_size=4)
    res = Trainer(recipe, task=task).fit(net, data, seed=0, eval_splits=[])
    losses = [r.train_loss for r in res.epochs]
    assert res.status == "ok" and losses[-1] < losses[0]
    # Evaluation (mAP, AP50, loss on a split) is exercised by the search test below.


# -- the search through the CLI ---------------------------------------------------------------


def test_sm_nas_search_one_generation_of_each_stage_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = [
        "search",
        "--task",
        "detection-digits",
        "--space",
        "smnas",
        "--algo",
        "sm-nas",
        "-o",
        str(out),
    ]
    tiny = ["--epochs", "1", "--limit", "6", "--threads", "1"]
    params = ["population=2", "children=1", "parents=1", "latency_repeats=2", "width=8"]
    res = CliRunner().invoke(app, [*args, *tiny, *[a for p in params for a in ("--param", p)]])
    assert res.exit_code == 0, res.output
    arch = json.loads((out / "arch.json").read_text())
    assert arch["task"] == "detection-digits" and arch["algo"] == "sm-nas"
    parsed = get_space("smnas").from_string(arch["arch"])
    cands = json.loads((out / "candidates.json").read_text())
    assert [c["stage"] for c in cands] == ["structural", "structural", "modular"]
    modular = cands[2]
    assert modular["parent"] in {c["arch"] for c in cands[:2]}
    assert all(c["latency_ms"] > 0 and c["params"] > 0 for c in cands)
    front = json.loads((out / "front.json").read_text())["final_front"]
    assert arch["arch"] in {f["arch"] for f in front} and (out / "front.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert {"map", "ap50", "test_map", "test_ap50"} <= set(summary["metrics"])
    # The derived arch trains with `nasforge train`.
    rec = tmp_path / "train.json"
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--task",
            "detection-digits",
            "--space",
            "smnas",
            "--arch",
            str(out / "arch.json"),
            *tiny,
            "--out",
            str(rec),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(rec.read_text())["model"] == get_space("smnas").to_string(parsed)


def test_bad_sm_nas_params_fail_before_any_work(tmp_path: Path) -> None:
    from nasforge.search.detection.smnas import check_params

    with pytest.raises(SearchError, match="no --param popsize"):
        check_params({"popsize": 3})
    with pytest.raises(SearchError, match=r"select='best'.*best-map"):
        check_params({"select": "best"})
    with pytest.raises(SearchError, match=r"width=10: expected one of \[8, 12, 16, 24, 32\]"):
        check_params({"width": 10})
    res = CliRunner().invoke(
        app,
        [
            "search",
            "--task",
            "detection-digits",
            "--space",
            "smnas",
            "--algo",
            "sm-nas",
            "-o",
            str(tmp_path / "x"),
            "--param",
            "children=0",
        ],
    )
    assert isinstance(res.exception, SearchError) and "children=0" in str(res.exception)
    assert not (tmp_path / "x" / "arch.json").exists()


def test_detection_split_validation() -> None:
    with pytest.raises(DataError, match="x2 <= x1"):
        DetectionSplit(
            "s", torch.zeros(1, 3, 4, 4, dtype=torch.uint8), [T([[2.0, 0, 1, 1]])], [T([0])]
        )
