#!/usr/bin/env python3
"""Parity goldens: the reference implementation (insightface 0.7.3, the version
Deep-Live-Cam pins) run on small synthetic ONNX models that have the exact
input/output names, shapes and output order of det_10g, w600k_r50, 2d106det and
inswapper_128, on the real sample photos.

Run on demand (not in CI), after `scripts/setup.sh` has fetched the photos:

    python3 -m venv .cache/parity-venv
    .cache/parity-venv/bin/pip install -r parity/requirements.txt
    .cache/parity-venv/bin/python parity/generate.py

It writes crates/camshow-core/tests/data/parity/: the four models, the photos
as decoded by OpenCV (PNG, so JPEG decoders do not enter the comparison),
goldens.json (boxes, points, matrices, embeddings, latents, landmarks) and
PNG crops and final images. The Rust tests in crates/camshow-core/tests/parity/
load the same models and photos and must match within the stated tolerances.
"""

import json
import os
import platform
import sys

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import insightface
from insightface.app.common import Face
from insightface.model_zoo import get_model
from insightface.utils import face_align

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "camshow-core", "tests", "data", "parity")
if platform.system() == "Darwin":
    CACHE = os.environ.get("CAMSHOW_CACHE", os.path.expanduser("~/Library/Caches/camshow-deepfaker"))
else:
    CACHE = os.environ.get("CAMSHOW_CACHE", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "camshow-deepfaker"))
SAMPLES = os.path.join(CACHE, "samples")
OPSET = [helper.make_opsetid("", 13)]


def rng(seed):
    return np.random.RandomState(seed)


def save(model, name):
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    return path


# ---------------------------------------------------------------------------
# Synthetic models with the real signatures
# ---------------------------------------------------------------------------

def make_det_10g():
    """SCRFD det_10g (run at 640x640, as insightface does): input 'input.1' [1,3,?,?]; 9 outputs (scores x3, boxes x3,
    points x3 for strides 8/16/32, 2 anchors, no batch dimension), named as in
    the real file. Each output is a deterministic function of the pixels: the
    image is average-pooled to the stride grid and mixed by 1x1 convolutions."""
    r = rng(10)
    nodes, inits = [], []
    score_names, box_names, kps_names = ["448", "471", "494"], ["451", "474", "497"], ["454", "477", "500"]
    outputs = []
    for level, stride in enumerate([8, 16, 32]):
        pooled = f"pool{stride}"
        nodes.append(helper.make_node("AveragePool", ["input.1"], [pooled], kernel_shape=[stride, stride], strides=[stride, stride]))
        for kind, name, ch in [("score", score_names[level], 2), ("box", box_names[level], 8), ("kps", kps_names[level], 20)]:
            w = f"w_{kind}{stride}"
            b = f"b_{kind}{stride}"
            if kind == "score":
                # Bright cells score high; a fixed per-cell noise map (for the
                # 640x640 letterboxed input) keeps every score distinct.
                wv = (1.0 + r.normal(0, 0.2, (ch, 3, 1, 1))).astype(np.float32)
                bv = np.full((ch,), -2.2, np.float32)
            elif kind == "box":
                wv = r.normal(0, 0.6, (ch, 3, 1, 1)).astype(np.float32)
                bv = r.uniform(0.5, 1.5, (ch,)).astype(np.float32)
            else:
                wv = r.normal(0, 0.8, (ch, 3, 1, 1)).astype(np.float32)
                bv = r.normal(0, 0.5, (ch,)).astype(np.float32)
            inits += [numpy_helper.from_array(wv, w), numpy_helper.from_array(bv, b)]
            conv = f"conv_{kind}{stride}"
            nodes.append(helper.make_node("Conv", [pooled, w, b], [conv]))
            act = conv
            if kind == "score":
                cells = 640 // stride
                noise = f"noise{stride}"
                inits.append(numpy_helper.from_array(r.normal(0, 0.8, (1, ch, cells, cells)).astype(np.float32), noise))
                nodes.append(helper.make_node("Add", [conv, noise], [f"noisy{stride}"]))
                act = f"sig{stride}"
                nodes.append(helper.make_node("Sigmoid", [f"noisy{stride}"], [act]))
            elif kind == "box":
                act = f"softplus{stride}"
                nodes.append(helper.make_node("Softplus", [conv], [act]))
            tr = f"tr_{kind}{stride}"
            nodes.append(helper.make_node("Transpose", [act], [tr], perm=[0, 2, 3, 1]))
            shape = f"shape_{kind}{stride}"
            inits.append(numpy_helper.from_array(np.array([-1, ch // 2], np.int64), shape))
            nodes.append(helper.make_node("Reshape", [tr, shape], [name]))
    for names, c in [(score_names, 1), (box_names, 4), (kps_names, 10)]:
        for n in names:
            outputs.append((n, c))
    order = score_names + box_names + kps_names
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N" + n, dict(outputs)[n]]) for n in order]
    graph = helper.make_graph(nodes, "det_10g_synthetic",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])], outs, inits)
    return save(helper.make_model(graph, opset_imports=OPSET, ir_version=8), "det_10g.onnx")


def make_w600k_r50():
    """ArcFace w600k_r50: input 'input.1' [None,3,112,112] -> output '683' [1,512]."""
    r = rng(11)
    w = r.normal(0, 0.1, (3 * 7 * 7, 512)).astype(np.float32)
    b = r.normal(0, 0.1, (512,)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["p"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "W", "B"], ["683"]),
    ]
    graph = helper.make_graph(nodes, "w600k_r50_synthetic",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, 112, 112])],
                              [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 512])],
                              [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    return save(helper.make_model(graph, opset_imports=OPSET, ir_version=8), "w600k_r50.onnx")


def make_2d106det():
    """2d106det: input 'data' [None,3,192,192] -> output 'fc1' [1,212]. Like the
    real file it normalises inside (its first nodes are named Sub/Mul, which is
    how insightface decides to feed raw 0-255 pixels)."""
    r = rng(12)
    w = r.normal(0, 0.08, (3 * 12 * 12, 212)).astype(np.float32)
    b = r.normal(0, 0.2, (212,)).astype(np.float32)
    nodes = [
        helper.make_node("Sub", ["data", "mean"], ["sub"], name="Sub_0"),
        helper.make_node("Mul", ["sub", "scale"], ["mul"], name="Mul_1"),
        helper.make_node("AveragePool", ["mul"], ["p"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "W", "B"], ["g"]),
        helper.make_node("Tanh", ["g"], ["fc1"]),
    ]
    inits = [numpy_helper.from_array(np.array([127.5], np.float32), "mean"),
             numpy_helper.from_array(np.array([1 / 128.0], np.float32), "scale"),
             numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]
    graph = helper.make_graph(nodes, "2d106det_synthetic",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["None", 3, 192, 192])],
                              [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 212])], inits)
    return save(helper.make_model(graph, opset_imports=OPSET, ir_version=8), "2d106det.onnx")


def make_inswapper():
    """inswapper_128: inputs 'target' [1,3,128,128] (RGB 0-1) and 'source'
    [1,512] -> 'output' [1,3,128,128] in [0,1]; a 512x512 'emap' is the last
    initializer, as in the real file (stored as float16 here to keep the file small)."""
    r = rng(13)
    wt = (np.eye(3, dtype=np.float32) * 3.0 + r.normal(0, 0.4, (3, 3))).astype(np.float32).reshape(3, 3, 1, 1)
    bt = np.array([-1.5, -1.5, -1.5], np.float32)
    ws = r.normal(0, 1.5, (512, 3)).astype(np.float32)
    # float16 keeps the committed file under 1 MB; both sides read the same values.
    emap = r.normal(0, 1.0 / np.sqrt(512), (512, 512)).astype(np.float16)
    nodes = [
        helper.make_node("Conv", ["target", "WT", "BT"], ["t"]),
        helper.make_node("Gemm", ["source", "WS"], ["s"]),
        helper.make_node("Reshape", ["s", "S4"], ["s4"]),
        helper.make_node("Add", ["t", "s4"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["output"]),
    ]
    inits = [numpy_helper.from_array(wt, "WT"), numpy_helper.from_array(bt, "BT"), numpy_helper.from_array(ws, "WS"),
             numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "S4"), numpy_helper.from_array(emap, "emap")]
    graph = helper.make_graph(nodes, "inswapper_128_synthetic",
                              [helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
                               helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])], inits)
    return save(helper.make_model(graph, opset_imports=OPSET, ir_version=8), "inswapper_128.onnx")


# ---------------------------------------------------------------------------
# Deep-Live-Cam's fast paste-back, rewritten from its description
# ---------------------------------------------------------------------------

def dlc_alpha_template(size):
    t = np.zeros((size, size), np.uint8)
    cv2.ellipse(t, (size // 2, size // 2), (int(size * 0.44), int(size * 0.44)), 0, 0, 360, 255, -1)
    return cv2.GaussianBlur(t, (31, 31), 12)


def dlc_fast_paste_back(frame, bgr_fake, M):
    size = bgr_fake.shape[0]
    h, w = frame.shape[:2]
    IM = cv2.invertAffineTransform(M)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    pts = corners @ IM.T
    x1 = max(int(np.floor(pts[:, 0].min())) - 2, 0)
    y1 = max(int(np.floor(pts[:, 1].min())) - 2, 0)
    x2 = min(int(np.ceil(pts[:, 0].max())) + 2, w)
    y2 = min(int(np.ceil(pts[:, 1].max())) + 2, h)
    IMs = IM.copy()
    IMs[0, 2] -= x1
    IMs[1, 2] -= y1
    rw, rh = x2 - x1, y2 - y1
    fake = cv2.warpAffine(bgr_fake, IMs, (rw, rh), borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(dlc_alpha_template(size), IMs, (rw, rh), borderValue=0)
    a3 = cv2.merge([alpha, alpha, alpha])
    tgt = frame[y1:y2, x1:x2]
    out = frame.copy()
    out[y1:y2, x1:x2] = cv2.add(cv2.multiply(fake, a3, scale=1 / 255.0), cv2.multiply(tgt, 255 - a3, scale=1 / 255.0))
    return out, [x1, y1, rw, rh]


# ---------------------------------------------------------------------------
# Goldens
# ---------------------------------------------------------------------------

# Faces at which the recognizer, landmarker and swapper are run: CenterFace's
# detections on the real photos (box, five points), so crops show real faces.
FACES = {
    "t1": [
        ([744.8, 344.8, 843.9, 481.5], [[760.4, 401.7], [804.3, 399.9], [774.0, 428.5], [766.0, 448.1], [803.3, 446.0]]),
        ([464.1, 268.4, 571.8, 415.5], [[493.8, 322.8], [545.0, 335.9], [510.1, 358.7], [484.2, 373.6], [527.5, 384.0]]),
        ([62.1, 266.2, 165.2, 394.3], [[88.8, 323.2], [127.3, 305.6], [121.8, 339.2], [118.0, 365.2], [151.5, 350.9]]),
    ],
    "astronaut": [
        ([176.1, 78.4, 274.0, 176.4], [[203.4, 101.3], [247.9, 106.5], [222.8, 126.0], [202.2, 144.7], [239.0, 149.1]]),
    ],
}


def face_of(bbox, kps):
    return Face(bbox=np.array(bbox, np.float32), kps=np.array(kps, np.float32), det_score=1.0)


def img_write(name, bgr):
    cv2.imwrite(os.path.join(OUT, name), bgr)
    return name


def main():
    os.makedirs(OUT, exist_ok=True)
    paths = {
        "det": make_det_10g(),
        "rec": make_w600k_r50(),
        "lmk": make_2d106det(),
        "swap": make_inswapper(),
    }
    det = get_model(paths["det"])
    det.prepare(ctx_id=-1, det_thresh=0.5, input_size=(640, 640))
    rec = get_model(paths["rec"])
    lmk = get_model(paths["lmk"])
    swp = get_model(paths["swap"])
    assert type(det).__name__ in ("RetinaFace", "SCRFD"), type(det)
    assert type(rec).__name__ == "ArcFaceONNX" and (rec.input_mean, rec.input_std) == (127.5, 127.5)
    assert type(lmk).__name__ == "Landmark" and (lmk.input_mean, lmk.input_std) == (0.0, 1.0)
    assert type(swp).__name__ == "INSwapper"

    photos = {}
    for key, fname in [("t1", "t1.jpg"), ("astronaut", "astronaut.png")]:
        bgr = cv2.imread(os.path.join(SAMPLES, fname), cv2.IMREAD_COLOR)
        if bgr is None:
            sys.exit(f"{fname} not found in {SAMPLES}: run scripts/setup.sh first")
        photos[key] = bgr
        img_write(f"{key}.png", bgr)

    goldens = {
        "versions": {"insightface": insightface.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
                     "onnxruntime": __import__("onnxruntime").__version__, "skimage": __import__("skimage").__version__},
        "detection": {}, "faces": {}, "swap": {},
    }

    for key, bgr in photos.items():
        bboxes, kpss = det.detect(bgr, max_num=0)
        # The letterboxed detector input exactly as RetinaFace.detect builds it,
        # so the decode can be compared separately from cv2.resize's rounding.
        im_ratio = float(bgr.shape[0]) / bgr.shape[1]
        if im_ratio > 1.0:
            nh, nw = 640, int(640 / im_ratio)
        else:
            nw, nh = 640, int(640 * im_ratio)
        canvas = np.zeros((640, 640, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(bgr, (nw, nh))
        goldens["detection"][key] = {"boxes": bboxes.tolist(), "kps": kpss.tolist(), "det_scale": float(nh) / bgr.shape[0],
                                     "canvas": img_write(f"{key}_det_input.png", canvas)}
        print(f"{key}: {len(bboxes)} synthetic detections")

    source_face = face_of(*FACES["astronaut"][0])
    source_face.embedding = rec.get(photos["astronaut"], source_face)
    for key, faces in FACES.items():
        bgr = photos[key]
        out = []
        for i, (bbox, kps) in enumerate(faces):
            f = face_of(bbox, kps)
            emb = rec.get(bgr, f)
            aimg112 = face_align.norm_crop(bgr, landmark=f.kps, image_size=112)
            M112 = face_align.estimate_norm(f.kps, 112)
            lm = lmk.get(bgr, f)
            aimg128, M128 = face_align.norm_crop2(bgr, f.kps, 128)
            fake, Mswap = swp.get(bgr, f, source_face, paste_back=False)
            latent = source_face.normed_embedding.reshape((1, -1)) @ swp.emap
            latent /= np.linalg.norm(latent)
            ref = swp.get(bgr, f, source_face, paste_back=True)
            fast, rect = dlc_fast_paste_back(bgr, fake, Mswap)
            # Only the neighbourhood of the face changes: keep that part of the
            # outputs (the tests check that everything else equals the input).
            changed = np.argwhere(np.any((ref != bgr) | (fast != bgr), axis=2))
            (cy1, cx1), (cy2, cx2) = changed.min(axis=0), changed.max(axis=0) + 1
            roi = [int(cx1), int(cy1), int(cx2 - cx1), int(cy2 - cy1)]
            out.append({
                "bbox": bbox, "kps": kps,
                "embedding": emb.tolist(),
                "m112": M112.tolist(), "m128": M128.tolist(),
                "landmarks_106": lm.tolist(),
                "crop112": img_write(f"{key}_{i}_crop112.png", aimg112),
                "crop128": img_write(f"{key}_{i}_crop128.png", aimg128),
                "fake": img_write(f"{key}_{i}_fake.png", fake),
                "changed_roi": roi,
                "paste_reference": img_write(f"{key}_{i}_paste_reference.png", ref[cy1:cy2, cx1:cx2]),
                "paste_fast": img_write(f"{key}_{i}_paste_fast.png", fast[cy1:cy2, cx1:cx2]),
                "paste_fast_rect": rect,
            })
        goldens["faces"][key] = out
    goldens["swap"] = {
        "source_embedding": source_face.embedding.tolist(),
        "latent": latent.ravel().tolist(),
        "emap_shape": list(swp.emap.shape),
    }
    img_write("alpha_template_128.png", dlc_alpha_template(128))
    with open(os.path.join(OUT, "goldens.json"), "w") as fh:
        json.dump(goldens, fh)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
