#!/usr/bin/env bash
# The Python package's tests: the wheel (built with the gate's test marker,
# as the Rust test binaries are, so that refusals can be driven end to end;
# into target/test-wheel, never shipped) installed into a fresh virtual
# environment with pinned test tools, then pytest (pictures, videos, segments,
# a local Ray cluster) and mypy --strict on the examples against the stubs.
# Called by scripts/test.sh after scripts/setup.sh --test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/cache.sh"
# Pinned test tools (the wheel itself needs only numpy).
NUMPY_VERSION="2.4.6"
PYTEST_VERSION="9.2.0"
MYPY_VERSION="2.4.1"
RAY_VERSION="2.60.0"
# ORT_VERSION (scripts/cache.sh): the runtime the setup uses, installed as a package too.

say() { printf '[test-python] %s\n' "$*" >&2; }
cd "$ROOT"
say "building the test wheel (maturin, with the gate's test marker)"
rm -rf target/test-wheel
"$CACHE/py-build/bin/maturin" build --profile dev --strip --locked -m crates/camshow-py/Cargo.toml \
  -o target/test-wheel -i "$PYTHON" --features camshow-core/test-marker -q
VENV="$ROOT/target/py-test-venv"
say "fresh virtual environment: $VENV"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  "numpy==$NUMPY_VERSION" "pytest==$PYTEST_VERSION" "mypy==$MYPY_VERSION" "ray[data]==$RAY_VERSION" \
  "onnxruntime==$ORT_VERSION" \
  target/test-wheel/camshow_deepfaker-*.whl
cargo build --locked -p camshow-cli -q
# The suite imports the installed package, never the source tree.
cd "$ROOT/crates/camshow-py/tests"
PYTEST_CAMSHOW_BIN="$ROOT/target/debug/camshow" "$VENV/bin/python" -m pytest -q -p no:cacheprovider .
