#!/usr/bin/env python3
"""Plain-Python reference of the per-frame pipeline (docs/pipeline.md).

OpenCV decodes and resizes (what Ultralytics and the original service use), NumPy
does the maths, ONNX Runtime (CPUExecutionProvider) runs the model. The Rust service is held to the same
answers by the parity test; when this file and docs/pipeline.md disagree, the
document wins and this file is the bug.

Usage::

    python scripts/reference.py --model M --classes C [--threads N]
                                [--preprocess letterbox|stretch] [--tiling auto|off]
                                [--settings JSON|@file] FILES...
        -> one JSON line per file: {"file": path, "detections": [DetectionDto...]}

    python scripts/reference.py --model M --classes C --bench N [--threads N] FILES...
        -> one JSON line per file with mean decode_ms, preprocess_ms (decode +
           letterbox + normalise into the tensor), engine_ms (session.run only)
           and full_ms (whole pipeline) over N runs, after one warm-up run.

Layouts: Ultralytics v8/v11 ``[B, 4+nc, N]`` (what the real model is), plus
end-to-end ``[B, N, 6]`` and YOLOv5 ``[B, N, 5+nc]``; chosen from the ONNX
metadata and the output shape, or forced with ``--layout``.

Decisions the document leaves to the implementation, made explicit here:
* Decode: ``cv2.imdecode(..., IMREAD_COLOR)`` (libjpeg-turbo for JPEG; applies the EXIF
  orientation), as the original service and Ultralytics do.
* ``--preprocess letterbox`` (default): exactly Ultralytics' ``LetterBox(center=True,
  auto=False)``: ``r = min(mh/h, mw/w)``, new size ``round(w*r), round(h*r)`` and padding
  ``round(d/2 - 0.1)`` with Python's ``round`` (half to even), ``cv2.resize(...,
  INTER_LINEAR)`` (2x2 taps, no antialiasing), ``copyMakeBorder`` with 114, then BGR->RGB.
* ``--preprocess stretch``: the original service's ``cv2.dnn.blobFromImage(view, 1/255,
  (mw, mh), swapRB=True, crop=False)``: the view resized to the whole input.
* Tensor: ``uint8 -> float32 / 255`` in float32 (then ``astype(float16)`` for
  float16 models).
* Box maths after the engine is done in float64 from the float32 raw outputs.
* "round" is round-half-away-from-zero everywhere (document §2; also §1's tile side).
* Cross-tile duplicates: greedy by confidence descending (stable over emission
  order, so on a tie the earlier detection is kept, the later one dropped).
* Merging across views (§5.2) works on pixel boxes; the service on normalised ones.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

DEFAULTS = {
    "frame_period_recognition": 4,
    "frame_recognition_seconds": 2.0,
    "probability_threshold": 0.25,
    "tracking_distance_confidence": 0.0,
    "tracking_probability_increase": 0.0,
    "tracking_intersection_threshold": 0.6,
    "model_batch_size": 1,
    "big_image_tile_overlap_percent": 20,
    "altitude": 400.0,
    "focal_length": 24.0,
    "sensor_width": 23.5,
    "tile_merge": True,
    "tile_merge_threshold": 0.5,
    "tile_full_frame_pass": True,
    # engine setting, not part of A6
    "nms_iou": 0.7,
}
MAX_DETECTIONS = 300
DYNAMIC_FALLBACK = (1280, 1280)
PAD = 114
WEATHER = ((0, ""), (20, "(Wint)"), (40, "(Night)"))


def rhaz(x: float) -> int:
    """Round half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def snake(key: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key)
    return s.lower()


def load_settings(arg: str | None) -> dict:
    settings = dict(DEFAULTS)
    if not arg:
        return settings
    text = Path(arg[1:]).read_text() if arg.startswith("@") else arg
    for k, v in json.loads(text).items():
        k = snake(k)
        if k in settings:
            settings[k] = v
    return settings


@dataclass
class ClassInfo:
    name: str
    max_size_m: float


def load_classes(path: Path) -> dict[int, ClassInfo]:
    """classes.json, expanded to the three weather modes (spec A10)."""
    entries = json.loads(Path(path).read_text())
    if not isinstance(entries, list):
        raise SystemExit(f"{path}: expected a JSON array")
    out: dict[int, ClassInfo] = {}
    for i, e in enumerate(entries):
        try:
            cid, name, max_size = int(e["Id"]), str(e["Name"]), float(e["MaxSizeM"])
        except (KeyError, TypeError, ValueError) as err:
            raise SystemExit(f"{path}: entry {i} is invalid: {err!r}")
        for offset, suffix in WEATHER:
            out[cid + offset] = ClassInfo(name + suffix, max_size)
    return out


class Engine:
    def __init__(self, model: Path, threads: int, layout: str | None):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        (inp,) = self.session.get_inputs()
        out = self.session.get_outputs()[0]
        self.input_name = inp.name
        self.dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        meta = self.session.get_modelmeta().custom_metadata_map
        b, _, h, w = inp.shape
        self.dynamic_batch = not isinstance(b, int)
        if isinstance(h, int) and isinstance(w, int):
            self.mw, self.mh = w, h
        elif "imgsz" in meta:
            ih, iw = ast.literal_eval(meta["imgsz"])
            self.mw, self.mh = int(iw), int(ih)
        else:
            self.mw, self.mh = DYNAMIC_FALLBACK
        names = ast.literal_eval(meta["names"]) if "names" in meta else None
        self.layout = layout or self._detect_layout(meta, out.shape, names)

    @staticmethod
    def _detect_layout(meta, shape, names) -> str:
        if meta.get("end2end", "").lower() == "true":
            return "end2end"
        if names is not None and len(shape) == 3 and shape[1] == 4 + len(names):
            return "ultralytics"
        if names is not None:
            return "ultralytics"
        if len(shape) == 3 and isinstance(shape[2], int) and shape[2] == 6:
            return "end2end"
        return "yolov5"

    def run(self, tensors: list[np.ndarray]) -> list[np.ndarray]:
        """One raw output per view ([C, N] or [N, C]); batches when the model allows."""
        if self.dynamic_batch and len(tensors) > 1:
            (y,) = self.session.run(None, {self.input_name: np.concatenate(tensors)})
            return list(y)
        return [self.session.run(None, {self.input_name: t})[0][0] for t in tensors]


# ------------------------------------------------------------------ §1 views
def gsd(settings: dict, width: int) -> float:
    return settings["sensor_width"] * settings["altitude"] / (settings["focal_length"] * width)


def origins(size: int, tile: int, step: int) -> list[int]:
    out, x = [], 0
    while x + tile < size:
        out.append(x)
        x += step
    out.append(size - tile)
    return out


def full_frame_pass(settings: dict) -> bool:
    return bool(settings["tile_merge"]) and bool(settings["tile_full_frame_pass"])


def views(W: int, H: int, mw: int, mh: int, settings: dict, tiling: str) -> tuple[bool, list[tuple[int, int, int, int]]]:
    """(tiled, [(x0, y0, vw, vh)...]) row by row, then the full-frame pass (§1, §5.2)."""
    if tiling == "off" or not (W > 1.5 * mw or H > 1.5 * mh):
        return False, [(0, 0, W, H)]
    t = max(rhaz(25 / gsd(settings, W)), max(mw, mh))
    tw, th = min(t, W), min(t, H)
    overlap = settings["big_image_tile_overlap_percent"]
    sx = max(1, math.floor(tw * (1 - overlap / 100)))
    sy = max(1, math.floor(th * (1 - overlap / 100)))
    tiles = [(x, y, tw, th) for y in origins(H, th, sy) for x in origins(W, tw, sx)]
    if len(tiles) > 1 and full_frame_pass(settings):
        tiles.append((0, 0, W, H))
    return True, tiles


# -------------------------------------------------------------- §2 letterbox
@dataclass
class Letterbox:
    rx: float
    ry: float
    left: int
    top: int


def ultralytics_letterbox(bgr: np.ndarray, mw: int, mh: int) -> tuple[np.ndarray, Letterbox]:
    """ultralytics.data.augment.LetterBox(new_shape=(mh, mw), auto=False, center=True)."""
    shape = bgr.shape[:2]
    r = min(mh / shape[0], mw / shape[1])
    new_unpad = max(round(shape[1] * r), 1), max(round(shape[0] * r), 1)
    dw, dh = (mw - new_unpad[0]) / 2, (mh - new_unpad[1]) / 2
    if shape[::-1] != new_unpad:
        bgr = cv2.resize(bgr, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    bgr = cv2.copyMakeBorder(bgr, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD,) * 3)
    rgb = bgr[..., ::-1].transpose(2, 0, 1)[None]
    tensor = np.ascontiguousarray(rgb).astype(np.float32) / np.float32(255)
    return tensor, Letterbox(r, r, left, top)


def blob_stretch(bgr: np.ndarray, mw: int, mh: int) -> tuple[np.ndarray, Letterbox]:
    """The original service: cv2.dnn.blobFromImage without crop (aspect not kept)."""
    vh, vw = bgr.shape[:2]
    tensor = cv2.dnn.blobFromImage(bgr, 1.0 / 255, (mw, mh), swapRB=True, crop=False)
    return tensor.astype(np.float32), Letterbox(mw / vw, mh / vh, 0, 0)


def letterbox(bgr: np.ndarray, view, mw: int, mh: int, dtype, mode: str) -> tuple[np.ndarray, Letterbox]:
    x0, y0, vw, vh = view
    crop = bgr[y0 : y0 + vh, x0 : x0 + vw]
    fit = blob_stretch if mode == "stretch" else ultralytics_letterbox
    tensor, lb = fit(np.ascontiguousarray(crop), mw, mh)
    if dtype != np.float32:
        tensor = tensor.astype(dtype)
    return np.ascontiguousarray(tensor), lb


# ------------------------------------------------------------------ §3 decode
def decode(raw: np.ndarray, layout: str, threshold: float):
    """-> boxes [K,4] (x1,y1,x2,y2, model-input px, float64), scores [K], classes [K]."""
    raw = raw.astype(np.float64)
    if layout == "end2end":
        boxes, scores, classes = raw[:, :4], raw[:, 4], raw[:, 5].astype(np.int64)
    else:
        rows = raw.T if layout == "ultralytics" else raw  # -> [N, C]
        if layout == "ultralytics":
            cls_scores = rows[:, 4:]
            classes = np.argmax(cls_scores, axis=1)  # first index on a tie
            scores = cls_scores[np.arange(len(rows)), classes]
        else:
            cls_scores = rows[:, 5:]
            classes = np.argmax(cls_scores, axis=1)
            scores = rows[:, 4] * cls_scores[np.arange(len(rows)), classes]
        cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keep = scores >= threshold
    return boxes[keep], scores[keep], classes[keep]


def iou_one(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes, scores, classes, iou_thr: float) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.array(kept)
            same = classes[k] == classes[i]
            if same.any() and (iou_one(boxes[i], boxes[k[same]]) > iou_thr).any():
                continue
        kept.append(int(i))
        if len(kept) == MAX_DETECTIONS:
            break
    return kept


# ---------------------------------------------------------------- §4 per view
def per_view(raw, layout, lb: Letterbox, view, W, H, settings, index: int = 0, full: bool = False) -> list[dict]:
    boxes, scores, classes = decode(raw, layout, settings["probability_threshold"])
    order = nms(boxes, scores, classes, settings["nms_iou"]) if layout != "end2end" else list(range(len(scores)))
    x0, y0 = view[0], view[1]
    dets = []
    for i in order:
        x1, y1, x2, y2 = boxes[i]
        x1 = min(max((x1 - lb.left) / lb.rx + x0, 0.0), W)
        x2 = min(max((x2 - lb.left) / lb.rx + x0, 0.0), W)
        y1 = min(max((y1 - lb.top) / lb.ry + y0, 0.0), H)
        y2 = min(max((y2 - lb.top) / lb.ry + y0, 0.0), H)
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            continue
        dets.append(
            {
                "cx": (x1 + x2) / 2 / W,
                "cy": (y1 + y2) / 2 / H,
                "w": (x2 - x1) / W,
                "h": (y2 - y1) / H,
                "cls": int(classes[i]),
                "conf": float(scores[i]),
                "px": (x1, y1, x2, y2),
                "cuts": [] if full else cuts(view, (x1, y1, x2, y2), W, H),
                "view": index,
                "full": full,
            }
        )
    return dets


# ------------------------------------------------------- §5.2 merging views
CUT_MARGIN = 0.02


def cuts(view, box, W: int, H: int) -> list[tuple[str, float, float]]:
    """(side, border, margin) for each inner border of the view's tile the box lies on."""
    x0, y0, vw, vh = view
    x1, y1, x2, y2 = box
    mx, my = CUT_MARGIN * vw, CUT_MARGIN * vh
    out = []
    if 0 < x0 < W and x1 - x0 <= mx:
        out.append(("left", x0, mx))
    if 0 < x0 + vw < W and x0 + vw - x2 <= mx:
        out.append(("right", x0 + vw, mx))
    if 0 < y0 < H and y1 - y0 <= my:
        out.append(("top", y0, my))
    if 0 < y0 + vh < H and y0 + vh - y2 <= my:
        out.append(("bottom", y0 + vh, my))
    return out


def reaches(cut, box) -> bool:
    side, at, margin = cut
    x1, y1, x2, y2 = box
    return {"left": x1 <= at + margin, "right": x2 >= at - margin,
            "top": y1 <= at + margin, "bottom": y2 >= at - margin}[side]


def edge(box, side: str) -> float:
    return box[{"left": 0, "top": 1, "right": 2, "bottom": 3}[side]]


def admits(cut, other, other_cuts) -> bool:
    """The object goes on past the cut: `other` reaches the border, or is cut on that side itself."""
    return reaches(cut, other) or any(o[0] == cut[0] and abs(edge(other, o[0]) - o[1]) <= o[2] for o in other_cuts)


def area(b) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def inter(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def absorb_all(g: dict, order: list[dict], taken: list[bool], i: int, first: dict, thr: float) -> bool:
    """One pass over the detections after ``first``: takes into group ``g`` each that is the same object."""
    grew = False
    for j in range(i + 1, len(order)):
        d = order[j]
        if taken[j] or d["cls"] != first["cls"] or d["view"] in g["views"]:
            continue
        if not all(admits(c, g["box"], g["cuts"]) for c in d["cuts"]) or not all(
            admits(c, d["px"], d["cuts"]) for c in g["cuts"]
        ):
            continue
        cut = bool(d["cuts"])
        i_ = inter(g["box"], d["px"])
        if g["whole"] and not cut:
            same = ratio(i_, area(g["box"]) + area(d["px"]) - i_) > thr
        elif g["whole"]:
            same = ratio(i_, area(d["px"])) > thr
        elif not cut:
            same = ratio(i_, area(g["box"])) > thr
        else:
            same = ratio(i_, min(area(g["box"]), area(d["px"]))) > thr
        if not same:
            continue
        taken[j] = True
        grew = True
        g["views"].add(d["view"])
        g["cuts"] += d["cuts"]
        if not (g["whole"] and not cut):
            g["box"] = union(g["box"], d["px"])
        g["whole"] = g["whole"] or not cut
        if d["full"]:
            g["full_box"] = d["px"]
        elif g["tiles"] is None:
            g["tiles"] = (d["px"], not cut)
        else:
            box, whole = g["tiles"]
            g["tiles"] = (box if (whole and not cut) else union(box, d["px"]), whole or not cut)
    return grew


def merge_views(dets: list[dict], thr: float) -> list[dict]:
    """docs/pipeline.md §5.2, over detections tagged with "view", "full", "px", "cuts"."""
    tiles = [d for d in dets if not d["full"]]
    full = [
        f for f in dets if f["full"]
        and not any(not t["cuts"] and t["cls"] == f["cls"]
                    and ratio(inter(t["px"], f["px"]), area(t["px"]) + area(f["px"]) - inter(t["px"], f["px"])) > thr
                    for t in tiles)
    ]
    order = sorted(tiles + full, key=lambda d: -d["conf"])
    taken = [False] * len(order)
    out = []
    for i, first in enumerate(order):
        if taken[i]:
            continue
        taken[i] = True
        g = {"box": first["px"], "views": {first["view"]}, "whole": not first["cuts"], "cuts": list(first["cuts"]),
             "tiles": None if first["full"] else (first["px"], not first["cuts"]),
             "full_box": first["px"] if first["full"] else None}
        grew = True
        while grew:
            grew = absorb_all(g, order, taken, i, first, thr)
        if g["tiles"] is None:
            box = g["full_box"]
        else:
            x1, y1, x2, y2 = g["tiles"][0]
            if g["full_box"] is not None:
                f = g["full_box"]
                t = g["tiles"][0]
                for side, at, margin in g["cuts"]:
                    if abs(edge(t, side) - at) > margin:
                        continue
                    if side == "left":
                        x1 = min(x1, f[0])
                    elif side == "right":
                        x2 = max(x2, f[2])
                    elif side == "top":
                        y1 = min(y1, f[1])
                    else:
                        y2 = max(y2, f[3])
            box = (x1, y1, x2, y2)
        out.append({**first, "px": box})
    return out


# --------------------------------------------------------------- §5 per frame
def containment(a: dict, b: dict) -> float:
    ax1, ay1, ax2, ay2 = a["cx"] - a["w"] / 2, a["cy"] - a["h"] / 2, a["cx"] + a["w"] / 2, a["cy"] + a["h"] / 2
    bx1, by1, bx2, by2 = b["cx"] - b["w"] / 2, b["cy"] - b["h"] / 2, b["cx"] + b["w"] / 2, b["cy"] + b["h"] / 2
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    smaller = min(a["w"] * a["h"], b["w"] * b["h"])
    return inter / smaller if smaller > 0 else 0.0


def per_frame(dets: list[dict], tiled: bool, W: int, H: int, settings: dict, classes: dict[int, ClassInfo]) -> list[dict]:
    dets = sorted(dets, key=lambda d: -d["conf"])  # stable: ties keep emission order
    if tiled:
        kept: list[dict] = []
        for d in (d for d in dets if not d["full"]):
            if not any(
                k["cls"] == d["cls"] and all(abs(k[f] - d[f]) <= 0.01 for f in ("cx", "cy", "w", "h")) for k in kept
            ):
                kept.append(d)
        if settings["tile_merge"]:
            kept = merge_views(kept + [d for d in dets if d["full"]], float(settings["tile_merge_threshold"]))
            for d in kept:
                x1, y1, x2, y2 = d["px"]
                d.update(cx=(x1 + x2) / 2 / W, cy=(y1 + y2) / 2 / H, w=(x2 - x1) / W, h=(y2 - y1) / H)
        dets = kept
    thr = settings["tracking_intersection_threshold"]
    kept = []
    for d in dets:
        if not any(containment(k, d) > thr for k in kept):
            kept.append(d)
    g = gsd(settings, W)
    out = []
    for d in kept:
        info = classes.get(d["cls"])
        if info is None:
            continue
        if max(d["w"] * W, d["h"] * H) * g > info.max_size_m:
            continue
        out.append(d)
    out.sort(key=lambda d: -d["conf"])
    return [
        {
            "centerX": float(d["cx"]),
            "centerY": float(d["cy"]),
            "width": float(d["w"]),
            "height": float(d["h"]),
            "classNum": d["cls"],
            "label": classes[d["cls"]].name,
            "confidence": float(d["conf"]),
        }
        for d in out[:MAX_DETECTIONS]
    ]


# ------------------------------------------------------------------- driver
def decode_image(path: str) -> np.ndarray:
    """BGR, upright (cv2.imdecode applies the EXIF orientation)."""
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"{path}: OpenCV cannot decode it")
    return img


def preprocess(img: np.ndarray, engine: Engine, settings: dict, opts):
    H, W = img.shape[:2]
    tiled, vs = views(W, H, engine.mw, engine.mh, settings, opts.tiling)
    prepared = [letterbox(img, v, engine.mw, engine.mh, engine.dtype, opts.preprocess) for v in vs]
    return tiled, vs, prepared


def infer(engine: Engine, prepared, settings: dict) -> list[np.ndarray]:
    batch = max(1, int(settings["model_batch_size"]))
    tensors = [t for t, _ in prepared]
    raws: list[np.ndarray] = []
    for i in range(0, len(tensors), batch):
        raws += engine.run(tensors[i : i + batch])
    return raws


def detect(img: np.ndarray, engine: Engine, settings: dict, classes, opts) -> list[dict]:
    H, W = img.shape[:2]
    tiled, vs, prepared = preprocess(img, engine, settings, opts)
    raws = infer(engine, prepared, settings)
    dets: list[dict] = []
    for index, (raw, (_, lb), v) in enumerate(zip(raws, prepared, vs)):
        full = tiled and len(vs) > 1 and v == (0, 0, W, H)
        dets += per_view(raw, engine.layout, lb, v, W, H, settings, index, full)
    return per_frame(dets, tiled, W, H, settings, classes)


def bench(path: str, n: int, engine: Engine, settings: dict, classes, opts) -> dict:
    def mean_ms(fn) -> float:
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) * 1000 / n

    img = decode_image(path)
    tiled, vs, prepared = preprocess(img, engine, settings, opts)
    return {
        "file": path,
        "width": img.shape[1],
        "height": img.shape[0],
        "views": len(vs),
        "tiled": tiled,
        "runs": n,
        "threads": opts.threads,
        "decode_ms": mean_ms(lambda: decode_image(path)),
        "preprocess_ms": mean_ms(lambda: preprocess(decode_image(path), engine, settings, opts)),
        "engine_ms": mean_ms(lambda: infer(engine, prepared, settings)),
        "full_ms": mean_ms(lambda: detect(decode_image(path), engine, settings, classes, opts)),
        "detections": len(detect(img, engine, settings, classes, opts)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="reference pipeline (docs/pipeline.md)")
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--classes", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    ap.add_argument("--settings", help="JSON object of recognition settings (A6 keys, + nms_iou), or @file")
    ap.add_argument("--layout", choices=["end2end", "ultralytics", "yolov5"], help="override layout detection")
    ap.add_argument("--preprocess", choices=["letterbox", "stretch"], default="letterbox",
                    help="Ultralytics' LetterBox (default) or the original's blobFromImage")
    ap.add_argument("--tiling", choices=["auto", "off"], default="auto", help="tile large frames (auto) or never")
    ap.add_argument("--bench", type=int, metavar="N", help="time each file over N runs instead of printing detections")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    settings = load_settings(args.settings)
    classes = load_classes(args.classes)
    engine = Engine(args.model, args.threads, args.layout)
    for path in args.files:
        if args.bench:
            line = bench(path, args.bench, engine, settings, classes, args)
        else:
            line = {"file": path, "detections": detect(decode_image(path), engine, settings, classes, args)}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
