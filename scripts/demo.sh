#!/usr/bin/env bash
# Run the live demo: prepares the runtime environment (no torch, no test tools) on the first
# run, then starts run_demo.py with all arguments passed through. run_demo.py picks the webcam
# or the built-in sample and goes headless by itself when there is no display.
#
# Usage: bash scripts/demo.sh [run_demo.py arguments...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_env.sh --runtime-only
exec "${HANDMESH_VENV:-.venv}/bin/python" run_demo.py "$@"
