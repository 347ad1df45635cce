#!/usr/bin/env bash
# scripts/run.sh — THE main command: set everything up, then run the demo.
#
# Installs what is missing (system packages as root, .venv, requirements),
# builds and installs the ember package into .venv, builds build/, and runs
# scripts/demo.py with the installed package: it prints the backend in use
# and runs a few array programs against numpy.  Extra arguments go to the demo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# Run from outside the source tree so the installed package is what imports.
cd /
"$ROOT/.venv/bin/python" "$ROOT/scripts/demo.py" "$@"
for ex in 01_basics/jit_numpy.py 02_orchestration/concurrent_calls.py 03_transformations/per_example_gradients.py; do
  echo
  echo "examples/$ex:"
  "$ROOT/.venv/bin/python" "$ROOT/examples/$ex"
done
