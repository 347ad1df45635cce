#!/usr/bin/env bash
# scripts/run.sh — THE main command: set everything up, then run the demo,
# the examples and `xcs-bench --quick`.
#
# Installs what is missing (system packages as root, .venv, requirements),
# builds and installs the ember package into .venv, builds build/, and runs
# with the installed package: scripts/demo.py (the backend in use, a few
# array programs against numpy), every example, then the benchmark suite at
# its quick sizes on the default device (the table on stdout; the progress
# bar on stderr).  Extra arguments go to xcs-bench (e.g. --json out.json).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# Run from outside the source tree so the installed package is what imports.
cd /
"$ROOT/.venv/bin/python" "$ROOT/scripts/demo.py"
for ex in 01_basics/jit_numpy.py 02_orchestration/concurrent_calls.py 03_transformations/per_example_gradients.py \
          02_training/train_classifier.py 04_compound_ai/simple_ensemble.py 05_mixed/retrieval_rerank.py \
          06_performance_optimization/batch_processing.py; do
  echo
  echo "examples/$ex:"
  "$ROOT/.venv/bin/python" "$ROOT/examples/$ex"
done
echo
echo "xcs-bench --quick:"
"$ROOT/.venv/bin/xcs-bench" --quick "$@"
