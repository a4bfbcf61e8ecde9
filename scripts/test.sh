#!/usr/bin/env bash
# The project's test command (README, CI): every Rust test of the workspace, then the NumPy
# cross-check of `ingot ops run`. Fails on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
cargo test --workspace --doc
python3 -c 'import numpy' 2>/dev/null || python3 -m pip install --quiet 'numpy>=1.26'
cargo build -p ingot-cli
python3 scripts/crosscheck/run.py --ingot target/debug/ingot
