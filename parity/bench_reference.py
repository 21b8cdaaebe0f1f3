#!/usr/bin/env python3
"""The Python reference's per-frame cost on this machine, for a side-by-side
ratio with `cargo bench -p camshow-core --bench engine -- pipeline_720p`.

Same work as the Rust bench: a 1280x720 frame with one face, detected by a
stand-in with det_10g's signature (constant outputs holding one face, so the
network costs nothing), aligned, swapped by the synthetic inswapper_128 from
tests/data/parity, and pasted back with Deep-Live-Cam's fast paste-back.

    .cache/parity-venv/bin/python parity/bench_reference.py
"""

import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate import OUT, dlc_fast_paste_back, face_of, FACES  # noqa: E402

from insightface.model_zoo import get_model  # noqa: E402


def stand_in_scrfd(path):
    nodes = [
        helper.make_node("Slice", ["input.1", "starts", "ends"], ["px"]),
        helper.make_node("Reshape", ["px", "one"], ["px1"]),
        helper.make_node("Mul", ["px1", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.zeros(4, np.int64), "starts"), numpy_helper.from_array(np.ones(4, np.int64), "ends"),
             numpy_helper.from_array(np.ones(1, np.int64), "one"), numpy_helper.from_array(np.array(0, np.float32), "zero")]
    outs = []
    for kind, c in [("s", 1), ("b", 4), ("k", 10)]:
        for stride in [8, 16, 32]:
            n = (640 // stride) ** 2 * 2
            v = np.zeros((n, c), np.float32)
            if stride == 32:
                i = (5 * 20 + 10) * 2
                v[i] = {"s": [0.95], "b": [1.5] * 4, "k": [-0.6, -0.45, 0.6, -0.45, 0.0, 0.15, -0.45, 0.75, 0.45, 0.75]}[kind]
            name = f"{kind}{stride}"
            nodes.append(helper.make_node("Constant", [], [f"c_{name}"], value=numpy_helper.from_array(v)))
            nodes.append(helper.make_node("Add", [f"c_{name}", "z"], [name]))
            outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, c]))
    g = helper.make_graph(nodes, "scrfd_stand_in", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "H", "W"])], outs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


def main():
    import onnxruntime
    tmp = tempfile.mkdtemp()
    det_path = os.path.join(tmp, "scrfd.onnx")
    stand_in_scrfd(det_path)
    opts = dict(providers=["CPUExecutionProvider"])
    det = get_model(det_path, **opts)
    det.prepare(ctx_id=-1, det_thresh=0.5, input_size=(640, 640))
    rec = get_model(os.path.join(OUT, "w600k_r50.onnx"), **opts)
    swp = get_model(os.path.join(OUT, "inswapper_128.onnx"), **opts)
    astro = cv2.imread(os.path.join(OUT, "astronaut.png"))
    src = face_of(*FACES["astronaut"][0])
    src.embedding = rec.get(astro, src)
    y, x = np.mgrid[0:720, 0:1280]
    frame = np.dstack([(x * 7 + y) % 256, (y * 3) % 256, (x ^ y) % 256]).astype(np.uint8)[:, :, ::-1].copy()

    def one():
        bboxes, kpss = det.detect(frame, max_num=0)
        assert len(bboxes) == 1
        f = face_of(bboxes[0][:4], kpss[0])
        fake, M = swp.get(frame, f, src, paste_back=False)
        out, _ = dlc_fast_paste_back(frame, fake, M)
        return out

    for _ in range(20):
        one()
    times = []
    for _ in range(200):
        t = time.perf_counter()
        one()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"reference (insightface {__import__('insightface').__version__}, OpenCV {cv2.__version__}, onnxruntime {onnxruntime.__version__}): "
          f"720p one face, median {statistics.median(times):.2f} ms, p95 {times[int(len(times) * 0.95)]:.2f} ms, min {times[0]:.2f} ms")


if __name__ == "__main__":
    main()
