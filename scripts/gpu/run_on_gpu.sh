#!/usr/bin/env bash
# The device run: runs on the GPU machine, inside the bundle made by
# scripts/gpu/make_bundle.sh, against ONE deadline (BUDGET_S seconds from the
# start, default 500), so that it always reaches its summary inside a 10-minute
# device command. In order of what matters most:
#   1. the device (nvidia-smi) and the bundle's provenance;
#   2. correctness: every CUDA test executable (test_*_fast), whole;
#   3. benchmarks (bench_*_fast, sizes and repetitions below, as flags) and the
#      Chapter 1 comparison with PyTorch SDPA (float32 and bfloat16), PyTorch
#      run with the machine's own library path, not the bundle's;
#   4. compute-sanitizer memcheck, racecheck and synccheck on a subset of test
#      cases per chapter (one or two representative cases: a sanitizer multiplies
#      a kernel's time by 10-1000x).
# Each step gets min(its cap, what is left before the deadline less a reserve
# for the summary); a step that cannot start in time is listed as NOT RUN. On a
# GPU machine a skipped test (exit 77, "no device") is a failure.
# Everything goes to $OUT/gpu.log; result files to $OUT/results/, and all of
# them once more as $OUT/results.tar.gz (the device tool returns a few files only).
#
#   cd gpu-bundle && ./run_on_gpu.sh            # on the device: see README "GPU run"
#   BUDGET_S=300 SKIP_SANITIZERS=1 BENCH_REPS=5 ./run_on_gpu.sh
#   ONLY_TESTS=1 ./run_on_gpu.sh                # correctness only
#   RUN_CPU_TESTS=1 ./run_on_gpu.sh             # also the CPU test executables, if bundled
#   TESTS=test_03_fast SKIP_BENCH=1 SANITIZERS="memcheck racecheck" ./run_on_gpu.sh
set -uo pipefail

BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$BUNDLE" || exit 1
OUT=${OUT:-$BUNDLE/out}
RESULTS=$OUT/results
mkdir -p "$RESULTS"
BUDGET_S=${BUDGET_S:-500}        # one deadline for the whole run
RESERVE_S=${RESERVE_S:-15}       # kept for the summary
BENCH_REPS=${BENCH_REPS:-10}
SANITIZER_CAP=${SANITIZER_CAP:-60}      # seconds per sanitizer step
RACECHECK_CAP=${RACECHECK_CAP:-150}     # racecheck is the slowest tool (x100-1000 on shared memory)
TESTS_ONLY_PATTERN=${TESTS:-test_*_fast}  # e.g. TESTS=test_03_fast
T0=$SECONDS
DEADLINE=$((T0 + BUDGET_S))

ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
BUNDLE_LD=$BUNDLE
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && BUNDLE_LD="$BUNDLE_LD:$d"
done
export PATH="$PATH:/usr/local/cuda/bin"

summary=()
failed=0

# step NAME CAP CMD...: runs CMD under the bundle's library path with a timeout
# of min(CAP, time left before the deadline less the reserve); records the verdict.
step() {
    local name=$1 cap=$2; shift 2
    local left=$((DEADLINE - SECONDS - RESERVE_S))
    local limit=$((cap < left ? cap : left))
    echo
    if [ "$limit" -lt 5 ]; then
        echo "===== $name: NOT RUN (deadline: ${left}s left of ${BUDGET_S}s)"
        summary+=("$(printf '%-52s %s' "$name" "NOT RUN (deadline)")")
        return 0
    fi
    echo "===== $name (limit ${limit}s; $((SECONDS - T0))s into the run): $*"
    local t0=$SECONDS
    LD_LIBRARY_PATH="$BUNDLE_LD${ORIG_LD_LIBRARY_PATH:+:$ORIG_LD_LIBRARY_PATH}" \
        timeout --kill-after=5 "$limit" "$@"
    local rc=$?
    local verdict=ok
    case $rc in
        0) ;;
        77) verdict="SKIPPED (no device?)"; failed=1 ;;
        124|137) verdict="TIMED OUT after ${limit}s"; failed=1 ;;
        *) verdict="FAILED (rc $rc)"; failed=1 ;;
    esac
    echo "===== $name: $verdict in $((SECONDS - t0)) s"
    summary+=("$(printf '%-52s %s in %ss' "$name" "$verdict" "$((SECONDS - t0))")")
}

# The Python that has torch, run with the machine's own library path.
find_torch_python() {
    local p
    for p in python3 /usr/bin/python3 /usr/local/bin/python3 /opt/conda/bin/python python; do
        command -v "$p" >/dev/null 2>&1 || continue
        if LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" "$p" -c "import torch" >/dev/null 2>&1; then
            echo "$p"; return 0
        fi
    done
    return 1
}

main() {
    echo "===== GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname); deadline ${BUDGET_S}s"
    nvidia-smi -L || echo "nvidia-smi: no device listed"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
    nvidia-smi > "$RESULTS/nvidia-smi.txt" 2>&1 || true
    command -v compute-sanitizer >/dev/null && compute-sanitizer --version | tail -1
    [ -f BUNDLE_INFO ] && cat BUNDLE_INFO && cp BUNDLE_INFO "$OUT/"

    # ---- 1. correctness ------------------------------------------------------
    local t
    for t in ./$TESTS_ONLY_PATTERN; do
        [ -x "$t" ] || continue
        step "test $(basename "$t")" 150 "$t" --log_level=test_suite --report_level=short --color_output=no
    done
    if [ -n "${RUN_CPU_TESTS:-}" ]; then
        # The CLI tests have the build machine's path of the CLI compiled in.
        local cli_path
        cli_path=$(sed -n 's/^cli path baked into the tests: //p' BUNDLE_INFO 2>/dev/null)
        if [ -n "$cli_path" ] && [ "$cli_path" != none ] && [ ! -e "$cli_path" ] && [ -x ./idattn ]; then
            mkdir -p "$(dirname "$cli_path")" && ln -s "$BUNDLE/idattn" "$cli_path" && echo "linked $cli_path"
        fi
        for t in ./test_*; do
            [ -x "$t" ] || continue
            case $t in *_fast) continue ;; esac
            step "test $(basename "$t")" 120 "$t" --log_level=test_suite --report_level=short --color_output=no
        done
    fi
    [ -n "${ONLY_TESTS:-}" ] && return 0

    # ---- 2. benchmarks -------------------------------------------------------
    if [ -z "${SKIP_BENCH:-}" ]; then
        local r=$BENCH_REPS
        bench() {  # bench NAME CAP FLAGS...
            local name=$1 cap=$2; shift 2
            [ -x "./$name" ] || { summary+=("$(printf '%-52s %s' "$name" "NOT IN BUNDLE")"); return 0; }
            step "$name" "$cap" "./$name" --out "$RESULTS/$name.csv" "$@"
            if [ ! -s "$RESULTS/$name.csv" ]; then  # a benchmark that skipped (no device) exits 0
                summary+=("$(printf '%-52s %s' "$name" "NO RESULTS written")"); failed=1
            fi
        }
        bench bench_01_fast 60 --reps "$r" --n "${BENCH01_N:-1024,4096,8192}" --d 64,128 --dump "$RESULTS/01-dump"
        local py
        if py=$(find_torch_python); then
            local dump=()
            [ -d "$RESULTS/01-dump" ] && dump=(--dump "$RESULTS/01-dump")
            echo "PyTorch interpreter: $py (library path: ${ORIG_LD_LIBRARY_PATH:-unset})"
            step "sdpa_compare (chapter 1)" 90 \
                env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" "$py" py/01-softmax-attention/sdpa_compare.py \
                --fast-csv "$RESULTS/bench_01_fast.csv" --out-csv "$RESULTS/01-softmax-attention-sdpa.csv" \
                --out-md "$RESULTS/01-softmax-attention-compare.md" --reps "$r" \
                --n "${BENCH01_N:-1024,4096,8192}" --d 64,128 --dtypes float32,bfloat16 "${dump[@]}"
        else
            echo "no Python with torch found: SDPA comparison not run"
            summary+=("$(printf '%-52s %s' "sdpa_compare (chapter 1)" "NOT RUN (no torch)")"); failed=1
        fi
        rm -rf "$RESULTS/01-dump"
        bench bench_02_fast 60 --reps "$r" --n "${BENCH02_N:-1024,4096,16384}"
        bench bench_03_fast 60 --reps "$r" --n 1024,4096,16384 --m 16,64,256 --causal-n 1024,4096 --causal-m 16,64
        bench bench_04_fast 75 --reps "$r" --n "${BENCH04_N:-1024,4096,16384}"
    fi

    # ---- 3. sanitizers on a subset of cases ----------------------------------
    if [ -z "${SKIP_SANITIZERS:-}" ]; then
        if ! command -v compute-sanitizer >/dev/null; then
            echo "compute-sanitizer not found: sanitizer runs skipped"
            summary+=("$(printf '%-52s %s' "sanitizers" "NOT RUN (no compute-sanitizer)")"); failed=1
        else
        # One or two representative cases per chapter (ragged sizes, causal and
        # not); the whole binaries run in step 1.
        local -A cases=(
            [test_01_fast]="eq_1_1/fast_equals_reference_ragged_sizes"
            [test_02_fast]="fast_features/fast_scaled_features_equal_reference_ragged_sizes,fast_linear/fast_linear_equals_reference_ragged_sizes"
            [test_03_fast]="eq_P9_fast/fast_noncausal_equals_reference_ragged_sizes,eq_P9_fast/fast_causal_equals_reference_ragged_sizes"
            [test_04_fast]="fast_ssm/fast_chunked_scan_equals_reference_ragged_sizes,fast_ssm/fast_fused_attention_parts_ragged_sizes,fast_ssm/fast_fft_equals_reference_ragged_sizes"
        )
        local tool bin sel
        local cap
        for tool in ${SANITIZERS:-memcheck racecheck synccheck}; do
            cap=$SANITIZER_CAP
            [ "$tool" = racecheck ] && cap=$RACECHECK_CAP
            for bin in test_01_fast test_02_fast test_03_fast test_04_fast; do
                [ -x "./$bin" ] || continue
                [[ $bin == $TESTS_ONLY_PATTERN ]] || continue
                sel=${cases[$bin]}
                # Boost.Test takes several units as repeated --run_test flags.
                local args=()
                IFS=, read -ra units <<< "$sel"
                for u in "${units[@]}"; do args+=("--run_test=$u"); done
                step "$tool $bin" "$cap" compute-sanitizer --tool "$tool" --error-exitcode 1 \
                    --log-file "$RESULTS/sanitizer-$tool-$bin.log" --print-limit 20 \
                    "./$bin" "${args[@]}" --log_level=test_suite --color_output=no
                [ -f "$RESULTS/sanitizer-$tool-$bin.log" ] && tail -3 "$RESULTS/sanitizer-$tool-$bin.log"
            done
        done
        fi
    fi
}

summarize() {
    echo
    echo "===== summary ($((SECONDS - T0))s of the ${BUDGET_S}s budget)"
    printf '%s\n' "${summary[@]}"
    echo "results in $RESULTS:"
    ls -l "$RESULTS"
    tar -C "$OUT" -czf "$OUT/results.tar.gz" results 2>/dev/null && echo "packed: $OUT/results.tar.gz"
    [ "$failed" -eq 0 ] && echo "===== device run: ALL OK" || echo "===== device run: FAILURES (see above)"
    return "$failed"
}

# main and the summary run in one subshell (the pipe into tee); the pipe ends
# only when both have written, so the log's last lines are never lost.
{ main "$@"; summarize; } 2>&1 | tee "$OUT/gpu.log"
exit "${PIPESTATUS[0]}"
