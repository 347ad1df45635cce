#!/usr/bin/env bash
# scripts/bench.sh — run the benchmarks with peers (jax, torch) in a separate
# .venv-bench, against the extension built in build/ by scripts/setup.sh.
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for these runs only (they
# slow a current numpy; see benchmarks/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv-bench/bin/python ]]; then
  "$PYTHON" -m venv .venv-bench
fi
.venv-bench/bin/pip install --disable-pip-version-check -q -r benchmarks/requirements-bench.txt
for b in bench_eager bench_jit bench_orchestration; do
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH="$ROOT/build/python" \
    .venv-bench/bin/python "benchmarks/$b.py" "$@"
done
