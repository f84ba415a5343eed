// The GPU part of the benchmark plumbing; see gpu_bench.cuh.
#include "bench/common/gpu_bench.cuh"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "fast/common/device.hpp"

namespace idattn::bench {

std::optional<std::string> device_or_skip(const char* prog) {
    const auto st = idattn::fast::device_status();
    if (!st.available) {
        std::printf("%s: skipped: %s\n", prog, st.detail.c_str());
        return std::nullopt;
    }
    return st.detail;
}

namespace {

// Destroys the events it holds, also when a CUDA call throws midway.
struct Events {
    std::vector<cudaEvent_t> e;
    explicit Events(int n) {
        e.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            cudaEvent_t x = nullptr;
            IDATTN_CUDA_CHECK(cudaEventCreate(&x));
            e.push_back(x);
        }
    }
    ~Events() {
        for (cudaEvent_t x : e) (void)cudaEventDestroy(x);
    }
    Events(const Events&) = delete;
    Events& operator=(const Events&) = delete;
};

}  // namespace

Stat time_cuda(int reps, int warmup, int sets, const std::function<void(int)>& launch) {
    if (reps < 1 || warmup < 0 || sets < 1)
        throw std::invalid_argument("time_cuda: needs reps >= 1, warmup >= 0, sets >= 1");
    // One rotation counter over warm-up and timed launches: consecutive
    // launches never use the same set (when sets >= 2).
    int next = 0;
    for (int r = 0; r < warmup; ++r) launch(next++ % sets);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    Events start(reps), stop(reps);
    for (int r = 0; r < reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventRecord(start.e[static_cast<std::size_t>(r)], nullptr));
        launch(next++ % sets);
        IDATTN_CUDA_CHECK(cudaEventRecord(stop.e[static_cast<std::size_t>(r)], nullptr));
    }
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ms(static_cast<std::size_t>(reps));
    for (std::size_t r = 0; r < ms.size(); ++r) {
        float t = 0.f;
        IDATTN_CUDA_CHECK(cudaEventElapsedTime(&t, start.e[r], stop.e[r]));
        ms[r] = t;
    }
    return summarize(std::move(ms));
}

std::size_t l2_cache_bytes() {
    int dev = 0, l2 = 0;
    IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
    IDATTN_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    return static_cast<std::size_t>(l2);
}

int rotation_sets(std::size_t set_bytes, std::size_t reserve_bytes) {
    if (set_bytes == 0) return 2;
    std::size_t free_b = 0, total_b = 0;
    IDATTN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const std::size_t budget = free_b > reserve_bytes ? (free_b - reserve_bytes) / 2 : 0;
    const std::size_t cover = (3 * l2_cache_bytes() + set_bytes - 1) / set_bytes;
    int sets = static_cast<int>(std::min<std::size_t>(8, std::max<std::size_t>(2, cover)));
    while (sets > 1 && static_cast<std::size_t>(sets) * set_bytes > budget) --sets;
    return sets;
}

namespace {

__global__ void fill_uniform_kernel(float* __restrict__ p, std::size_t count, std::uint32_t seed, float lo,
                                    float hi) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9E3779B1u ^ static_cast<std::uint32_t>(i >> 32) ^ seed;
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        p[i] = lo + static_cast<float>(h >> 8) * ((hi - lo) / 16777216.0f);
    }
}

// FMA peak: every thread runs kChains independent chains of kIters FMAs.
constexpr int kChains = 8;
constexpr int kIters = 4096;
__global__ void fma_peak_kernel(float* out, float a, float b) {
    float x[kChains];
#pragma unroll
    for (int c = 0; c < kChains; ++c) x[c] = static_cast<float>(threadIdx.x + c);
    for (int it = 0; it < kIters; ++it)
#pragma unroll
        for (int c = 0; c < kChains; ++c) x[c] = fmaf(x[c], a, b);
    float s = 0.f;
#pragma unroll
    for (int c = 0; c < kChains; ++c) s += x[c];
    if (s == 12345.f) out[0] = s;  // never true in practice; keeps the chains alive
}

}  // namespace

void fill_uniform(DeviceBuffer<float>& b, std::uint32_t seed, float lo, float hi) {
    if (b.size() == 0) return;
    fill_uniform_kernel<<<1024, 256>>>(b.data(), b.size(), seed, lo, hi);
    IDATTN_CUDA_CHECK(cudaGetLastError());
}

std::vector<QkvoSet> make_qkvo_sets(std::size_t qk_count, std::size_t vo_count, float qk_lo, float qk_hi,
                                    std::size_t reserve_bytes) {
    const int sets = rotation_sets((2 * qk_count + 2 * vo_count) * sizeof(float), reserve_bytes);
    std::vector<QkvoSet> s;
    for (int i = 0; i < sets; ++i) {
        s.push_back({DeviceBuffer<float>(qk_count), DeviceBuffer<float>(qk_count), DeviceBuffer<float>(vo_count),
                     DeviceBuffer<float>(vo_count)});
        const auto seed = static_cast<std::uint32_t>(100 * i);
        fill_uniform(s.back().q, seed + 1, qk_lo, qk_hi);
        fill_uniform(s.back().k, seed + 2, qk_lo, qk_hi);
        fill_uniform(s.back().v, seed + 3);
        s.back().o.fill_bytes(0);
    }
    return s;
}

DevicePeaks measure_peaks(int reps, int warmup) {
    DevicePeaks p;
    p.device = idattn::fast::device_status().detail;
    const std::size_t bytes = std::size_t{1} << 30;
    DeviceBuffer<float> a(bytes / 4), b(bytes / 4);
    fill_uniform(a, 7);
    p.copy = time_cuda(reps, warmup, 1, [&](int) {
        IDATTN_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, nullptr));
    });
    p.copy_gbs = 2.0 * bytes / (p.copy.median_ms * 1e-3) / 1e9;  // read + write
    int dev = 0, sms = 0;
    IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
    IDATTN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int blocks = sms * 8, threads = 256;
    p.fma = time_cuda(reps, warmup, 1, [&](int) {
        fma_peak_kernel<<<blocks, threads>>>(b.data(), 0.999f, 0.001f);
        IDATTN_CUDA_CHECK(cudaGetLastError());
    });
    p.fma_tflops = 2.0 * kChains * kIters * static_cast<double>(blocks) * threads / (p.fma.median_ms * 1e-3) / 1e12;
    return p;
}

void print_peaks(const DevicePeaks& p) {
    std::printf("measured peaks: D2D copy %.0f GB/s (read + write), float32 FMA %.1f TFLOP/s\n", p.copy_gbs,
                p.fma_tflops);
}

std::optional<DevicePeaks> begin_gpu_bench(const std::string& title, int reps, int warmup) {
    const auto device = device_or_skip("bench_fast");
    if (!device) return std::nullopt;
    std::printf("bench_fast: %s on %s\n", title.c_str(), device->c_str());
    DevicePeaks p = measure_peaks(reps, warmup);
    print_peaks(p);
    return p;
}

}  // namespace idattn::bench
