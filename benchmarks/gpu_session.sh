#!/usr/bin/env bash
# gpu_session.sh — everything that needs a GPU, in one call on a lent GPU
# machine (see the CUDA backend issue): build with the CUDA backend, the
# `cuda` CTest label (C kernel tests, compute-sanitizer), the GPU Python
# tests, the whole Python suite with XCS_DEVICE=cuda, xcs_cuda_bench (also
# with the row kernels on), the peers, pmap split over the GPUs (NCCL;
# where there are two or more), and scan's one-kernel loop (gpu_scan.py).
# `gpu_session.sh peers_lt index linalg` (a second call: the default steps
# take most of one call's 600 s) runs the peers with the cuBLASLt epilogues
# on (XCS_CUDA_LT_EPILOGUE=1; test_cuda_graph turns them on for its own
# check), the gathers' figures (gpu_index.py: an embedding training step
# and argmax, against torch) and the linear-algebra kernels' (gpu_linalg.py,
# against torch.linalg).
# Logs go to $OUT (or ./gpu-out); the last lines printed are a summary.
# Usage: benchmarks/gpu_session.sh [steps...]   (default: all)
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
B=${XCS_GPU_BUILD:-/tmp/xcs-gpu-build}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1 XCS_CACHE_DIR=/tmp/xcs-cache
PY=$(command -v python3)
steps=${*:-"info build ctest pytest bench bench_rows sanitize suite peers pmap scan"}  # peers_lt: a second call
summary=()
step() { # name timeout command...
    local name=$1 t=$2
    shift 2
    local t0=$SECONDS
    timeout "$t" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    if [ "$(stat -c %s "$OUT/$name.log")" -gt 4000000 ]; then # what comes back is at most 16 MB a file
        tail -c 4000000 "$OUT/$name.log" >"$OUT/$name.tmp" && mv "$OUT/$name.tmp" "$OUT/$name.log"
    fi
    summary+=("$(printf '%-10s rc=%-3s %4ss  %s' "$name" "$rc" $((SECONDS - t0)) "$(tail -n 1 "$OUT/$name.log" | cut -c1-150)")")
    return $rc
}
for s in $steps; do
    case $s in
    info) step info 60 bash -c "nvidia-smi; nvcc --version | tail -2; $PY -c 'import sys, sysconfig, numpy; print(sys.version, numpy.__version__, sysconfig.get_paths()[\"include\"])'; date -u" ;;
    build) step build 240 bash -c "cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DXCS_CUDA=ON -DPython3_EXECUTABLE=$PY && cmake --build $B -j16" ;;
    ctest) step ctest 200 ctest --test-dir "$B" -L cuda -E python_cuda --output-on-failure ;;
    bench) step bench 200 "$B/benchmarks/xcs_cuda_bench" ;;
    bench_rows) step bench_rows 200 env XCS_CUDA_ROW_KERNELS=1 "$B/benchmarks/xcs_cuda_bench" ;;
    pytest) step pytest 200 env PYTHONPATH="$B/python" $PY -m pytest -q -p no:cacheprovider -rf tests/python/test_cuda_device.py tests/python/test_cuda_backend.py ;;
    sanitize) step sanitize 150 compute-sanitizer --tool memcheck --report-api-errors no --print-limit 20 --error-exitcode 9 "$B/tests/c/test_cuda_graph" ;;
    peers) step peers 240 env PYTHONPATH="$B/python" $PY benchmarks/gpu_peers.py ;;
    pmap) step pmap 200 env PYTHONPATH="$B/python" $PY benchmarks/gpu_pmap.py ;; # two GPUs or more, else it says so
    scan) step scan 150 env PYTHONPATH="$B/python" $PY benchmarks/gpu_scan.py ;; # one kernel vs a launch per step
    index) step index 120 env PYTHONPATH="$B/python" $PY benchmarks/gpu_index.py ;; # gathers, scatters, argmax on the device
    linalg) step linalg 120 env PYTHONPATH="$B/python" $PY benchmarks/gpu_linalg.py ;; # solve, cholesky, slogdet kernels
    peers_lt) step peers_lt 240 env PYTHONPATH="$B/python" XCS_CUDA_LT_EPILOGUE=1 $PY benchmarks/gpu_peers.py ;;
    suite) step suite "${XCS_SUITE_TIMEOUT:-300}" env PYTHONPATH="$B/python" XCS_DEVICE=cuda $PY -m pytest -v -p no:cacheprovider -rf --maxfail=50 tests/python ;;
    *) echo "unknown step $s" ;;
    esac
done
cp "$OUT"/bench.log "$OUT"/bench.jsonl 2>/dev/null
echo "== summary"
printf '%s\n' "${summary[@]}"
