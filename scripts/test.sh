#!/usr/bin/env bash
# The whole test suite: set up, then every Rust test (nextest) and doctest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --locked --doc
