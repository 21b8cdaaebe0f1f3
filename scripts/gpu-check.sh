#!/usr/bin/env bash
# The prepared GPU check (issue 16), start to finish in a few minutes on a
# machine with an NVIDIA GPU: the doctor, each provider attaching to the
# compute-faithful stand-ins with their output against the CPU's, the
# installed models, and the video and live benchmarks on the GPU (also
# with CUDA graphs). Every result goes into one JSON file.
#
# Usage: scripts/gpu-check.sh [OUT_DIR]     (default: gpu-check/)
#
# Needs: a release build (`cargo build --release -p camshow-cli`, or
# CAMSHOW=path/to/camshow), `scripts/setup.sh` run once (models, samples,
# and, where nvidia-smi sees a GPU, the GPU runtime in the setup cache).
# Where the setup could not download (an offline machine), put the
# onnxruntime-gpu wheel's onnxruntime/capi/libonnxruntime*.so* into
# $CACHE/onnxruntime-gpu/1.31.1/ by hand: CUDA's libraries are then taken
# from this machine's Python (its nvidia-* wheels), as below.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/cache.sh"
OUT="${1:-$ROOT/gpu-check}"
BIN="${CAMSHOW:-$ROOT/target/release/camshow}"
SAMPLE="$CACHE/samples/astronaut.png"
GPU_DIR="$CACHE/onnxruntime-gpu/1.31.1"
mkdir -p "$OUT"

say() { printf '[gpu-check] %s\n' "$*" >&2; }
[ -x "$BIN" ] || { say "no camshow binary at $BIN (cargo build --release -p camshow-cli)"; exit 1; }
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || { say "nvidia-smi sees no GPU: nothing to check"; exit 1; }

# CUDA's libraries from this machine's Python when the setup cache has none.
if ls "$GPU_DIR"/libonnxruntime.so.* >/dev/null 2>&1 && ! ls "$GPU_DIR"/nvidia/*.so* >/dev/null 2>&1; then
  site="$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)"
  if [ -n "$site" ]; then
    mkdir -p "$GPU_DIR/nvidia"
    ln -sf "$site"/nvidia/*/lib/*.so* "$GPU_DIR/nvidia/" 2>/dev/null || true
    say "CUDA libraries linked from $site/nvidia"
  fi
fi

STEPS=()
step() { # name timeout command...: runs one check, keeps its JSON output and log
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"
  local rc=$?
  say "$name: exit $rc in $((SECONDS - start)) s"
  STEPS+=("$name:$rc:$((SECONDS - start))")
}

step doctor 60 "$BIN" doctor --json
for ep in cuda tensorrt; do
  step "stand-ins-$ep" 300 "$BIN" bench stand-ins --runs 20 --json --execution-provider "$ep"
done
step models-cuda 120 "$BIN" bench models -i "$SAMPLE" --json --execution-provider cuda
step video-720p-cuda 300 "$BIN" bench video -s "$SAMPLE" --size 720p --seconds 10 --stand-ins --json --execution-provider cuda
# Provider options per model: the swapper on TensorRT with FP16 kernels
# (its output checked at load, FP32 kernels on NaN), everything else on
# CUDA with cuDNN's heuristic search; in-place buffers in pinned memory,
# NVDEC decoding (the report's gpu_decode).
cat >"$OUT/trt-fp16.toml" <<TOML
version = 1
[[runtime.providers]]
kind = "tensorrt"
fp16 = true
engine_cache = "$OUT/trt-cache"
models = ["inswapper_128", "inswapper_128_fp16"]
[[runtime.providers]]
kind = "cuda"
conv_search = "heuristic"
TOML
step video-720p-trt-fp16 420 "$BIN" --config "$OUT/trt-fp16.toml" bench video -s "$SAMPLE" --size 720p --seconds 10 --stand-ins --json
# CUDA graphs for the models run at one fixed shape (the swapper, GFPGAN):
# their output against the CPU's, their time against stand-ins-cuda's, and
# the live pipeline with them; the other models on CUDA without.
cat >"$OUT/cuda-graph.toml" <<TOML
version = 1
[[runtime.providers]]
kind = "cuda"
cuda_graph = true
models = ["inswapper_128", "inswapper_128_fp16", "gfpgan_1.4"]
[[runtime.providers]]
kind = "cuda"
models = ["det_10g", "w600k_r50", "2d106det", "nudenet"]
TOML
step stand-ins-cuda-graph 300 "$BIN" --config "$OUT/cuda-graph.toml" bench stand-ins --runs 20 --json
step live-720p-cuda-graph 120 "$BIN" --config "$OUT/cuda-graph.toml" bench live -s "$SAMPLE" --size 1280x720 --seconds 20 --stand-ins --json
step live-720p-cuda 120 "$BIN" bench live -s "$SAMPLE" --size 1280x720 --seconds 20 --stand-ins --json --execution-provider cuda
step live-720p-cuda-classic 120 "$BIN" bench live -s "$SAMPLE" --size 1280x720 --seconds 20 --json --execution-provider cuda

# One JSON file: every step's exit status, time and output.
python3 - "$OUT" "${STEPS[@]}" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
result = {"nvidia_smi": (out / "nvidia-smi.txt").read_text(errors="replace"), "steps": {}}
for s in sys.argv[2:]:
    name, rc, secs = s.split(":")
    text = (out / f"{name}.json").read_text(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    log = (out / f"{name}.log").read_text(errors="replace")[-4000:]
    result["steps"][name] = {"exit": int(rc), "seconds": float(secs), "result": body, "log_tail": log}
# Each GPU's stand-in outputs against the CPU's, on two inputs in a row: a
# relative difference over 5 % (TF32 and summation order give far less),
# NaN, another shape, a step that failed or a CUDA graph step without a
# graph is a wrong result.
bad = []
for name, step in result["steps"].items():
    if not name.startswith("stand-ins"):
        continue
    rows = step["result"]
    if step["exit"] != 0 or not isinstance(rows, list):
        bad.append(f"{name}: exit {step['exit']}, no results")
        continue
    for row in rows:
        rel = row.get("max_rel_diff_vs_cpu")
        if not isinstance(rel, (int, float)) or rel > 0.05:
            bad.append(f"{name}: {row.get('model')} differs from the CPU by {rel}")
        if name.endswith("graph") and row.get("model") in ("inswapper_128", "gfpgan_1.4") and not row.get("graph_sessions"):
            bad.append(f"{name}: {row.get('model')} ran without a CUDA graph")
result["wrong_outputs"] = bad
(out / "gpu-check.json").write_text(json.dumps(result, indent=2))
print(out / "gpu-check.json")
for b in bad:
    print("[gpu-check] WRONG:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
