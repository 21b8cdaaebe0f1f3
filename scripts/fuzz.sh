#!/usr/bin/env bash
# The fuzz harness: libFuzzer, coverage-guided, on the stable toolchain
# (SanitizerCoverage through rustc's `-C passes`/`-C llvm-args`; no nightly).
#
#   scripts/fuzz.sh smoke            every target, 20 000 runs from the corpus
#                                    (the test command runs this; the corpus
#                                    in the repo is not modified)
#   scripts/fuzz.sh run [RUNS]       every target, RUNS runs each (default
#                                    1 000 000); new inputs are merged into
#                                    fuzz/corpus/<target> (minimised)
#   scripts/fuzz.sh TARGET [RUNS]    one target
#
# Targets: onnx nudenet detectors face_map settings mp4 mjpeg_request.
# A crash stops the run with the input in fuzz/artifacts/<target>/; once
# fixed, keep it in fuzz/regressions/<target>/ (replayed by the Rust tests).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGETS=(onnx nudenet detectors face_map settings mp4 mjpeg_request)
mode="${1:-smoke}"
case "$mode" in
  smoke) runs=20000; list=("${TARGETS[@]}"); keep=0 ;;
  run) runs="${2:-1000000}"; list=("${TARGETS[@]}"); keep=1 ;;
  *) runs="${2:-1000000}"; list=("$mode"); keep=1
     [[ " ${TARGETS[*]} " == *" $mode "* ]] || { echo "unknown target $mode (one of: ${TARGETS[*]})" >&2; exit 2; } ;;
esac
host="$(rustc -vV | sed -n 's/^host: //p')"
echo "[fuzz] building the instrumented harness (fuzz/target)" >&2
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing" \
  cargo build --manifest-path fuzz/Cargo.toml --locked --release --target "$host" --bins
bin="fuzz/target/$host/release"
for t in "${list[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  new="$(mktemp -d)"
  max_len=4096
  case "$t" in onnx|mp4) max_len=65536 ;; esac
  echo "[fuzz] $t: $runs runs" >&2
  # New inputs go to a scratch folder first; the committed corpus is read only.
  "$bin/$t" -runs="$runs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "$new" "fuzz/corpus/$t" \
    $( [ -d "fuzz/regressions/$t" ] && echo "fuzz/regressions/$t" ) 2>"$new.log" \
    || { tail -40 "$new.log" >&2; echo "[fuzz] $t FAILED (input in fuzz/artifacts/$t/)" >&2; exit 1; }
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)' "$new.log" | sed "s/^/[fuzz] $t: /" >&2 || true
  if [ "$keep" = 1 ]; then
    # Keep the corpus small: only inputs that add coverage.
    merged="$(mktemp -d)"
    "$bin/$t" -merge=1 -max_len="$max_len" "$merged" "fuzz/corpus/$t" "$new" 2>/dev/null
    rm -rf "fuzz/corpus/$t" && mv "$merged" "fuzz/corpus/$t"
    echo "[fuzz] $t: corpus now $(ls "fuzz/corpus/$t" | wc -l) inputs" >&2
  fi
  rm -rf "$new" "$new.log"
done
echo "[fuzz] clean" >&2
