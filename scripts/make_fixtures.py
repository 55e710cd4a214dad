#!/usr/bin/env python3
"""Synthetic ONNX models whose outputs we control, for the Rust tests.

Writes ``<assets>/fixtures/*.onnx`` and ``<assets>/fixtures/manifest.json``.
Run by ``cargo xtask fetch`` with the venv python (packages pinned in
scripts/requirements.txt); deterministic.

Every model emits a constant tensor broadcast to the input's batch dimension:
``Expand(const[1, ...], Concat(Shape(input)[0:1], rest))``. All but the
benchmark model also add ``ReduceSum(input) * 0`` so the graph really reads the
pixels. The exception, ``e2e_batch1_only.onnx``, is an end-to-end export as they
come with NMS inside: the input's batch is dynamic, the output is ``[1, 300, 6]``
and a ``Squeeze`` of the batch axis makes ONNX Runtime refuse any batch but 1. Every number is dyadic (exact in float16/float32/float64), so the
manifest values are the exact raw outputs and the Rust tests can compute the
expected whole-image boxes exactly.

Manifest (``version`` 1)::

    {"version": 1, "opset": 17, "ir_version": 8,
     "defaults": {"probability_threshold": 0.25, "nms_iou": 0.7},
     "models": [{
        "file": "v8_static_640.onnx",
        "description": "...",
        "input_name": "images", "input_shape": [1, 3, 640, 640],   # -1 = dynamic
        "input_dim_names": [null, null, null, null],               # symbolic names
        "input_type": "float32" | "float16",
        "output_name": "output0", "output_shape": [1, 6, 6],       # -1 = dynamic
        "runs_at_batch": null,      # the only batch the graph runs at, when its
                                    # input says otherwise (null: any it declares)
        "output_type": "float32",
        "layout": "end2end" | "ultralytics" | "yolov5",
        "num_classes": 2,
        "needs_nms": true,
        "metadata": {"names": "{0: 'Normal', 1: 'Fall'}", ...},    # as written
        "boxes": [[x1, y1, x2, y2, score, class], ...],  # decoded candidates,
                                                          # model-input pixels,
                                                          # in output order
        "raw": [[...], ...],        # one row per candidate as the layout stores it:
                                    # end2end  [x1,y1,x2,y2,conf,cls]
                                    # ultralytics [cx,cy,w,h,s_0..s_nc-1] (tensor is
                                    #   the transpose: [B, 4+nc, N])
                                    # yolov5   [cx,cy,w,h,obj,s_0..s_nc-1]
        "kept_default": [0, 3, ...] # indices into boxes surviving the threshold
                                    # 0.25 and (if needs_nms) class-wise NMS 0.7,
                                    # in score order (docs/pipeline.md §3-4.2)
     }, ...]}
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
NAMES2 = "{0: 'Normal', 1: 'Fall'}"
THRESHOLD = 0.25
NMS_IOU = 0.7


def ultralytics_meta(imgsz: bool = True, names: str = NAMES2) -> dict[str, str]:
    meta = {
        "author": "Ultralytics",
        "description": "Detections synthetic fixture",
        "task": "detect",
        "stride": "32",
        "batch": "1",
        "names": names,
    }
    if imgsz:
        meta["imgsz"] = "[640, 640]"
    return meta


# Candidates (x1, y1, x2, y2) with class scores; everything inside 640x640.
# A/B: same class, IoU(A, B) = 0.849 > 0.7 -> NMS drops B.
# C: other class, overlaps A -> survives class-wise NMS.
# E: below threshold. F: tie between the two classes -> class 0.
V8_BOXES = [
    ((100, 100, 300, 400), [0.875, 0.0625]),  # A  class 0, 0.875
    ((110, 110, 310, 410), [0.75, 0.125]),  # B  class 0, 0.75 (NMS'd by A)
    ((105, 105, 305, 405), [0.125, 0.625]),  # C  class 1, 0.625
    ((400, 300, 560, 500), [0.0, 0.5]),  # D  class 1, 0.5
    ((20, 20, 80, 80), [0.125, 0.0625]),  # E  class 0, 0.125 (below 0.25)
    ((450, 40, 530, 120), [0.5, 0.5]),  # F  tie -> class 0, 0.5
]

# YOLOv5: (box, objectness, class scores); score = obj * max class score.
V5_BOXES = [
    ((100, 100, 300, 400), 0.75, [0.875, 0.125]),  # class 0, 0.65625
    ((110, 110, 310, 410), 0.75, [0.75, 0.125]),  # class 0, 0.5625 (NMS'd)
    ((400, 300, 560, 500), 0.5, [0.25, 1.0]),  # class 1, 0.5
    ((20, 20, 80, 80), 0.25, [0.875, 0.0]),  # class 0, 0.21875 (below)
    ((450, 40, 530, 120), 1.0, [0.0625, 0.375]),  # class 1, 0.375
]

# End-to-end rows: x1, y1, x2, y2, conf, cls (no NMS). Includes a score exactly
# at the threshold (kept: score >= threshold), scores below it and a zero pad row.
E2E_ROWS = [
    [100, 120, 300, 400, 0.875, 0],
    [350, 200, 500, 560, 0.75, 1],
    [20, 30, 60, 90, 0.3125, 1],
    [200, 500, 260, 600, 0.25, 0],
    [400, 50, 460, 110, 0.1875, 0],
    [0, 0, 0, 0, 0.0, 0],
]


def e2e_rows_300() -> list[list[float]]:
    """E2E_ROWS padded with zero rows to the 300 of an Ultralytics end-to-end export."""
    return E2E_ROWS + [[0, 0, 0, 0, 0.0, 0]] * (300 - len(E2E_ROWS))


def v8_rows(boxes, nc: int) -> list[list[float]]:
    rows = []
    for (x1, y1, x2, y2), scores in boxes:
        scores = list(scores) + [0.0] * (nc - len(scores))
        rows.append([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, *scores])
    return rows


def v5_rows(boxes) -> list[list[float]]:
    return [
        [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, obj, *scores]
        for (x1, y1, x2, y2), obj, scores in boxes
    ]


def tiny_rows() -> list[list[float]]:
    """100 candidates on a 10x10 grid; four of them above the threshold."""
    rows = []
    for i in range(100):
        gx, gy = i % 10, i // 10
        cx, cy = 32 + 64 * gx, 32 + 64 * gy
        s0, s1 = (0.75, 0.0) if i in (0, 44) else (0.0, 0.625) if i in (27, 99) else (0.03125, 0.0)
        rows.append([cx, cy, 48, 48, s0, s1])
    return rows


def decode(layout: str, raw: list[list[float]]) -> list[list[float]]:
    out = []
    for r in raw:
        if layout == "end2end":
            out.append([float(v) for v in r[:5]] + [int(r[5])])
            continue
        cx, cy, w, h = r[:4]
        if layout == "ultralytics":
            scores = r[4:]
            cls = int(np.argmax(scores))  # first on a tie
            score = scores[cls]
        else:  # yolov5
            scores = r[5:]
            cls = int(np.argmax(scores))
            score = r[4] * scores[cls]
        out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(score), cls])
    return out


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def kept_default(boxes, needs_nms: bool) -> list[int]:
    idx = [i for i, b in enumerate(boxes) if b[4] >= THRESHOLD]
    idx.sort(key=lambda i: -boxes[i][4])  # stable
    if not needs_nms:
        return idx
    kept: list[int] = []
    for i in idx:
        if all(boxes[k][5] != boxes[i][5] or iou(boxes[k], boxes[i]) <= NMS_IOU for k in kept):
            kept.append(i)
        if len(kept) == 300:
            break
    return kept


def build(
    path: Path,
    *,
    input_shape: list,
    input_type: str,
    const: np.ndarray,
    metadata: dict[str, str],
    consume_pixels: bool = True,
    batch_one_only: bool = False,
) -> None:
    """const: float32 [1, ...]; the output is const broadcast to batch B."""
    elem = TensorProto.FLOAT16 if input_type == "float16" else TensorProto.FLOAT
    batch_dim = 1 if batch_one_only else input_shape[0]
    x = helper.make_tensor_value_info("images", elem, input_shape)
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch_dim, *const.shape[1:]])
    inits = [
        numpy_helper.from_array(const.astype(np.float32), "raw_output"),
        numpy_helper.from_array(np.array(const.shape[1:], dtype=np.int64), "rest_shape"),
    ]
    nodes = [
        helper.make_node("Shape", ["images"], ["batch"], start=0, end=1),
        helper.make_node("Concat", ["batch", "rest_shape"], ["out_shape"], axis=0),
        helper.make_node("Expand", ["raw_output", "out_shape"], ["expanded"]),
    ]
    if batch_one_only:
        # ReduceSum keeps [B,1,1,1]; Squeeze(axis 0) fails unless B == 1, as exports do.
        inits = [
            numpy_helper.from_array(const.astype(np.float32), "raw_output"),
            numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "item_axes"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "batch_axis"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ]
        nodes = [
            helper.make_node("ReduceSum", ["images", "item_axes"], ["pixel_sum"], keepdims=1),
            helper.make_node("Squeeze", ["pixel_sum", "batch_axis"], ["one_item"]),
            helper.make_node("Mul", ["one_item", "zero"], ["nothing"]),
            helper.make_node("Add", ["raw_output", "nothing"], ["output0"]),
        ]
    elif consume_pixels:
        pixels = "images"
        if input_type == "float16":
            nodes.append(helper.make_node("Cast", ["images"], ["images_f32"], to=TensorProto.FLOAT))
            pixels = "images_f32"
        inits.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"))
        nodes += [
            helper.make_node("ReduceSum", [pixels], ["pixel_sum"], keepdims=0),
            helper.make_node("Mul", ["pixel_sum", "zero"], ["nothing"]),
            helper.make_node("Add", ["expanded", "nothing"], ["output0"]),
        ]
    else:
        nodes[-1] = helper.make_node("Expand", ["raw_output", "out_shape"], ["output0"])
    graph = helper.make_graph(nodes, path.stem, [x], [y], initializer=inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="detections-make_fixtures",
    )
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def check_with_ort(path: Path, entry: dict, const: np.ndarray) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    if inp.name != entry["input_name"] or out.name != entry["output_name"]:
        raise SystemExit(f"{path.name}: names {inp.name}/{out.name} differ from the manifest")
    dtype = np.float16 if entry["input_type"] == "float16" else np.float32
    shapes = []
    dims = entry["input_shape"]
    shapes.append([d if d != -1 else (1 if i == 0 else 640) for i, d in enumerate(dims)])
    if dims[0] == -1:
        shapes.append([3 if i == 0 else (d if d != -1 else 320 + 32 * i) for i, d in enumerate(dims)])
    elif -1 in dims:
        shapes.append([d if d != -1 else 320 + 32 * i for i, d in enumerate(dims)])
    meta = sess.get_modelmeta().custom_metadata_map
    if meta != entry["metadata"]:
        raise SystemExit(f"{path.name}: metadata {meta} != {entry['metadata']}")
    if entry["runs_at_batch"] == 1:
        # Batch 1 runs; batch 2 fails as the real exports do.
        try:
            sess.run(None, {inp.name: np.zeros([2, *shapes[0][1:]], dtype=dtype)})
        except Exception as e:  # onnxruntime raises its own Fail class
            if "must be 1" not in str(e):
                raise SystemExit(f"{path.name}: batch 2 failed otherwise: {e}")
            print(f"  {path.name}: ok, batch 2 refused")
        else:
            raise SystemExit(f"{path.name}: batch 2 ran; it must fail")
        shapes = shapes[:1]
    for shape in shapes:
        x = np.full(shape, 0.5, dtype=dtype)
        (y,) = sess.run(None, {inp.name: x})
        want = (shape[0], *const.shape[1:])
        if y.dtype != np.float32 or tuple(y.shape) != want:
            raise SystemExit(f"{path.name}: input {shape} gave {y.dtype}{list(y.shape)}, expected float32{list(want)}")
        if not np.array_equal(y, np.broadcast_to(const, want)):
            raise SystemExit(f"{path.name}: output values differ from the declared constant")
        print(f"  {path.name}: ok, input {shape} -> output {list(y.shape)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=Path(__file__).resolve().parent.parent / "assets")
    args = ap.parse_args()
    out_dir = args.assets / "fixtures"
    out_dir.mkdir(parents=True, exist_ok=True)

    s640 = [1, 3, 640, 640]
    specs = [
        dict(file="e2e_static_640.onnx", layout="end2end", nc=2, raw=E2E_ROWS, input_shape=s640,
             metadata={"end2end": "True", "names": NAMES2},
             description="end-to-end [B,N,6] x1,y1,x2,y2,conf,cls; a score exactly at 0.25, two below, a zero pad row"),
        dict(file="v8_static_640.onnx", layout="ultralytics", nc=2, raw=v8_rows(V8_BOXES, 2), input_shape=s640,
             metadata=ultralytics_meta(),
             description="Ultralytics [B,6,N]; boxes 0/1 same class IoU 0.849 (NMS drops 1), box 2 other class over box 0, box 4 below threshold, box 5 class-score tie -> class 0"),
        dict(file="v8_dynamic.onnx", layout="ultralytics", nc=2, raw=v8_rows(V8_BOXES, 2),
             input_shape=["batch", 3, "height", "width"], metadata={"names": NAMES2, "task": "detect", "stride": "32"},
             description="fully dynamic input, no imgsz metadata: the service falls back to 1280x1280"),
        dict(file="v8_dynamic_batch_640.onnx", layout="ultralytics", nc=2, raw=v8_rows(V8_BOXES, 2),
             input_shape=["batch", 3, 640, 640], metadata=ultralytics_meta(),
             description="dynamic batch, 640x640"),
        dict(file="v5_static_640.onnx", layout="yolov5", nc=2, raw=v5_rows(V5_BOXES), input_shape=s640,
             metadata={},
             description="YOLOv5 [B,N,5+nc], score = objectness x class score; row 1 NMS'd by row 0, row 3 high class score but low objectness (below threshold); no metadata"),
        dict(file="v8_fp16_640.onnx", layout="ultralytics", nc=2, raw=v8_rows(V8_BOXES, 2), input_shape=s640,
             input_type="float16", metadata=ultralytics_meta(),
             description="float16 input (Cast inside), float32 output; same boxes as v8_static_640"),
        dict(file="v8_wrong_classes.onnx", layout="ultralytics", nc=3, raw=v8_rows(V8_BOXES, 3), input_shape=s640,
             metadata=ultralytics_meta(),
             description="output has nc=3 ([B,7,N]) while the metadata names (and classes.json) have 2 classes: class-count mismatch"),
        dict(file="e2e_batch1_only.onnx", layout="end2end", nc=2, raw=e2e_rows_300(),
             input_shape=["batch", 3, 640, 640], runs_at_batch=1,
             metadata={"end2end": "True", "names": NAMES2},
             description="end-to-end export with NMS inside: dynamic input batch, output [1,300,6] (rows of e2e_static_640, zero-padded), a Squeeze of the batch axis refuses batch 2"),
        dict(file="tiny_v8_640.onnx", layout="ultralytics", nc=2, raw=tiny_rows(), input_shape=["batch", 3, 640, 640],
             metadata=ultralytics_meta(), consume_pixels=False,
             description="benchmark model: [B,6,100], no compute beyond a broadcast; 4 candidates above 0.25"),
    ]

    manifest = {
        "version": 1,
        "generator": "scripts/make_fixtures.py",
        "opset": OPSET,
        "ir_version": IR_VERSION,
        "defaults": {"probability_threshold": THRESHOLD, "nms_iou": NMS_IOU},
        "models": [],
    }
    for spec in specs:
        raw = [[float(v) for v in r] for r in spec["raw"]]
        n = len(raw)
        nc = spec["nc"]
        layout = spec["layout"]
        arr = np.array(raw, dtype=np.float64)
        if layout == "ultralytics":
            const = arr.T[None]  # [1, 4+nc, N]
        else:
            const = arr[None]  # [1, N, 6] or [1, N, 5+nc]
        if not np.array_equal(const.astype(np.float32).astype(np.float64), const):
            raise SystemExit(f"{spec['file']}: a value is not exact in float32")
        input_shape = spec["input_shape"]
        boxes = decode(layout, raw)
        for b in boxes:
            if not (0 <= b[0] <= b[2] <= 640 and 0 <= b[1] <= b[3] <= 640):
                raise SystemExit(f"{spec['file']}: box {b} outside 640x640")
        entry = {
            "file": spec["file"],
            "description": spec["description"],
            "input_name": "images",
            "input_shape": [d if isinstance(d, int) else -1 for d in input_shape],
            "input_dim_names": [None if isinstance(d, int) else d for d in input_shape],
            "input_type": spec.get("input_type", "float32"),
            "output_name": "output0",
            "output_shape": [spec.get("runs_at_batch") or (input_shape[0] if isinstance(input_shape[0], int) else -1),
                             *const.shape[1:]],
            "runs_at_batch": spec.get("runs_at_batch"),
            "output_type": "float32",
            "layout": layout,
            "num_classes": nc,
            "needs_nms": layout != "end2end",
            "metadata": spec["metadata"],
            "boxes": boxes,
            "raw": raw,
            "kept_default": kept_default(boxes, layout != "end2end"),
        }
        assert entry["output_shape"][1:] == ([4 + nc, n] if layout == "ultralytics" else [n, 6] if layout == "end2end" else [n, 5 + nc])
        path = out_dir / spec["file"]
        build(path, input_shape=input_shape, input_type=entry["input_type"], const=const,
              metadata=spec["metadata"], consume_pixels=spec.get("consume_pixels", True),
              batch_one_only=spec.get("runs_at_batch") == 1)
        check_with_ort(path, entry, const.astype(np.float32))
        manifest["models"].append(entry)

    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out_dir / "manifest.json")
    print(f"make_fixtures: wrote {len(specs)} models and manifest.json to {out_dir}")
    write_brightbox(out_dir)
    write_classes_of(args.assets / "models" / "yolov8n_320.onnx")
    write_resize_references(args.assets)
    write_decode_references(args.assets)
    return 0


def write_brightbox(out_dir: Path) -> None:
    """``brightbox_64.onnx``: a detector whose boxes are exactly where the pixels are, for
    the tiling and merging tests (docs/pipeline.md §5.2). Input ``[B, 3, 64, 64]``;
    end-to-end output ``[B, 3, 6]``: row ``c`` is the bounding box of the pixels whose
    channel ``c`` is above 0.5 (values 0..1, so above 127.5 of 255), in input pixels
    (``x1 = first column``, ``x2 = last column + 1``), confidence 0.75 when there is
    one, else 0, class 0. So a pure red, green or blue rectangle on black is one object
    each (letterbox padding, 114, is below the bar), whatever the tiles cut of it."""
    side = 64
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, side, side])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 3, 6])
    inits = [
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array(0.75, dtype=np.float32), "conf"),
    ]
    nodes = [
        helper.make_node("Greater", ["images", "half"], ["bright_bool"]),
        helper.make_node("Cast", ["bright_bool"], ["bright"], to=TensorProto.FLOAT),  # [B,3,H,W]
        # Which columns (x) and rows (y) hold a bright pixel, per channel.
        helper.make_node("ReduceMax", ["bright"], ["cols"], axes=[2], keepdims=0),  # [B,3,W]
        helper.make_node("ReduceMax", ["bright"], ["rows"], axes=[3], keepdims=0),  # [B,3,H]
        helper.make_node("ReduceMax", ["cols"], ["present"], axes=[2], keepdims=1),  # [B,3,1]
    ]
    for name, profile in (("x", "cols"), ("y", "rows")):
        nodes += [
            helper.make_node("ArgMax", [profile], [f"{name}1_i"], axis=2, keepdims=1),
            helper.make_node("ArgMax", [profile], [f"{name}2_i"], axis=2, keepdims=1, select_last_index=1),
            helper.make_node("Cast", [f"{name}1_i"], [f"{name}1"], to=TensorProto.FLOAT),
            helper.make_node("Cast", [f"{name}2_i"], [f"{name}2_last"], to=TensorProto.FLOAT),
            helper.make_node("Add", [f"{name}2_last", "one"], [f"{name}2"]),
        ]
    nodes += [
        helper.make_node("Mul", ["present", "conf"], ["score"]),
        helper.make_node("Sub", ["present", "present"], ["class"]),
        helper.make_node("Concat", ["x1", "y1", "x2", "y2", "score", "class"], ["output0"], axis=2),
    ]
    graph = helper.make_graph(nodes, "brightbox_64", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="detections-make_fixtures")
    helper.set_model_props(model, {"end2end": "True", "names": NAMES2, "imgsz": f"[{side}, {side}]"})
    onnx.checker.check_model(model, full_check=True)
    path = out_dir / "brightbox_64.onnx"
    onnx.save(model, str(path))
    # Check: a red 10..30 x 5..20 block and a blue one touching the right edge.
    import onnxruntime as ort

    img = np.zeros((2, 3, side, side), dtype=np.float32)
    img[0, 0, 5:20, 10:30] = 1.0
    img[0, 2, 40:64, 50:64] = 0.9
    img[1] = 114 / 255
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"images": img})
    found = [out[0][0].tolist(), out[0][2].tolist()]
    want = [[10, 5, 30, 20, 0.75, 0], [50, 40, 64, 64, 0.75, 0]]
    if out.shape != (2, 3, 6) or found != want or out[0][1][4] != 0 or out[1][:, 4].any():
        raise SystemExit(f"brightbox_64.onnx: unexpected output {out.tolist()}")
    print(f"make_fixtures: wrote {path.name} (checked)")


def write_decode_references(assets: Path) -> None:
    """``fixtures/decode``: JPEGs (baseline 4:2:0 photos, and ones OpenCV encodes
    progressive, 4:4:4, 4:2:2 and grey) with what ``cv2.imdecode`` makes of them, stored as
    PNG, for the test that holds the service's JPEG decoding to OpenCV's
    (adapters/tests/opencv.rs)."""
    import cv2

    out = assets / "fixtures" / "decode"
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for photo in ("bus.jpg", "zidane.jpg"):
        (out / photo).write_bytes((assets / "photos" / photo).read_bytes())
        names.append(photo)
    astronaut = cv2.imread(str(assets / "photos" / "astronaut.png"), cv2.IMREAD_COLOR)
    variants = {
        "astronaut_progressive.jpg": [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
        "astronaut_444.jpg": [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
        "astronaut_422.jpg": [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422],
    }
    for name, params in variants.items():
        cv2.imwrite(str(out / name), astronaut, params)
        names.append(name)
    grey = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(out / "astronaut_grey.jpg"), grey, [cv2.IMWRITE_JPEG_QUALITY, 90])
    names.append("astronaut_grey.jpg")
    for name in names:
        decoded = cv2.imdecode(np.fromfile(str(out / name), dtype=np.uint8), cv2.IMREAD_COLOR)
        cv2.imwrite(str(out / f"{name}.png"), decoded)
    (out / "manifest.json").write_text(json.dumps({"opencv": cv2.__version__, "jpegs": names}, indent=1) + "\n")
    print(f"make_fixtures: wrote {len(names)} cv2.imdecode references to {out}")


# (name, source photo, crop (x, y, w, h) or None, [target (w, h), ...]): shrinking by
# non-integer and integer factors, enlarging, odd sizes, and a stretch (aspect changed).
RESIZE_CASES = [
    ("astronaut", "astronaut.png", None, [(320, 320), (256, 256), (203, 157), (640, 640), (700, 333)]),
    ("camera_odd", "camera.png", (17, 9, 333, 251), [(320, 241), (641, 483), (99, 75), (320, 320)]),
    ("bus", "bus.jpg", None, [(480, 640), (240, 320), (353, 470), (640, 640)]),
]


def write_resize_references(assets: Path) -> None:
    """``fixtures/resize``: sources and what ``cv2.resize(INTER_LINEAR)`` makes of them, for
    the test that holds the service's resize to OpenCV's (adapters/tests/opencv.rs)."""
    import cv2  # only this step needs OpenCV

    out = assets / "fixtures" / "resize"
    out.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, photo, crop, targets in RESIZE_CASES:
        src = cv2.imread(str(assets / "photos" / photo), cv2.IMREAD_COLOR)
        if crop is not None:
            x, y, w, h = crop
            src = np.ascontiguousarray(src[y : y + h, x : x + w])
        cv2.imwrite(str(out / f"{name}.png"), src)
        for w, h in targets:
            cv2.imwrite(str(out / f"{name}_{w}x{h}.png"), cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR))
        cases.append({"source": f"{name}.png", "targets": [[w, h] for w, h in targets]})
    (out / "manifest.json").write_text(json.dumps({"opencv": cv2.__version__, "cases": cases}, indent=1) + "\n")
    print(f"make_fixtures: wrote {sum(len(c['targets']) for c in cases)} cv2.resize references to {out}")


def write_classes_of(model: Path) -> None:
    """``<model stem>.classes.json`` from the names in a real model's metadata, so the
    service knows every class the model has (no size limit: any box is kept)."""
    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    names = ast.literal_eval(meta["names"])
    entries = [{"Id": int(i), "Name": str(n), "ShortName": str(n)[:8], "Color": "#3498db", "MaxSizeM": 100000}
               for i, n in sorted(names.items())]
    out = model.with_name(model.stem + ".classes.json")
    out.write_text(json.dumps(entries, indent=1) + "\n")
    print(f"make_fixtures: wrote {out.name} ({len(entries)} classes)")


if __name__ == "__main__":
    sys.exit(main())
