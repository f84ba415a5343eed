#!/usr/bin/env bash
# Runs on the GPU machine, inside gpu-bundle/ (made by scripts/gpu/make_bundle.sh):
#   1. the device (nvidia-smi -L) and the bundle's provenance,
#   2. every test executable (--log_level=test_suite),
#   3. compute-sanitizer memcheck and racecheck on the CUDA test executables
#      (test_*_fast),
#   4. the CUDA benchmarks (bench_*_fast, results as CSV) and the Python
#      comparisons next to them (Chapter 1: PyTorch SDPA).
# Everything is teed to $OUT/gpu.log; result files go to $OUT/results/.
# A failing step does not stop the others; the summary at the end lists each
# step's exit status and the script exits 1 if any failed.
#
#   cd gpu-bundle && ./run_on_gpu.sh
#   SKIP_SANITIZERS=1 SKIP_BENCH=1 STEP_TIMEOUT=300 ./run_on_gpu.sh
set -uo pipefail

BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$BUNDLE" || exit 1
OUT=${OUT:-$BUNDLE/out}
RESULTS=$OUT/results
mkdir -p "$RESULTS"
STEP_TIMEOUT=${STEP_TIMEOUT:-420}  # seconds per step; a device command may run 10 minutes
export LD_LIBRARY_PATH="$BUNDLE${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
export PATH="$PATH:/usr/local/cuda/bin"

exec > >(tee "$OUT/gpu.log") 2>&1

summary=()
failed=0
step() {  # step NAME CMD...: runs CMD with a timeout, records its status
    local name=$1; shift
    echo
    echo "===== $name: $*"
    local t0=$SECONDS
    timeout --kill-after=10 "$STEP_TIMEOUT" "$@"
    local rc=$?
    local verdict=ok
    case $rc in
        0) ;;
        77) verdict="SKIPPED (no device?)"; failed=1 ;;  # on a GPU machine a skip is a failure
        124|137) verdict="TIMED OUT after ${STEP_TIMEOUT}s"; failed=1 ;;
        *) verdict="FAILED (rc $rc)"; failed=1 ;;
    esac
    echo "===== $name: $verdict in $((SECONDS - t0)) s"
    summary+=("$(printf '%-44s %s' "$name" "$verdict")")
}

echo "===== GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
nvidia-smi -L
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
[ -f BUNDLE_INFO ] && cat BUNDLE_INFO && cp BUNDLE_INFO "$OUT/"
nvidia-smi > "$RESULTS/nvidia-smi.txt" 2>&1 || true

# The tests have the CLI's path and the source directory of the build machine
# compiled in. Where those paths do not exist here, point them at the bundle's
# CLI and at this copy of the repository (the bundle's parent).
if [ -f BUNDLE_INFO ]; then
    cli_path=$(sed -n 's/^cli path baked into the tests: //p' BUNDLE_INFO)
    src_path=$(sed -n 's/^source dir baked into the tests: //p' BUNDLE_INFO)
    if [ -n "$cli_path" ] && [ "$cli_path" != none ] && [ ! -e "$cli_path" ] && [ -x ./idattn ]; then
        mkdir -p "$(dirname "$cli_path")" && ln -s "$BUNDLE/idattn" "$cli_path" && echo "linked $cli_path -> bundle's idattn"
    fi
    repo=$(cd .. && pwd)
    if [ -n "$src_path" ] && [ ! -e "$src_path" ]; then
        mkdir -p "$(dirname "$src_path")" && ln -s "$repo" "$src_path" && echo "linked $src_path -> $repo"
    fi
fi

# ---- 1. tests ----------------------------------------------------------------
for t in ./test_*; do
    [ -x "$t" ] || continue
    step "test $(basename "$t")" "$t" --log_level=test_suite --color_output=no
done

# ---- 2. sanitizers on the CUDA tests ------------------------------------------
if [ -z "${SKIP_SANITIZERS:-}" ]; then
    if command -v compute-sanitizer >/dev/null; then
        for t in ./test_*_fast; do
            [ -x "$t" ] || continue
            for tool in memcheck racecheck; do
                step "$tool $(basename "$t")" compute-sanitizer --tool "$tool" --error-exitcode 1 \
                    "$t" --log_level=test_suite --color_output=no
            done
        done
    else
        echo "compute-sanitizer not found: sanitizer runs skipped"
        summary+=("sanitizers                                   NOT RUN (no compute-sanitizer)")
        failed=1
    fi
fi

# ---- 3. benchmarks --------------------------------------------------------------
if [ -z "${SKIP_BENCH:-}" ]; then
    for b in ./bench_*_fast; do
        [ -x "$b" ] || continue
        name=$(basename "$b")
        extra=()
        [ "$name" = bench_01_fast ] && extra=(--dump "$RESULTS/01-dump")
        step "$name" "$b" --out "$RESULTS/$name.csv" "${extra[@]}"
        if [ ! -s "$RESULTS/$name.csv" ]; then  # a benchmark that skipped (no device) exits 0
            summary+=("$(printf '%-44s %s' "$name" "NO RESULTS written")"); failed=1
        fi
    done
    # Chapter 1: PyTorch SDPA (float32) with the same shapes and protocol.
    if [ -f py/01-softmax-attention/sdpa_compare.py ]; then
        dump=()
        [ -d "$RESULTS/01-dump" ] && dump=(--dump "$RESULTS/01-dump")
        step "sdpa_compare (chapter 1)" python3 py/01-softmax-attention/sdpa_compare.py \
            --fast-csv "$RESULTS/bench_01_fast.csv" \
            --out-csv "$RESULTS/01-softmax-attention-sdpa.csv" \
            --out-md "$RESULTS/01-softmax-attention-compare.md" "${dump[@]}"
    fi
    # The dumped tensors were only needed for the accuracy check.
    rm -rf "$RESULTS/01-dump"
fi

echo
echo "===== summary"
printf '%s\n' "${summary[@]}"
echo "results in $RESULTS:"
ls -l "$RESULTS"
exit "$failed"
