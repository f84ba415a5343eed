// Benchmark of the Chapter 2 fast kernels: the fused feature map and chunked
// linear attention (eq:2.chunk), float32, B x H heads of N queries and N keys.
//
//  1. Device peaks measured in this program: device-to-device copy bandwidth
//     (cudaMemcpyAsync of 1 GiB, read + write counted) and the float32 FMA
//     rate (a microkernel of independent FMA chains on every SM).
//  2. At N = 16384 (--n-peak): the chunked kernel's time (features of q and k,
//     key weights, the three passes), its modelled global traffic and useful
//     FLOPs, and both as a fraction of the measured peaks; the feature map of
//     q and k alone, likewise.
//  3. Linear (chunked, causal) versus Chapter 1's softmax kernel (causal)
//     versus N: where the linear O(N) form overtakes the quadratic one.
//
// Protocol as bench/01-softmax-attention/bench_fast.cu: random inputs, several
// input buffer sets covering 3x the L2 cache so that a repetition never finds
// its inputs in L2, warm-up launches, each repetition timed on its own with a
// pair of CUDA events, median (and minimum) reported.
//
// Traffic model (bytes, float32) of the chunked kernel, per head: features read
// q, k and write F_q, F_k (N (2 d + 2 R_f)); pass 1 reads F_k and V and writes
// the chunk states (N (R_f + d) + C R_f (d + 1), C = N / K chunks); pass 2 reads
// and writes them (2 C R_f (d + 1)); pass 3 reads them, F_q twice (state read,
// intra-chunk product), F_k and V once, writes O (C R_f (d + 1) + N (3 R_f + 2 d)).
// Useful FLOPs per head: 4 N d R (two projections), 2 N R_f (d + 1) (pass 1),
// 2 N R_f (d + 1) (state read), N (K + 1) (R_f + d + 1) (causal intra-chunk).
//
//   bench_fast [--out FILE] [--reps R] [--warmup W] [--batch B] [--heads H] [--d D]
//              [--R R] [--map positive|orthogonal|rff|taylor] [--chunk K]
//              [--n-peak N] [--n 256,512,...]
//
// With no usable device it prints why and exits 0 with a "skipped" line.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "fast/01-softmax-attention/softmax_attention.hpp"
#include "fast/02-kernel-feature-map/feature_map.hpp"
#include "fast/common/cuda_check.cuh"
#include "fast/common/device.hpp"

namespace {

using idattn::fast::DeviceBuffer;
using idattn::ref::FeatureMap;

struct Options {
    std::string out = "bench/results/02-kernel-feature-map-fast.csv";
    int reps = 20;
    int warmup = 3;
    int batch = 1;
    int heads = 16;
    int d = 64;
    int R = 128;
    std::string map = "positive";
    int chunk = 64;
    int n_peak = 16384;
    std::vector<int> ns = {256, 512, 1024, 2048, 4096, 8192, 16384};
};

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> r;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) r.push_back(std::stoi(item));
    return r;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
            return argv[++i];
        };
        if (a == "--out") o.out = next();
        else if (a == "--reps") o.reps = std::stoi(next());
        else if (a == "--warmup") o.warmup = std::stoi(next());
        else if (a == "--batch") o.batch = std::stoi(next());
        else if (a == "--heads") o.heads = std::stoi(next());
        else if (a == "--d") o.d = std::stoi(next());
        else if (a == "--R") o.R = std::stoi(next());
        else if (a == "--map") o.map = next();
        else if (a == "--chunk") o.chunk = std::stoi(next());
        else if (a == "--n-peak") o.n_peak = std::stoi(next());
        else if (a == "--n") o.ns = parse_list(next());
        else if (a == "--help" || a == "-h") {
            std::printf("usage: bench_fast [--out FILE] [--reps R] [--warmup W] [--batch B] [--heads H] [--d D] "
                        "[--R R] [--map positive] [--chunk K] [--n-peak N] [--n 256,512]\n");
            std::exit(0);
        } else
            throw std::runtime_error("unknown argument " + a + " (try --help)");
    }
    if (o.reps < 1 || o.warmup < 0 || o.batch < 1 || o.heads < 1 || o.d < 1 || o.d > 128 || o.R < 1 || o.chunk < 1)
        throw std::runtime_error("--reps, --batch, --heads, --R, --chunk must be >= 1, --warmup >= 0, 1 <= --d <= 128");
    return o;
}

// Uniform values in [-scale, scale) from a hash of the index.
__global__ void fill_uniform(float* __restrict__ p, std::size_t count, std::uint32_t seed, float scale) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9E3779B1u ^ static_cast<std::uint32_t>(i >> 32) ^ seed;
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        p[i] = (static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f) * scale;
    }
}

void fill(DeviceBuffer<float>& b, std::uint32_t seed, float scale = 1.f) {
    fill_uniform<<<1024, 256>>>(b.data(), b.size(), seed, scale);
    IDATTN_CUDA_CHECK(cudaGetLastError());
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

struct Stat {
    double median_ms, min_ms;
};

// Times launch(r) for r = 0..reps-1 (after warm-up), one event pair each.
Stat time_reps(const Options& opt, const std::function<void(int)>& launch) {
    for (int r = 0; r < opt.warmup; ++r) launch(r);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<cudaEvent_t> start(static_cast<std::size_t>(opt.reps)), stop(static_cast<std::size_t>(opt.reps));
    for (int r = 0; r < opt.reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventCreate(&start[r]));
        IDATTN_CUDA_CHECK(cudaEventCreate(&stop[r]));
    }
    for (int r = 0; r < opt.reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventRecord(start[r]));
        launch(r);
        IDATTN_CUDA_CHECK(cudaEventRecord(stop[r]));
    }
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ms(static_cast<std::size_t>(opt.reps));
    for (int r = 0; r < opt.reps; ++r) {
        float t = 0.f;
        IDATTN_CUDA_CHECK(cudaEventElapsedTime(&t, start[r], stop[r]));
        ms[r] = t;
        IDATTN_CUDA_CHECK(cudaEventDestroy(start[r]));
        IDATTN_CUDA_CHECK(cudaEventDestroy(stop[r]));
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
    return {median, ms.front()};
}

struct Peaks {
    double copy_gbs, fma_tflops;
};

Peaks measure_peaks(const Options& opt) {
    Peaks p{};
    const std::size_t bytes = std::size_t{1} << 30;
    DeviceBuffer<float> a(bytes / 4), b(bytes / 4);
    fill(a, 7);
    const Stat c = time_reps(opt, [&](int) {
        IDATTN_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    });
    p.copy_gbs = 2.0 * bytes / (c.median_ms * 1e-3) / 1e9;  // read + write
    int dev = 0, sms = 0;
    IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
    IDATTN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int blocks = sms * 8, threads = 256;
    const Stat f = time_reps(opt, [&](int) {
        fma_peak_kernel<<<blocks, threads>>>(b.data(), 0.999f, 0.001f);
        IDATTN_CUDA_CHECK(cudaGetLastError());
    });
    p.fma_tflops = 2.0 * kChains * kIters * static_cast<double>(blocks) * threads / (f.median_ms * 1e-3) / 1e12;
    return p;
}

struct Inputs {
    DeviceBuffer<float> q, k, v, o;
};

// Sets of (q, k, v, o) covering 3x the L2 cache (at least 2, at most 8, within half the free memory).
std::vector<Inputs> make_sets(std::size_t count, std::size_t l2_bytes, std::size_t reserve_bytes) {
    const std::size_t set_bytes = 4 * count * sizeof(float);
    std::size_t free_b = 0, total_b = 0;
    IDATTN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const std::size_t budget = free_b > reserve_bytes ? (free_b - reserve_bytes) / 2 : 0;
    int sets = static_cast<int>(std::min<std::size_t>(8, std::max<std::size_t>(2, (3 * l2_bytes + set_bytes - 1) / set_bytes)));
    while (sets > 1 && sets * set_bytes > budget) --sets;
    std::vector<Inputs> s;
    for (int i = 0; i < sets; ++i) {
        s.push_back({DeviceBuffer<float>(count), DeviceBuffer<float>(count), DeviceBuffer<float>(count),
                     DeviceBuffer<float>(count)});
        fill(s.back().q, 100 * i + 1, 0.5f);
        fill(s.back().k, 100 * i + 2, 0.5f);
        fill(s.back().v, 100 * i + 3);
        s.back().o.fill_bytes(0);
    }
    return s;
}

struct Model {
    double bytes, flops;
};

Model chunked_model(const Options& o, FeatureMap map, int n, bool causal) {
    const double bh = static_cast<double>(o.batch) * o.heads, d = o.d;
    const double m = idattn::ref::is_random(map) ? o.R : 0;
    const double rf = static_cast<double>(idattn::ref::feature_dim(map, static_cast<std::size_t>(m), o.d));
    const double k = std::min(o.chunk, n), chunks = std::ceil(n / k), st = chunks * rf * (d + 1);
    const double floats = n * (2 * d + 2 * rf) + (n * (rf + d) + st) + 2 * st + (st + n * (3 * rf + 2 * d));
    double flops = 4 * n * d * m + 2 * n * rf * (d + 1) + 2 * n * rf * (d + 1);
    if (causal) flops += n * (k + 1) * (rf + d + 1);
    return {4.0 * floats * bh, flops * bh};
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options opt = parse(argc, argv);
        const auto st = idattn::fast::device_status();
        if (!st.available) {
            std::printf("bench_fast: skipped: %s\n", st.detail.c_str());
            return 0;
        }
        const FeatureMap map = idattn::ref::parse_feature_map(opt.map);
        const std::int64_t m = idattn::ref::is_random(map) ? opt.R : 0;
        std::printf("bench_fast: chapter 2 (fast, float32) on %s\n", st.detail.c_str());
        int dev = 0, l2 = 0;
        IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
        IDATTN_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));

        const Peaks peaks = measure_peaks(opt);
        std::printf("measured peaks: D2D copy %.0f GB/s (read + write), float32 FMA %.1f TFLOP/s\n", peaks.copy_gbs,
                    peaks.fma_tflops);

        // The draw W, shared by every head.
        DeviceBuffer<float> w(static_cast<std::size_t>(std::max<std::int64_t>(m, 1)) * opt.d);
        fill(w, 99, 1.f);
        const std::int64_t bh = static_cast<std::int64_t>(opt.batch) * opt.heads;
        std::ofstream csv;
        {
            const std::filesystem::path out(opt.out);
            if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
            csv.open(out);
            if (!csv) throw std::runtime_error("cannot write " + opt.out);
        }
        std::string device = st.detail;
        std::replace(device.begin(), device.end(), ',', ';');
        csv << "kind,device,map,B,H,N,d,R,chunk,causal,ms_median,ms_min,gbs_model,tflops_model,pct_copy_bw,pct_fma_peak\n";
        auto row = [&](const std::string& kind, int n, bool causal, const Stat& s, double gbs, double tf) {
            csv << kind << ',' << device << ',' << opt.map << ',' << opt.batch << ',' << opt.heads << ',' << n << ','
                << opt.d << ',' << m << ',' << opt.chunk << ',' << (causal ? 1 : 0) << ',' << s.median_ms << ','
                << s.min_ms << ',' << gbs << ',' << tf << ',' << 100 * gbs / peaks.copy_gbs << ','
                << 100 * tf / peaks.fma_tflops << '\n';
        };
        csv << "peak_copy," << device << ",,,,,,,,,,,," << peaks.copy_gbs << ",,,\n";
        csv << "peak_fma," << device << ",,,,,,,,,,,,," << peaks.fma_tflops << ",,\n";

        // ---- 2. the chunked kernel at N = n_peak -----------------------------------
        {
            const int n = opt.n_peak;
            const std::size_t count = static_cast<std::size_t>(bh) * n * opt.d;
            const std::size_t ws_bytes = idattn::fast::chunked_linear_attention_workspace_bytes(map, bh, n, n, opt.d, m, opt.chunk);
            DeviceBuffer<float> ws((ws_bytes + 3) / 4);
            auto sets = make_sets(count, static_cast<std::size_t>(l2), ws_bytes);
            const int ns = static_cast<int>(sets.size());
            std::printf("\nchunked linear attention, map %s, B = %d, H = %d, N = %d, d = %d, R = %lld, chunk %d "
                        "(median of %d reps, %d input sets)\n", opt.map.c_str(), opt.batch, opt.heads, n, opt.d,
                        static_cast<long long>(m), opt.chunk, opt.reps, ns);
            std::printf("%-22s %6s %10s %10s %9s %7s %9s %7s\n", "what", "causal", "ms(med)", "ms(min)", "GB/s", "%copy",
                        "TFLOP/s", "%fma");
            for (int causal = 0; causal < 2; ++causal) {
                const Stat s = time_reps(opt, [&](int r) {
                    Inputs& b = sets[static_cast<std::size_t>(r % ns)];
                    idattn::fast::chunked_linear_attention_device(map, b.q.data(), b.k.data(), b.v.data(), w.data(),
                                                                  b.o.data(), bh, n, n, opt.d, m, causal != 0,
                                                                  opt.chunk, ws.data());
                });
                const Model mod = chunked_model(opt, map, n, causal != 0);
                const double gbs = mod.bytes / (s.median_ms * 1e-3) / 1e9, tf = mod.flops / (s.median_ms * 1e-3) / 1e12;
                std::printf("%-22s %6s %10.4f %10.4f %9.0f %6.1f%% %9.2f %6.1f%%\n", "chunked (all passes)",
                            causal ? "yes" : "no", s.median_ms, s.min_ms, gbs, 100 * gbs / peaks.copy_gbs, tf,
                            100 * tf / peaks.fma_tflops);
                row("chunked", n, causal != 0, s, gbs, tf);
            }
            // The feature map of q and k alone (the first step of the above).
            const std::size_t rf = idattn::ref::feature_dim(map, static_cast<std::size_t>(m), opt.d);
            float* const fq = ws.data();
            float* const ck = ws.data() + static_cast<std::size_t>(bh) * n * rf;  // any scratch of bh * n floats
            const Stat s = time_reps(opt, [&](int r) {
                Inputs& b = sets[static_cast<std::size_t>(r % ns)];
                idattn::fast::feature_map_device(map, b.q.data(), w.data(), fq, ck, bh * n, opt.d, m, true);
                idattn::fast::feature_map_device(map, b.k.data(), w.data(), fq, ck, bh * n, opt.d, m, true);
            });
            const double rows = 2.0 * bh * n;
            const double bytes = 4.0 * rows * (opt.d + rf + 1), flops = 2.0 * rows * opt.d * m;
            const double gbs = bytes / (s.median_ms * 1e-3) / 1e9, tf = flops / (s.median_ms * 1e-3) / 1e12;
            std::printf("%-22s %6s %10.4f %10.4f %9.0f %6.1f%% %9.2f %6.1f%%\n", "feature map (q and k)", "-",
                        s.median_ms, s.min_ms, gbs, 100 * gbs / peaks.copy_gbs, tf, 100 * tf / peaks.fma_tflops);
            row("features_qk", n, false, s, gbs, tf);
            std::fflush(stdout);
        }

        // ---- 3. linear (chunked) versus softmax (chapter 1) versus N, causal -----------
        std::printf("\ncausal, B = %d, H = %d, d = %d: chunked linear (map %s, R = %lld, chunk %d) vs chapter 1 softmax\n",
                    opt.batch, opt.heads, opt.d, opt.map.c_str(), static_cast<long long>(m), opt.chunk);
        std::printf("%7s %12s %12s %10s\n", "N", "linear ms", "softmax ms", "soft/lin");
        int crossover = -1;
        for (int n : opt.ns) {
            const std::size_t count = static_cast<std::size_t>(bh) * n * opt.d;
            const std::size_t ws_bytes = idattn::fast::chunked_linear_attention_workspace_bytes(map, bh, n, n, opt.d, m, opt.chunk);
            DeviceBuffer<float> ws((ws_bytes + 3) / 4);
            auto sets = make_sets(count, static_cast<std::size_t>(l2), ws_bytes);
            const int ns = static_cast<int>(sets.size());
            const Stat lin = time_reps(opt, [&](int r) {
                Inputs& b = sets[static_cast<std::size_t>(r % ns)];
                idattn::fast::chunked_linear_attention_device(map, b.q.data(), b.k.data(), b.v.data(), w.data(),
                                                              b.o.data(), bh, n, n, opt.d, m, true, opt.chunk, ws.data());
            });
            const Stat soft = time_reps(opt, [&](int r) {
                Inputs& b = sets[static_cast<std::size_t>(r % ns)];
                idattn::fast::softmax_attention_device(b.q.data(), b.k.data(), b.v.data(), b.o.data(), bh, n, n, opt.d,
                                                       true);
            });
            if (crossover < 0 && lin.median_ms < soft.median_ms) crossover = n;
            std::printf("%7d %12.4f %12.4f %10.2f\n", n, lin.median_ms, soft.median_ms, soft.median_ms / lin.median_ms);
            std::fflush(stdout);
            const Model mod = chunked_model(opt, map, n, true);
            row("linear_vs_n", n, true, lin, mod.bytes / (lin.median_ms * 1e-3) / 1e9,
                mod.flops / (lin.median_ms * 1e-3) / 1e12);
            const double sflops = 2.0 * n * static_cast<double>(n) * opt.d * bh;  // causal: half of 4 N^2 d
            row("softmax_vs_n", n, true, soft, 0.0, sflops / (soft.median_ms * 1e-3) / 1e12);
        }
        if (crossover > 0)
            std::printf("linear (chunked) is faster than softmax from N = %d on (of the N measured)\n", crossover);
        else
            std::printf("linear (chunked) was not faster than softmax at any N measured\n");
        std::printf("wrote %s\n", opt.out.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_fast: error: %s\n", e.what());
        return 1;
    }
}
