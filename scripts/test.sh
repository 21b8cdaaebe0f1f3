#!/usr/bin/env bash
# The whole test suite: set up, then the house rules (rustfmt, clippy with
# the workspace's lint set as errors), every Rust test (nextest) and doctest,
# the Python package's suite, and a short run of every fuzz target.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A clean checkout gains nothing from incremental compilation, and its caches
# cost gigabytes of disk.
export CARGO_INCREMENTAL=0
"$ROOT/scripts/setup.sh" --test
cd "$ROOT"
disk() { echo "[test] disk: $(df -h . | awk 'NR==2 {print $4 " free"}'), target/ $(du -sh target 2>/dev/null | cut -f1)" >&2; }
disk
echo "[test] cargo fmt --check" >&2
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "[test] cargo clippy (warnings are errors)" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --profile ci
# What was skipped, and why (nextest counts them as skipped above).
grep -rn -A1 '#\[ignore = ' crates --include='*.rs' | paste - - - 2>/dev/null \
  | sed -E 's/^([^:]+):[0-9]+:#\[ignore = "(.*)"\].*fn ([a-z0-9_]+).*/[test] skipped: \3 (\1): \2/' >&2 || true
cargo test --workspace --locked --doc
echo "[test] the Python package (pytest against the installed wheel, a local Ray cluster, mypy)" >&2
scripts/test-python.sh
echo "[test] fuzz smoke run (libFuzzer, every target)" >&2
scripts/fuzz.sh smoke
disk
