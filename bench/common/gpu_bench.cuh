// The GPU part of the benchmark plumbing (target idattn_bench_gpu, built only
// with CUDA): one timing protocol and one set of measured device peaks for
// every bench/NN-name/bench_fast.cu, so that their numbers compare.
//
// Protocol:
//  - inputs are random (hashed from the index on the device: no host copies);
//  - several independent input sets are allocated so that together they cover
//    3x the L2 cache (rotation_sets), and the repetitions rotate over them, so a
//    repetition never finds its inputs in L2 from the previous one;
//  - `warmup` untimed launches, then each repetition is timed on its own with a
//    pair of CUDA events on the default stream; all events are recorded before
//    one synchronisation, so the host never stalls the queue between
//    repetitions; the median and the minimum are reported (time_cuda);
//  - peaks (measure_peaks): device-to-device copy bandwidth (cudaMemcpyAsync of
//    1 GiB, read + write bytes counted) and the float32 FMA rate (a microkernel
//    of independent FMA chains on every SM), measured with the same protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/common/bench_cli.hpp"
#include "fast/common/cuda_check.cuh"

namespace idattn::bench {

using idattn::fast::DeviceBuffer;

// The device description ("NVIDIA H100 80GB HBM3 (sm_90, driver 13.0)") when a
// usable CUDA device exists; otherwise prints "PROG: skipped: WHY" on stdout
// and returns nullopt (the program then exits 0).
std::optional<std::string> device_or_skip(const char* prog);

// Times launch(r % sets) for r = 0 .. reps-1 after `warmup` untimed launches
// (also rotating), each repetition between its own pair of CUDA events on the
// default stream. `launch` only enqueues work on the default stream (kernels,
// cudaMemcpyAsync, cuBLAS with a null stream) and does not synchronise.
// Median and minimum in milliseconds. Requires reps >= 1, warmup >= 0, sets >= 1.
Stat time_cuda(int reps, int warmup, int sets, const std::function<void(int)>& launch);

// The current device's L2 cache size in bytes.
std::size_t l2_cache_bytes();

// How many input sets of `set_bytes` to rotate over: enough to cover 3x the L2
// cache, at least 2, at most 8, and fewer (down to 1) while they would take more
// than half of the free device memory left after `reserve_bytes` (a workspace
// allocated alongside).
int rotation_sets(std::size_t set_bytes, std::size_t reserve_bytes = 0);

// Fills `b` with uniform values in [lo, hi) hashed from the index and `seed`.
void fill_uniform(DeviceBuffer<float>& b, std::uint32_t seed, float lo = -1.f, float hi = 1.f);

// One rotation set of attention inputs: q and k of `qk_count` floats, v and o
// of `vo_count` floats.
struct QkvoSet {
    DeviceBuffer<float> q, k, v, o;
};

// rotation_sets(...) sets: q, k uniform in [qk_lo, qk_hi), v uniform in
// [-1, 1) (seeds 100 i + 1, 2, 3 for set i), o zeroed.
std::vector<QkvoSet> make_qkvo_sets(std::size_t qk_count, std::size_t vo_count, float qk_lo, float qk_hi,
                                    std::size_t reserve_bytes = 0);

// The measured peaks of the current device, and its description.
struct DevicePeaks {
    std::string device;
    double copy_gbs = 0;    // device-to-device copy, read + write bytes per second / 1e9
    double fma_tflops = 0;  // float32 FMA, 2 flops each, / 1e12
    Stat copy, fma;         // the timings behind them (copy: 1 GiB)
};
DevicePeaks measure_peaks(int reps, int warmup);

// "measured peaks: D2D copy 2900 GB/s (read + write), float32 FMA 51.2 TFLOP/s"
void print_peaks(const DevicePeaks& p);

// The start of every bench_fast: with no usable device prints
// "bench_fast: skipped: WHY" and returns nullopt (the program exits 0);
// otherwise prints "bench_fast: TITLE on DEVICE", measures the peaks (reps,
// warmup as the benchmark's own), prints them and returns them.
std::optional<DevicePeaks> begin_gpu_bench(const std::string& title, int reps, int warmup);

}  // namespace idattn::bench
