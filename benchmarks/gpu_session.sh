#!/usr/bin/env bash
# gpu_session.sh — everything that needs a GPU, in one call on a lent GPU
# machine (see the CUDA backend issue): build with the CUDA backend, the
# `cuda` CTest label (C kernel tests, compute-sanitizer), the GPU Python
# tests, the whole Python suite with XCS_DEVICE=cuda, xcs_cuda_bench (also
# with the row kernels off: softmax and layer norm program by program), the
# peers, pmap split over the GPUs (NCCL; where there are two or more), and
# scan's one-kernel loop (gpu_scan.py).  `gpu_session.sh peers_nolt index
# linalg` (a second call: the default steps take most of one call's 600 s)
# runs the peers with the cuBLASLt epilogues off (XCS_CUDA_LT_EPILOGUE=0),
# the gathers' figures (gpu_index.py: an embedding training step and
# argmax, against torch) and the linear-algebra kernels' (gpu_linalg.py,
# against torch.linalg).  `checks` runs the C kernel tests, the GPU Python
# tests and the suite at once (pytest-xdist), the suite's failures again
# with the row kernels and cuBLASLt epilogues off.  XCS_GPU_DEADLINE (s)
# cuts every step's timeout to what is left of it.  `linalg_nosolver` runs
# gpu_linalg.py's big solve / cholesky / slogdet with cuSOLVER off (the
# kernels and the host, as before it), `profile` Nsight Compute on the row
# kernels (softmax, layer norm: their stall reasons, occupancy, bandwidth).
# Logs go to $OUT (or ./gpu-out); the last lines printed are a summary.
# Usage: benchmarks/gpu_session.sh [steps...]   (default: all)
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
B=${XCS_GPU_BUILD:-/tmp/xcs-gpu-build}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1 XCS_CACHE_DIR=/tmp/xcs-cache
PY=$(command -v python3)
steps=${*:-"info build ctest pytest bench bench_groups sanitize suite peers pmap scan"}  # peers_nolt: a second call
rm -f "$OUT/summary.txt" # one line a step (a file: steps in the background write to it too)
DEADLINE=${XCS_GPU_DEADLINE:-100000} # seconds for all steps together: each step's timeout is cut to what is left
step() { # name timeout command...
    local name=$1 t=$2
    shift 2
    local t0=$SECONDS left=$((DEADLINE - SECONDS))
    [ "$left" -lt "$t" ] && t=$left
    if [ "$t" -lt 5 ]; then printf '%-10s skipped: the deadline has passed\n' "$name" >>"$OUT/summary.txt"; return 1; fi
    timeout "$t" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    if [ "$(stat -c %s "$OUT/$name.log")" -gt 4000000 ]; then # what comes back is at most 16 MB a file
        tail -c 4000000 "$OUT/$name.log" >"$OUT/$name.tmp" && mv "$OUT/$name.tmp" "$OUT/$name.log"
    fi
    printf '%-10s rc=%-3s %4ss  %s\n' "$name" "$rc" $((SECONDS - t0)) "$(tail -n 1 "$OUT/$name.log" | cut -c1-150)" >>"$OUT/summary.txt"
    return $rc
}
for s in $steps; do
    case $s in
    info) step info 60 bash -c "nvidia-smi; nvcc --version | tail -2; $PY -c 'import sys, sysconfig, numpy; print(sys.version, numpy.__version__, sysconfig.get_paths()[\"include\"])'; date -u" ;;
    build) step build 240 bash -c "cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DXCS_CUDA=ON -DPython3_EXECUTABLE=$PY && cmake --build $B -j16" ;;
    ctest) step ctest 200 ctest --test-dir "$B" -L cuda -E python_cuda --output-on-failure ;;
    bench) step bench 200 "$B/benchmarks/xcs_cuda_bench" ;;
    bench_groups) step bench_groups 200 env XCS_CUDA_ROW_KERNELS=0 "$B/benchmarks/xcs_cuda_bench" ;;
    pytest) step pytest 200 env PYTHONPATH="$B/python" $PY -m pytest -q -p no:cacheprovider -rf tests/python/test_cuda_device.py tests/python/test_cuda_backend.py ;;
    sanitize) step sanitize 150 compute-sanitizer --tool memcheck --report-api-errors no --print-limit 20 --error-exitcode 9 "$B/tests/c/test_cuda_graph" ;;
    peers) step peers 240 env PYTHONPATH="$B/python" $PY benchmarks/gpu_peers.py ;;
    pmap) step pmap 200 env PYTHONPATH="$B/python" $PY benchmarks/gpu_pmap.py ;; # two GPUs or more, else it says so
    scan) step scan 150 env PYTHONPATH="$B/python" $PY benchmarks/gpu_scan.py ;; # one kernel vs a launch per step
    index) step index 120 env PYTHONPATH="$B/python" $PY benchmarks/gpu_index.py ;; # gathers, scatters, argmax on the device
    linalg) step linalg 120 env PYTHONPATH="$B/python" $PY benchmarks/gpu_linalg.py ;; # solve, cholesky, slogdet kernels
    linalg_nosolver) step linalg_nosolver 150 env PYTHONPATH="$B/python" XCS_CUDA_SOLVER=0 XCS_LINALG_OPS=solve,cholesky,slogdet XCS_LINALG_SIZES=64x512,1x1024,200x256 $PY benchmarks/gpu_linalg.py ;; # cuSOLVER off: the kernels / host as before it
    profile) # Nsight Compute on the row kernels (softmax, layer norm): where their time goes
        step profile 240 ncu --launch-count 10 --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section SchedulerStats --section LaunchStats --print-units base "$B/benchmarks/xcs_cuda_bench" 1 rows ;;
    peers_nolt) step peers_nolt 240 env PYTHONPATH="$B/python" XCS_CUDA_LT_EPILOGUE=0 $PY benchmarks/gpu_peers.py ;;
    checks) # the correctness checks at once (the machine has 16 cores): the C
        # kernel tests, the GPU Python tests, and the suite on the GPU
        # (pytest-xdist); the suite's failures are run again with the row
        # kernels and cuBLASLt epilogues off, to tell which they are
        step ctest 200 ctest --test-dir "$B" -L cuda -E python_cuda -j2 --output-on-failure &
        step pytest 200 env PYTHONPATH="$B/python" $PY -m pytest -q -p no:cacheprovider -rf tests/python/test_cuda_device.py tests/python/test_cuda_backend.py &
        step suite "${XCS_SUITE_TIMEOUT:-240}" env PYTHONPATH="$B/python" XCS_DEVICE=cuda $PY -m pytest -q -p no:cacheprovider -rf -n 12 --timeout 150 --maxfail=300 tests/python
        wait
        grep '^FAILED ' "$OUT/suite.log" | sed -e 's/^FAILED //' -e 's/ - .*//' | sort -u | head -n 150 >"$OUT/failed.txt"
        if [ -s "$OUT/failed.txt" ]; then
            step rerun 90 env PYTHONPATH="$B/python" XCS_DEVICE=cuda XCS_CUDA_ROW_KERNELS=0 XCS_CUDA_LT_EPILOGUE=0 $PY -m pytest -q -p no:cacheprovider -rf -n 8 $(cat "$OUT/failed.txt")
        fi ;;
    suite) step suite "${XCS_SUITE_TIMEOUT:-300}" env PYTHONPATH="$B/python" XCS_DEVICE=cuda $PY -m pytest -v -p no:cacheprovider -rf --maxfail=50 tests/python ;;
    *) echo "unknown step $s" ;;
    esac
done
cp "$OUT"/bench.log "$OUT"/bench.jsonl 2>/dev/null
echo "== failures"
grep -h -E '^(FAILED|ERROR) |Failed|FAIL' "$OUT"/*.log 2>/dev/null | cut -c1-220 | head -n 40
echo "== summary"
cat "$OUT/summary.txt"
# what comes back from a lent machine is at most 8 files: the logs travel as one archive
(cd "$OUT" && tar czf logs.tgz --exclude logs.tgz ./*.log ./*.txt ./*.jsonl 2>/dev/null && rm -f ./*.log)
