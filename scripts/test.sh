#!/usr/bin/env bash
# scripts/test.sh — run every test.  THE test command (README, .ci/run).
#
#   1. scripts/setup.sh --no-build   (system packages, .venv, ember installed)
#   2. build/       warnings as errors; ctest runs the C tests and pytest
#   3. build-asan/  -fsanitize=address,undefined, no Python; ctest -L c
#   4. build-asan-py/  the extension with -fsanitize=address; the whole pytest
#      suite under libasan (the binding, the task graph's threads, lazy
#      regions, autodiff and batching are all exercised from Python)
#
# Exits non-zero on the first failing step.  Env: JOBS (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${JOBS:-2}"
VPY="$ROOT/.venv/bin/python"

step() { printf '\n\033[1m[test] %s\033[0m\n' "$*"; }
t0=$SECONDS

step "setup"
bash scripts/setup.sh --no-build

step "build/ (XCS_WERROR=ON)"
cmake -S . -B build -DPython3_EXECUTABLE="$VPY" -DXCS_WERROR=ON -DXCS_TESTS=ON -DXCS_PYTHON=ON
cmake --build build -j "$JOBS"

step "ctest build/ (C unit tests + pytest)"
ctest --test-dir build --output-on-failure -j "$JOBS"

step "build-asan/ (XCS_SANITIZE=address,undefined, C tests only)"
cmake -S . -B build-asan -DXCS_SANITIZE=address,undefined -DXCS_PYTHON=OFF -DXCS_TESTS=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-asan -j "$JOBS"

step "ctest build-asan/ -L c"
# A test that passes with a leak or a UB report still fails: halt on the first.
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:check_initialization_order=1" \
LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --test-dir build-asan -L c --output-on-failure -j "$JOBS"

step "build-asan-py/ (XCS_SANITIZE=address, the Python extension)"
cmake -S . -B build-asan-py -DPython3_EXECUTABLE="$VPY" -DXCS_SANITIZE=address -DXCS_PYTHON=ON -DXCS_TESTS=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-asan-py -j "$JOBS"

step "pytest under AddressSanitizer"
# CPython itself is not instrumented (and keeps memory until exit), so only
# memory errors are fatal here; the C tests above check leaks.  Tests that
# ask for absurd sizes expect XCSMemoryError, so allocation failure returns
# NULL instead of aborting.
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:allocator_may_return_null=1" \
  PYTHONPATH="$ROOT/build-asan-py/python" "$VPY" -m pytest tests/python -q -p no:cacheprovider

step "all tests passed in $((SECONDS - t0)) s"
