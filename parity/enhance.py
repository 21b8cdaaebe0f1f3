#!/usr/bin/env python3
"""Parity goldens for the face enhancers and the occlusion mask: FaceFusion's
face_enhancer / face_masker algorithm (REFERENCE 2.6c, 2.7, 3.8), written
here with OpenCV, NumPy and ONNX Runtime exactly as FaceFusion 3.x does it,
run on small synthetic ONNX models with the real signatures:

* gfpgan_1.4.onnx   input 'input' [1,3,512,512] -> output [1,3,512,512]
* gpen_bfr_256.onnx input 'input' [1,3,256,256] -> output [1,3,256,256]
* codeformer.onnx   inputs 'input' [1,3,512,512] float, 'weight' [1] double
* xseg_1.onnx       input 'input' [1,256,256,3] NHWC -> output [1,256,256,1]

on the parity photos and the five points in goldens.json (written by
generate.py). Run on demand, not in CI:

    .cache/parity-venv/bin/python parity/enhance.py

It writes enhance.json and enhance_*.png into
crates/camshow-core/tests/data/parity/; crates/camshow-core/tests/parity/
compares the Rust enhancer with them.
"""

import json
import os

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "camshow-core", "tests", "data", "parity")
OPSET = [helper.make_opsetid("", 13)]

FFHQ_512 = np.array([[0.37691676, 0.46864664], [0.62285697, 0.46912813], [0.50123859, 0.61331904],
                     [0.39308822, 0.72541100], [0.61150205, 0.72490465]])
ARCFACE_128 = np.array([[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219],
                        [0.38710391, 0.72160547], [0.61507734, 0.72034453]])


def save(model, name):
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    return path


def make_enhancer(name, size, seed, with_weight):
    """A 3x3 convolution, tanh, plus a fraction of the input: a deterministic,
    spatially varying function of the crop, as small as possible."""
    r = np.random.RandomState(seed)
    w = r.normal(0, 0.35, (3, 3, 3, 3)).astype(np.float32)
    b = r.normal(0, 0.1, (3,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Tanh", ["c"], ["t"]),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])]
    if with_weight:
        # output = t * w + input * (1 - w) * 0.5, the weight cast from double.
        inputs.append(helper.make_tensor_value_info("weight", TensorProto.DOUBLE, [1]))
        inits.append(numpy_helper.from_array(np.array([1.0], np.float32), "one"))
        nodes += [
            helper.make_node("Cast", ["weight"], ["wf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["t", "wf"], ["tw"]),
            helper.make_node("Sub", ["one", "wf"], ["omw"]),
            helper.make_node("Mul", ["input", "omw"], ["xi"]),
            helper.make_node("Mul", ["xi", "half"], ["xh"]),
            helper.make_node("Add", ["tw", "xh"], ["output"]),
        ]
    else:
        nodes += [helper.make_node("Mul", ["input", "half"], ["xh"]), helper.make_node("Add", ["t", "xh"], ["output"])]
    graph = helper.make_graph(nodes, name + "_synthetic", inputs,
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])], inits)
    return save(helper.make_model(graph, opset_imports=OPSET, ir_version=8), name + ".onnx")


def make_xseg():
    """XSeg: NHWC input; the output is a sigmoid of the local (5x5) mean
    brightness, so bright areas count as occluders (mask 0) and darker ones
    as face, with soft edges."""
    w = np.full((1, 3, 5, 5), 1.0 / 75.0, np.float32)
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "W", "B"], ["c"], pads=[2, 2, 2, 2]),
        helper.make_node("Mul", ["c", "gain"], ["g"]),
        helper.make_node("Sigmoid", ["g"], ["s"]),
        helper.make_node("Transpose", ["s"], ["output"], perm=[0, 2, 3, 1]),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([-0.45], np.float32), "B"),
             numpy_helper.from_array(np.array(-12.0, np.float32), "gain")]
    graph = helper.make_graph(nodes, "xseg_synthetic",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 256, 256, 3])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 256, 256, 1])], inits)
    return save(helper.make_model(graph, opset_imports=OPSET, ir_version=8), "xseg_1.onnx")


# --- FaceFusion's algorithm -------------------------------------------------

def warp_face_by_face_landmark_5(frame, kps, template, size):
    m = cv2.estimateAffinePartial2D(kps, template * size, method=cv2.RANSAC, ransacReprojThreshold=100)[0]
    crop = cv2.warpAffine(frame, m, (size, size), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_AREA)
    return crop, m


def create_box_mask(size, blur, padding):
    blur_amount = int(size * 0.5 * blur)
    blur_area = max(blur_amount // 2, 1)
    box = np.ones((size, size), np.float32)
    box[:max(blur_area, int(size * padding[0] / 100)), :] = 0
    box[-max(blur_area, int(size * padding[2] / 100)):, :] = 0
    box[:, :max(blur_area, int(size * padding[3] / 100))] = 0
    box[:, -max(blur_area, int(size * padding[1] / 100)):] = 0
    if blur_amount > 0:
        box = cv2.GaussianBlur(box, (0, 0), blur_amount * 0.25)
    return box


def create_occlusion_mask(session, crop):
    prep = cv2.resize(crop, (256, 256))
    prep = np.expand_dims(prep, axis=0).astype(np.float32) / 255.0
    mask = session.run(None, {"input": prep})[0][0]
    mask = mask.transpose(0, 1, 2).clip(0, 1).astype(np.float32)
    mask = cv2.resize(mask, crop.shape[:2][::-1])
    return (cv2.GaussianBlur(mask.clip(0, 1), (0, 0), 5).clip(0.5, 1) - 0.5) * 2


def prepare_crop_frame(crop):
    crop = crop[:, :, ::-1] / 255.0
    crop = (crop - 0.5) / 0.5
    return np.expand_dims(crop.transpose(2, 0, 1), axis=0).astype(np.float32)


def normalize_crop_frame(crop):
    crop = np.clip(crop, -1, 1)
    crop = (crop + 1) / 2
    crop = crop.transpose(1, 2, 0)
    crop = (crop * 255.0).round()
    return crop.astype(np.uint8)[:, :, ::-1]


def paste_back(frame, crop, crop_mask, m):
    h, w = frame.shape[:2]
    ch, cw = crop.shape[:2]
    inv = cv2.invertAffineTransform(m)
    pts = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float64)
    region = cv2.transform(pts.reshape(1, -1, 2), inv).reshape(-1, 2)
    lo = np.floor(region.min(axis=0)).astype(int)
    hi = np.ceil(region.max(axis=0)).astype(int)
    x1, y1 = np.clip(lo, 0, [w, h])
    x2, y2 = np.clip(hi, 0, [w, h])
    pm = inv.copy()
    pm[0, 2] -= x1
    pm[1, 2] -= y1
    pw, ph = x2 - x1, y2 - y1
    inv_mask = cv2.warpAffine(crop_mask, pm, (pw, ph)).clip(0, 1)
    inv_mask = np.expand_dims(inv_mask, axis=-1)
    inv_crop = cv2.warpAffine(crop, pm, (pw, ph), borderMode=cv2.BORDER_REPLICATE)
    out = frame.copy()
    region_px = out[y1:y2, x1:x2]
    region_px = region_px * (1 - inv_mask) + inv_crop * inv_mask
    out[y1:y2, x1:x2] = region_px.astype(out.dtype)
    return out, [int(x1), int(y1), int(pw), int(ph)]


def enhance(frame, kps, session, template, size, blend, weight, occluder):
    crop, m = warp_face_by_face_landmark_5(frame, kps, template, size)
    masks = [create_box_mask(size, 0.3, (0, 0, 0, 0))]
    if occluder is not None:
        masks.append(create_occlusion_mask(occluder, crop))
    feeds = {}
    for inp in session.get_inputs():
        if inp.name == "input":
            feeds[inp.name] = prepare_crop_frame(crop)
        if inp.name == "weight":
            feeds[inp.name] = np.array([weight]).astype(np.double)
    out = normalize_crop_frame(session.run(None, feeds)[0][0])
    mask = np.minimum.reduce(masks).clip(0, 1)
    pasted, rect = paste_back(frame, out, mask, m)
    b = 1 - blend / 100
    final = cv2.addWeighted(frame, b, pasted, 1 - b, 0)
    return crop, m, mask, final, rect


def main():
    goldens = json.load(open(os.path.join(OUT, "goldens.json")))
    models = {
        "gfpgan_1.4": make_enhancer("gfpgan_1.4", 512, 31, False),
        "gpen_bfr_256": make_enhancer("gpen_bfr_256", 256, 32, False),
        "codeformer": make_enhancer("codeformer", 512, 33, True),
    }
    xseg = ort.InferenceSession(make_xseg(), providers=["CPUExecutionProvider"])
    cases = [
        # (name, photo, face index, model, template, size, blend, weight, occlusion)
        ("gfpgan_astronaut", "astronaut", 0, "gfpgan_1.4", FFHQ_512, 512, 80, 0.5, False),
        ("gpen256_t1", "t1", 1, "gpen_bfr_256", ARCFACE_128, 256, 100, 0.5, False),
        ("codeformer_t1_occlusion", "t1", 0, "codeformer", FFHQ_512, 512, 80, 0.7, True),
    ]
    out = {"versions": {"opencv": cv2.__version__, "numpy": np.__version__, "onnxruntime": ort.__version__}, "cases": []}
    for name, photo, idx, model, template, size, blend, weight, occ in cases:
        frame = cv2.imread(os.path.join(OUT, photo + ".png"))
        kps = np.array(goldens["faces"][photo][idx]["kps"], np.float32)
        session = ort.InferenceSession(models[model], providers=["CPUExecutionProvider"])
        crop, m, mask, final, rect = enhance(frame, kps, session, template, size, blend, weight, xseg if occ else None)
        x, y, w, h = rect
        cv2.imwrite(os.path.join(OUT, f"enhance_{name}_crop.png"), crop)
        cv2.imwrite(os.path.join(OUT, f"enhance_{name}_result.png"), final[y:y + h, x:x + w])
        outside = final.copy()
        outside[y:y + h, x:x + w] = frame[y:y + h, x:x + w]
        assert np.array_equal(outside, frame), "addWeighted changed pixels outside the paste rectangle"
        out["cases"].append({
            "name": name, "photo": photo, "face": idx, "model": model, "size": size, "blend": blend,
            "weight": weight, "occlusion": occ, "kps": kps.tolist(), "matrix": m.tolist(), "rect": rect,
            "mask_sum": float(mask.sum()),
        })
        print(name, rect, "mask sum", float(mask.sum()))
    with open(os.path.join(OUT, "enhance.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
