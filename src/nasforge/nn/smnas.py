"""The detectors of the SM-NAS space: a ResNet backbone given by a stride code, an optional
FPN neck, a one-stage head (RetinaNet-style anchors or FCOS-style points), an input
resolution; every convolution is ConvWS + GroupNorm (SM-NAS trains from scratch with GN
and WS).

Backbone (Vega's SM-NAS backbone, vega/networks/spnet_backbone.py:79-92, 189-201): a
7x7 stride-2 stem and a 3x3 stride-2 max pool, then one stage per ``-``-separated group of
the code; each digit is one residual block with that stride (``1`` or ``2``), all blocks
of stage ``i`` have ``width * 2**i`` channels (the width doubles per stage as there; basic
blocks, as ResNet-18/34). ``11-21-21-21`` is ResNet-18 (smnas_codec.py:33).

Neck: ``none`` (the head sees the backbone's stride-8 stage only), ``fpn-p2p4`` / ``fpn-p3p5``
(a top-down FPN over stages 1-3 / 2-4 with ``4 * width`` channels: FPN's 256 for a
ResNet's 64). Heads share a tower of ``head_convs`` ConvWS+GN+ReLU layers per branch.

CPU scale, stated: levels P2-P4 or P3-P5 instead of RetinaNet's P3-P7 at 800 px inputs,
anchors ``2 * stride * 2**(i/3)`` instead of ``4 * stride`` (objects are 9-32 px in 64 px
images), 2 tower convs instead of 4. The detector resizes its input to its resolution
itself, so one dataset serves every arch and boxes come back in input pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.nn.det_ops import (
    BoxCoder,
    ConvWS2d,
    batched_nms,
    box_iou,
    conv_gn,
    generalized_iou_loss,
    group_norm,
    level_anchors,
    match,
    retinanet_sizes,
    sigmoid_focal_loss,
)
from nasforge.nn.registry import NETWORKS


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 ConvWS+GN), projection shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_gn(c_in, c_out, 3, stride), conv_gn(c_out, c_out, 3, act=False)
        )
        self.short = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(
                ConvWS2d(c_in, c_out, 1, stride=stride, bias=False), group_norm(c_out)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.short(x))


class CodeResNet(nn.Module):
    """The backbone of a stride code; ``channels``/``strides`` describe its stage outputs."""

    def __init__(self, code: str, width: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_gn(3, width, 7, 2), nn.MaxPool2d(3, 2, 1))
        stages, self.channels, self.strides = [], [], []
        c_in, stride = width, 4
        for i, group in enumerate(code.split("-")):
            c_out = width * 2**i
            blocks = []
            for digit in group:
                blocks.append(BasicBlock(c_in, c_out, int(digit)))
                c_in = c_out
                stride *= int(digit)
            stages.append(nn.Sequential(*blocks))
            self.channels.append(c_out)
            self.strides.append(stride)
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class NoNeck(nn.Module):
    """The head sees one backbone stage (the first with stride 8) through a 1x1 ConvWS."""

    def __init__(self, channels: list[int], strides: list[int], out: int) -> None:
        super().__init__()
        self.index = min(range(len(strides)), key=lambda i: abs(strides[i] - 8))
        self.proj = conv_gn(channels[self.index], out, 1, act=False)
        self.strides = [strides[self.index]]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.proj(feats[self.index])]


class FPN(nn.Module):
    """Top-down FPN (Lin et al. 2017): 1x1 laterals, nearest upsampling and sum, a 3x3
    output conv per level, over stages ``first .. first + 2``."""

    def __init__(self, channels: list[int], strides: list[int], out: int, first: int) -> None:
        super().__init__()
        self.first = first
        picked = channels[first : first + 3]
        self.lateral = nn.ModuleList(conv_gn(c, out, 1, act=False) for c in picked)
        self.output = nn.ModuleList(conv_gn(out, out, 3, act=False) for _ in picked)
        self.strides = strides[first : first + 3]

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [m(f) for m, f in zip(self.lateral, feats[self.first : self.first + 3], strict=True)]
        for i in range(len(lat) - 2, -1, -1):
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[-2:], mode="nearest")
        return [m(p) for m, p in zip(self.output, lat, strict=True)]


NECKS: dict[str, Any] = {
    "none": lambda ch, st, out: NoNeck(ch, st, out),
    "fpn-p2p4": lambda ch, st, out: FPN(ch, st, out, first=0),
    "fpn-p3p5": lambda ch, st, out: FPN(ch, st, out, first=1),
}


@dataclass
class HeadOutput:
    """Raw per-level head outputs of a batch, flattened to (B, locations, ...)."""

    cls: torch.Tensor
    box: torch.Tensor
    ctr: torch.Tensor | None
    shapes: list[tuple[int, int]]


class _Towers(nn.Module):
    def __init__(self, c: int, convs: int, cls_out: int, box_out: int, prior: float = 0.01) -> None:
        super().__init__()
        self.cls_tower = nn.Sequential(*[conv_gn(c, c, 3) for _ in range(convs)])
        self.box_tower = nn.Sequential(*[conv_gn(c, c, 3) for _ in range(convs)])
        self.cls_out = nn.Conv2d(c, cls_out, 3, padding=1)
        self.box_out = nn.Conv2d(c, box_out, 3, padding=1)
        for m in (self.cls_out, self.box_out):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
        # RetinaNet's prior: every class starts at probability 0.01 (focal-loss paper, 4).
        nn.init.constant_(self.cls_out.bias, -math.log((1 - prior) / prior))


class RetinaHead(nn.Module):
    """RetinaNet-style head: A = 3 scales x 3 ratios anchors per location, focal loss on
    the classes, L1 on the BoxCoder deltas, as torchvision's RetinaNet (Matcher 0.5 / 0.4
    with low-quality matches, losses / number of foreground anchors; inference: score >
    0.05, top 1000 per level, class-wise NMS 0.5, 100 detections)."""

    score_thresh, nms_thresh, topk, detections = 0.05, 0.5, 1000, 100
    ratios = (0.5, 1.0, 2.0)

    def __init__(
        self, c: int, num_classes: int, strides: list[int], convs: int, anchor_scale: float
    ) -> None:
        super().__init__()
        self.k, self.strides, self.anchor_scale = num_classes, strides, anchor_scale
        self.a = 3 * len(self.ratios)
        self.towers = _Towers(c, convs, self.a * num_classes, self.a * 4)
        self.coder = BoxCoder()

    def forward(self, feats: list[torch.Tensor]) -> HeadOutput:
        cls, box = [], []
        b = feats[0].shape[0]
        for f in feats:
            cls.append(
                self.towers.cls_out(self.towers.cls_tower(f))
                .permute(0, 2, 3, 1)
                .reshape(b, -1, self.k)
            )
            box.append(
                self.towers.box_out(self.towers.box_tower(f)).permute(0, 2, 3, 1).reshape(b, -1, 4)
            )
        return HeadOutput(
            torch.cat(cls, 1), torch.cat(box, 1), None, [tuple(f.shape[-2:]) for f in feats]
        )

    def anchors(self, shapes: list[tuple[int, int]], device: torch.device) -> list[torch.Tensor]:
        return [
            level_anchors(s, h, w, retinanet_sizes(s, self.anchor_scale), self.ratios).to(device)
            for s, (h, w) in zip(self.strides, shapes, strict=True)
        ]

    def loss(self, out: HeadOutput, targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        anchors = torch.cat(self.anchors(out.shapes, out.cls.device))
        cls_loss = box_loss = out.cls.new_zeros(())
        num_fg = 0
        for i, t in enumerate(targets):
            m = match(box_iou(t["boxes"], anchors))
            fg = m >= 0
            valid = m != -2
            target_cls = torch.zeros_like(out.cls[i])
            if t["boxes"].numel():
                target_cls[fg, t["labels"][m[fg]]] = 1.0
                enc = self.coder.encode(t["boxes"][m[fg]], anchors[fg])
                box_loss = box_loss + F.l1_loss(out.box[i][fg], enc, reduction="sum")
            cls_loss = cls_loss + sigmoid_focal_loss(out.cls[i][valid], target_cls[valid])
            num_fg += int(fg.sum())
        return (cls_loss + box_loss) / max(1, num_fg)

    def detect(self, out: HeadOutput, size: tuple[int, int]) -> list[dict[str, torch.Tensor]]:
        levels = self.anchors(out.shapes, out.cls.device)
        counts = [len(a) for a in levels]
        results = []
        for i in range(out.cls.shape[0]):
            boxes, scores, labels = [], [], []
            for cls, deltas, anc in zip(
                out.cls[i].split(counts), out.box[i].split(counts), levels, strict=True
            ):
                s = torch.sigmoid(cls).flatten()
                keep = torch.nonzero(s > self.score_thresh).squeeze(1)
                s, order = s[keep].topk(min(self.topk, keep.numel()))
                idx = keep[order]
                loc, lab = idx // self.k, idx % self.k
                boxes.append(self.coder.decode(deltas[loc], anc[loc]))
                scores.append(s)
                labels.append(lab)
            results.append(_finish(boxes, scores, labels, size, self.nms_thresh, self.detections))
        return results


class FCOSHead(nn.Module):
    """FCOS-style anchor-free head, as torchvision's FCOS: one point per location (a box
    of side ``stride``), a ground truth matches a point inside its centre region (radius
    1.5 strides) whose largest l/t/r/b distance lies in the level's range (4 to 8 point
    sizes; 0 below the first level, unbounded above the last), the smallest such box
    wins; focal loss on classes, GIoU on boxes (l, t, r, b / stride, ReLU), BCE on
    centre-ness, each / foreground points; inference: sqrt(class * centre-ness) > 0.2, top
    1000 per level, class-wise NMS 0.6, 100 detections."""

    score_thresh, nms_thresh, topk, detections = 0.2, 0.6, 1000, 100
    center_radius = 1.5

    def __init__(
        self, c: int, num_classes: int, strides: list[int], convs: int, anchor_scale: float
    ) -> None:
        super().__init__()
        self.k, self.strides = num_classes, strides
        self.towers = _Towers(c, convs, num_classes, 4)
        self.ctr_out = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.normal_(self.ctr_out.weight, std=0.01)
        nn.init.zeros_(self.ctr_out.bias)

    def forward(self, feats: list[torch.Tensor]) -> HeadOutput:
        cls, box, ctr = [], [], []
        b = feats[0].shape[0]
        for f in feats:
            cf, bf = self.towers.cls_tower(f), self.towers.box_tower(f)
            cls.append(self.towers.cls_out(cf).permute(0, 2, 3, 1).reshape(b, -1, self.k))
            box.append(F.relu(self.towers.box_out(bf)).permute(0, 2, 3, 1).reshape(b, -1, 4))
            ctr.append(self.ctr_out(bf).permute(0, 2, 3, 1).reshape(b, -1))
        shapes = [tuple(f.shape[-2:]) for f in feats]
        return HeadOutput(torch.cat(cls, 1), torch.cat(box, 1), torch.cat(ctr, 1), shapes)

    def points(
        self, shapes: list[tuple[int, int]], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Point boxes, their sizes and the lower/upper distance bounds, all levels."""
        pts, size, lo, hi = [], [], [], []
        last = len(shapes) - 1
        for i, (s, (h, w)) in enumerate(zip(self.strides, shapes, strict=True)):
            p = level_anchors(s, h, w, (float(s),), (1.0,))
            pts.append(p)
            size.append(torch.full((len(p),), float(s)))
            lo.append(torch.full((len(p),), 0.0 if i == 0 else 4.0 * s))
            hi.append(torch.full((len(p),), math.inf if i == last else 8.0 * s))
        return tuple(torch.cat(v).to(device) for v in (pts, size, lo, hi))  # type: ignore[return-value]

    def loss(self, out: HeadOutput, targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        pts, size, lo, hi = self.points(out.shapes, out.cls.device)
        centers = (pts[:, :2] + pts[:, 2:]) / 2
        assert out.ctr is not None
        cls_loss = box_loss = ctr_loss = out.cls.new_zeros(())
        num_fg = 0
        for i, t in enumerate(targets):
            gt = t["boxes"]
            target_cls = torch.zeros_like(out.cls[i])
            if gt.numel():
                gc = (gt[:, :2] + gt[:, 2:]) / 2
                near = (centers[:, None, :] - gc[None]).abs().max(dim=2).values < (
                    self.center_radius * size[:, None]
                )
                x, y = centers[:, None, 0], centers[:, None, 1]
                ltrb = torch.stack([x - gt[:, 0], y - gt[:, 1], gt[:, 2] - x, gt[:, 3] - y], dim=2)
                inside = ltrb.min(dim=2).values > 0
                dist = ltrb.max(dim=2).values
                ok = near & inside & (dist > lo[:, None]) & (dist < hi[:, None])
                area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
                cost = torch.where(ok, area[None, :].expand_as(ok), torch.full_like(dist, math.inf))
                best, m = cost.min(dim=1)
                fg = torch.isfinite(best)
                if fg.any():
                    target_cls[fg, t["labels"][m[fg]]] = 1.0
                    p, s = pts[fg], size[fg, None]
                    pc = (p[:, :2] + p[:, 2:]) / 2
                    pred = torch.cat([pc - out.box[i][fg, :2] * s, pc + out.box[i][fg, 2:] * s], 1)
                    box_loss = box_loss + generalized_iou_loss(pred, gt[m[fg]]).sum()
                    t_ltrb = ltrb[fg, m[fg]]
                    lr, tb = t_ltrb[:, [0, 2]], t_ltrb[:, [1, 3]]
                    ctr_t = torch.sqrt(
                        (lr.min(1).values / lr.max(1).values)
                        * (tb.min(1).values / tb.max(1).values)
                    )
                    ctr_loss = ctr_loss + F.binary_cross_entropy_with_logits(
                        out.ctr[i][fg], ctr_t, reduction="sum"
                    )
                    num_fg += int(fg.sum())
            cls_loss = cls_loss + sigmoid_focal_loss(out.cls[i], target_cls)
        return (cls_loss + box_loss + ctr_loss) / max(1, num_fg)

    def detect(self, out: HeadOutput, size: tuple[int, int]) -> list[dict[str, torch.Tensor]]:
        pts, psize, _, _ = self.points(out.shapes, out.cls.device)
        counts = [h * w for h, w in out.shapes]
        assert out.ctr is not None
        results = []
        for i in range(out.cls.shape[0]):
            boxes, scores, labels = [], [], []
            for cls, reg, ctr, p, s in zip(
                out.cls[i].split(counts),
                out.box[i].split(counts),
                out.ctr[i].split(counts),
                pts.split(counts),
                psize.split(counts),
                strict=True,
            ):
                sc = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr)[:, None]).flatten()
                keep = torch.nonzero(sc > self.score_thresh).squeeze(1)
                sc, order = sc[keep].topk(min(self.topk, keep.numel()))
                idx = keep[order]
                loc, lab = idx // self.k, idx % self.k
                pc = (p[loc, :2] + p[loc, 2:]) / 2
                r = reg[loc] * s[loc, None]
                boxes.append(torch.cat([pc - r[:, :2], pc + r[:, 2:]], 1))
                scores.append(sc)
                labels.append(lab)
            results.append(_finish(boxes, scores, labels, size, self.nms_thresh, self.detections))
        return results


HEADS: dict[str, type[nn.Module]] = {"retina": RetinaHead, "fcos": FCOSHead}


def _finish(
    boxes: list[torch.Tensor],
    scores: list[torch.Tensor],
    labels: list[torch.Tensor],
    size: tuple[int, int],
    nms_thresh: float,
    detections: int,
) -> dict[str, torch.Tensor]:
    """Concatenate the levels, clip to the image, class-wise NMS, keep the best ones."""
    b, s, lab = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
    h, w = size
    b = torch.stack(
        [b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w), b[:, 3].clamp(0, h)], 1
    )
    ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    b, s, lab = b[ok], s[ok], lab[ok]
    keep = batched_nms(b, s, lab, nms_thresh, detections)
    return {"boxes": b[keep], "scores": s[keep], "labels": lab[keep]}


@dataclass
class DetectorOutput:
    """What a detector's forward returns: the head's raw output, the scale from input
    pixels to the network's resolution, and the detector (the task's loss and
    evaluation call back into it)."""

    head: HeadOutput
    scale: tuple[float, float]
    input_size: tuple[int, int]
    detector: Detector


class Detector(nn.Module):
    """Backbone -> neck -> one-stage head at a fixed input ``resolution``."""

    def __init__(
        self,
        *,
        code: str,
        width: int,
        neck: str,
        head: str,
        resolution: int,
        num_classes: int,
        head_convs: int = 2,
        anchor_scale: float = 2.0,
        arch: Any = None,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        # The trainer's run records name a model by ``arch.to_string()`` where it has one.
        self.arch = arch
        self.backbone = CodeResNet(code, width)
        neck_channels = 4 * width
        self.neck = NECKS[neck](self.backbone.channels, self.backbone.strides, neck_channels)
        self.head = HEADS[head](
            neck_channels, num_classes, self.neck.strides, head_convs, anchor_scale
        )

    def forward(self, x: torch.Tensor) -> DetectorOutput:
        h, w = x.shape[-2:]
        if (h, w) != (self.resolution, self.resolution):
            x = F.interpolate(
                x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False
            )
        out = self.head(self.neck(self.backbone(x)))
        return DetectorOutput(
            out, (self.resolution / w, self.resolution / h), (int(h), int(w)), self
        )

    def loss(self, out: DetectorOutput, targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        """The head's training loss; ``targets`` boxes are in input pixels."""
        sx, sy = out.scale
        factor = torch.tensor([sx, sy, sx, sy], device=out.head.cls.device)
        scaled = [{"boxes": t["boxes"] * factor, "labels": t["labels"]} for t in targets]
        return self.head.loss(out.head, scaled)

    def detect(self, out: DetectorOutput) -> list[dict[str, torch.Tensor]]:
        """Boxes (input pixels), scores and labels per image after NMS."""
        sx, sy = out.scale
        res = self.head.detect(out.head, (self.resolution, self.resolution))
        factor = torch.tensor([sx, sy, sx, sy], device=out.head.cls.device)
        for r in res:
            r["boxes"] = r["boxes"] / factor
        return res


class EndToEnd(nn.Module):
    """A detector's inference as one module (forward + decoding + NMS): what latency is
    measured on."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return self.detector.detect(self.detector(x))


@NETWORKS.register("smnas")
def build_smnas(
    arch: Any, *, num_classes: int, head_convs: int = 2, anchor_scale: float = 2.0
) -> Detector:
    """The detector of an ``smnas`` arch (fields backbone, width, neck, head, resolution)."""
    return Detector(
        code=arch.backbone,
        width=arch.width,
        neck=arch.neck,
        head=arch.head,
        resolution=arch.resolution,
        num_classes=num_classes,
        head_convs=head_convs,
        anchor_scale=anchor_scale,
        arch=arch,
    )
