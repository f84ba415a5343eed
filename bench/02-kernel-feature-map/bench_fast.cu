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
// Protocol and peaks: bench/common/gpu_bench.cuh, shared by every bench_fast:
// random inputs, several input buffer sets covering 3x the L2 cache so that a
// repetition never finds its inputs in L2, warm-up launches, each repetition
// timed on its own with a pair of CUDA events, median (and minimum) reported.
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
#include <stdexcept>
#include <string>
#include <vector>

#include "api/common/names.hpp"
#include "bench/common/gpu_bench.cuh"
#include "fast/01-softmax-attention/softmax_attention.hpp"
#include "fast/02-kernel-feature-map/feature_map.hpp"

namespace {

namespace bench = idattn::bench;
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

Options parse(int argc, char** argv) {
    Options o;
    bench::parse_flags(argc, argv,
                       "[--out FILE] [--reps R] [--warmup W] [--batch B] [--heads H] [--d D] [--R R] "
                       "[--map positive|orthogonal|rff|taylor] [--chunk K] [--n-peak N] [--n 256,512]",
                       {bench::string_flag("--out", o.out), bench::int_flag("--reps", o.reps),
                        bench::int_flag("--warmup", o.warmup), bench::int_flag("--batch", o.batch),
                        bench::int_flag("--heads", o.heads), bench::int_flag("--d", o.d), bench::int_flag("--R", o.R),
                        bench::string_flag("--map", o.map), bench::int_flag("--chunk", o.chunk),
                        bench::int_flag("--n-peak", o.n_peak), bench::int_list_flag("--n", o.ns)});
    if (o.reps < 1 || o.warmup < 0 || o.batch < 1 || o.heads < 1 || o.d < 1 || o.d > 128 || o.R < 1 || o.chunk < 1)
        throw std::runtime_error("--reps, --batch, --heads, --R, --chunk must be >= 1, --warmup >= 0, 1 <= --d <= 128");
    return o;
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
    return bench::guarded_main("bench_fast", [&] {
        const Options opt = parse(argc, argv);
        const FeatureMap map = idattn::api::parse_feature_map(opt.map);
        const std::int64_t m = idattn::ref::is_random(map) ? opt.R : 0;
        const auto found = bench::begin_gpu_bench("chapter 2 (fast, float32)", opt.reps, opt.warmup);
        if (!found) return 0;
        const bench::DevicePeaks& peaks = *found;
        const auto time_sets = [&](std::vector<bench::QkvoSet>& sets, const auto& fn) {
            return bench::time_cuda(opt.reps, opt.warmup, static_cast<int>(sets.size()),
                                    [&](int s) { fn(sets[static_cast<std::size_t>(s)]); });
        };

        // The draw W, shared by every head.
        DeviceBuffer<float> w(static_cast<std::size_t>(std::max<std::int64_t>(m, 1)) * opt.d);
        bench::fill_uniform(w, 99);
        const std::int64_t bh = static_cast<std::int64_t>(opt.batch) * opt.heads;
        auto csv = bench::open_csv(opt.out, "kind,device,map,B,H,N,d,R,chunk,causal,ms_median,ms_min,gbs_model,"
                                            "tflops_model,pct_copy_bw,pct_fma_peak");
        const std::string device_field = bench::csv_field(peaks.device);
        auto row = [&](const std::string& kind, int n, bool causal, const bench::Stat& s, double gbs, double tf) {
            csv << kind << ',' << device_field << ',' << opt.map << ',' << opt.batch << ',' << opt.heads << ',' << n
                << ',' << opt.d << ',' << m << ',' << opt.chunk << ',' << (causal ? 1 : 0) << ',' << s.median_ms << ','
                << s.min_ms << ',' << gbs << ',' << tf << ',' << 100 * gbs / peaks.copy_gbs << ','
                << 100 * tf / peaks.fma_tflops << '\n';
        };
        csv << "peak_copy," << device_field << ",,,,,,,,,,,," << peaks.copy_gbs << ",,,\n";
        csv << "peak_fma," << device_field << ",,,,,,,,,,,,," << peaks.fma_tflops << ",,\n";

        // ---- 2. the chunked kernel at N = n_peak -----------------------------------
        {
            const int n = opt.n_peak;
            const std::size_t count = static_cast<std::size_t>(bh) * n * opt.d;
            const std::size_t ws_bytes = idattn::fast::chunked_linear_attention_workspace_bytes(map, bh, n, n, opt.d, m, opt.chunk);
            DeviceBuffer<float> ws((ws_bytes + 3) / 4);
            auto sets = bench::make_qkvo_sets(count, count, -0.5f, 0.5f, ws_bytes);
            std::printf("\nchunked linear attention, map %s, B = %d, H = %d, N = %d, d = %d, R = %lld, chunk %d "
                        "(median of %d reps, %d input sets)\n", opt.map.c_str(), opt.batch, opt.heads, n, opt.d,
                        static_cast<long long>(m), opt.chunk, opt.reps, static_cast<int>(sets.size()));
            std::printf("%-22s %6s %10s %10s %9s %7s %9s %7s\n", "what", "causal", "ms(med)", "ms(min)", "GB/s", "%copy",
                        "TFLOP/s", "%fma");
            for (int causal = 0; causal < 2; ++causal) {
                const bench::Stat s = time_sets(sets, [&](bench::QkvoSet& b) {
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
            const bench::Stat s = time_sets(sets, [&](bench::QkvoSet& b) {
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
            auto sets = bench::make_qkvo_sets(count, count, -0.5f, 0.5f, ws_bytes);
            const bench::Stat lin = time_sets(sets, [&](bench::QkvoSet& b) {
                idattn::fast::chunked_linear_attention_device(map, b.q.data(), b.k.data(), b.v.data(), w.data(),
                                                              b.o.data(), bh, n, n, opt.d, m, true, opt.chunk, ws.data());
            });
            const bench::Stat soft = time_sets(sets, [&](bench::QkvoSet& b) {
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
    });
}
