// Benchmark of the Chapter 4 fast kernels (float32 / complex64):
//   1. the chunked scan ssm_states_chunked_device (eq:4.chunk) at N = 16384,
//      M = 64, C = 129 (R = d = 64), as many heads as fit in memory, against
//      the device's measured device-to-device copy bandwidth. Bytes counted
//      honestly as the minimum any method must move: z read once (N C x 4)
//      plus the states written once (N M C x 8); the kernels also re-read z
//      and move the chunk states (3/K of the output), reported separately.
//   2. the cuFFT path ssm_states_fft_device (eq:4.4) on the same shapes, one
//      head (the time includes the per-call cuFFT plan creation).
//   3. the fused causal interdomain-attention forward ssm_attention_device
//      (eq:4.readout) against Chapter 1's causal softmax kernel
//      (softmax_attention_device, d = 64), B x H = 32 heads, N in
//      {1024, ..., 16384}, M = 64, R = d = 64, Nq = N.
// Protocol and peaks: bench/common/gpu_bench.cuh, shared by every bench_fast:
// random inputs (hashed, on the device), warm-up launches, each repetition
// timed with its own pair of CUDA events, median and minimum; the device's
// measured copy bandwidth and FMA rate are printed first. The scan and FFT
// inputs (one set, over 1 GB of states per head) exceed the L2 cache by far;
// the fused cases rotate over input sets that together cover 3x the L2 cache.
//
//   bench_fast [--out FILE] [--reps R] [--warmup W] [--n 1024,2048,...] [--heads H]
//
// With no usable device it prints why and exits 0 with a "skipped" line.
#include <cuda_runtime.h>

#include <algorithm>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/common/gpu_bench.cuh"
#include "fast/01-softmax-attention/softmax_attention.hpp"
#include "fast/04-ssm-basis-recurrence/ssm.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"

namespace {

namespace bench = idattn::bench;
using idattn::fast::DeviceBuffer;

struct Options {
    std::string out = "bench/results/04-ssm-basis-recurrence-fast.csv";
    int reps = 10;
    int warmup = 2;
    int heads = 32;  // B x H of the fused-vs-softmax comparison
    std::vector<int> ns = {1024, 2048, 4096, 8192, 16384};
};

Options parse(int argc, char** argv) {
    Options o;
    bench::parse_flags(argc, argv, "[--out FILE] [--reps R] [--warmup W] [--n 1024,2048] [--heads H]",
                       {bench::string_flag("--out", o.out), bench::int_flag("--reps", o.reps),
                        bench::int_flag("--warmup", o.warmup), bench::int_list_flag("--n", o.ns),
                        bench::int_flag("--heads", o.heads)});
    if (o.reps < 1 || o.warmup < 0 || o.heads < 1) throw std::runtime_error("--reps, --heads >= 1, --warmup >= 0");
    return o;
}

// The S4D-Inv parameters (Delta = 0.01) of every head on the device.
struct DeviceSsm {
    DeviceBuffer<std::complex<float>> lambda, bbar;
};
DeviceSsm device_ssm(std::size_t M) {
    const auto s = idattn::ref::ssm_cast<float>(idattn::ref::s4d(idattn::ref::S4dInit::Inv, M, 0.01));
    DeviceSsm d{DeviceBuffer<std::complex<float>>(M), DeviceBuffer<std::complex<float>>(M)};
    d.lambda.copy_from_host(s.lambda.data());
    d.bbar.copy_from_host(s.bbar.data());
    return d;
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("bench_fast", [&] {
        const Options opt = parse(argc, argv);
        const auto peaks =
            bench::begin_gpu_bench("chapter 4 SSM kernels (fast, float32/complex64)", opt.reps, opt.warmup);
        if (!peaks) return 0;
        std::printf("median of %d reps after %d warm-up\n", opt.reps, opt.warmup);
        auto csv = bench::open_csv(opt.out, "case,n,bh,m,c,ms_median,ms_min,gb_per_s,copy_gb_per_s,"
                                            "fraction_of_copy,softmax_ms,ratio_to_softmax");

        // ---- Device-to-device copy bandwidth (read + write bytes / time), from the peaks.
        const double copy_gbs = peaks->copy_gbs;
        std::printf("\ndevice-to-device copy of 1 GiB: %.3f ms, %.0f GB/s (read + write)\n", peaks->copy.median_ms,
                    copy_gbs);
        csv << "d2d_copy," << 0 << ",0,0,0," << peaks->copy.median_ms << "," << peaks->copy.min_ms << "," << copy_gbs
            << "," << copy_gbs << ",1,,\n";

        // ---- Scan and FFT at N = 16384, M = 64, C = 129 (one input set: the states alone far exceed L2).
        {
            const std::int64_t N = 16384, M = 64, C = 129, K = idattn::fast::kSsmDefaultChunk;
            const std::size_t head_bytes = static_cast<std::size_t>(N * M * C) * 8 + static_cast<std::size_t>(N * C) * 4;
            std::size_t free_b = 0, total_b = 0;
            IDATTN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
            const std::int64_t bh = std::max<std::int64_t>(1, std::min<std::int64_t>(16, static_cast<std::int64_t>(
                                                                                         0.6 * free_b / head_bytes)));
            const DeviceSsm ssm = device_ssm(M);
            DeviceBuffer<float> z(static_cast<std::size_t>(bh * N * C));
            DeviceBuffer<std::complex<float>> x(static_cast<std::size_t>(bh * N * M * C));
            bench::fill_uniform(z, 7);
            const bench::Stat t = bench::time_cuda(opt.reps, opt.warmup, 1, [&](int) {
                idattn::fast::ssm_states_chunked_device(ssm.lambda.data(), ssm.bbar.data(), 1, z.data(), x.data(), bh,
                                                        N, M, C, K);
            });
            const double min_bytes = static_cast<double>(bh) * (N * C * 4.0 + N * M * C * 8.0);
            const double all_bytes = min_bytes + bh * (N * C * 4.0 + 3.0 * ((N + K - 1) / K) * M * C * 8.0);
            const double gbs = min_bytes / (t.median_ms * 1e-3) / 1e9;
            std::printf("\nchunked scan (eq:4.chunk), N = %lld, M = %lld, C = %lld, K = %lld, bh = %lld\n",
                        (long long)N, (long long)M, (long long)C, (long long)K, (long long)bh);
            std::printf("  %.3f ms (min %.3f): %.0f GB/s counting z read once + states written once = %.0f%% of the "
                        "copy bandwidth (all traffic incl. z re-read and chunk states: %.0f GB/s)\n",
                        t.median_ms, t.min_ms, gbs, 100 * gbs / copy_gbs, all_bytes / (t.median_ms * 1e-3) / 1e9);
            csv << "scan," << N << "," << bh << "," << M << "," << C << "," << t.median_ms << "," << t.min_ms << ","
                << gbs << "," << copy_gbs << "," << gbs / copy_gbs << ",,\n";

            const std::int64_t bh_fft = 1;
            const bench::Stat tf = bench::time_cuda(opt.reps, opt.warmup, 1, [&](int) {
                idattn::fast::ssm_states_fft_device(ssm.lambda.data(), ssm.bbar.data(), 1, z.data(), x.data(), bh_fft,
                                                    N, M, C);
            });
            const double gbs_f = bh_fft * (N * C * 4.0 + N * M * C * 8.0) / (tf.median_ms * 1e-3) / 1e9;
            std::printf("cuFFT path (eq:4.4), same shapes, bh = 1: %.3f ms (min %.3f) = %.1fx the scan's time per "
                        "head; %.0f GB/s effective\n",
                        tf.median_ms, tf.min_ms, tf.median_ms / (t.median_ms / bh), gbs_f);
            csv << "fft," << N << "," << bh_fft << "," << M << "," << C << "," << tf.median_ms << "," << tf.min_ms
                << "," << gbs_f << "," << copy_gbs << "," << gbs_f / copy_gbs << ",,\n";
        }

        // ---- Fused forward vs Chapter 1's causal softmax kernel.
        {
            const std::int64_t M = 64, R = 64, D = 64, bh = opt.heads;
            const DeviceSsm ssm = device_ssm(M);
            std::printf("\nfused causal SSM attention (eq:4.readout, M = %lld, R = d = %lld) vs causal softmax (d = "
                        "%lld), bh = %lld, Nq = N\n",
                        (long long)M, (long long)R, (long long)D, (long long)bh);
            std::printf("%7s %12s %12s %12s %8s\n", "N", "ssm ms(med)", "ssm ms(min)", "softmax ms", "ratio");
            for (int n : opt.ns) {
                // q, k: the positive features F_q, F_k; v, o: the values and the output (R = d = 64).
                const std::size_t cnt = static_cast<std::size_t>(bh) * n * 64;
                auto sets = bench::make_qkvo_sets(cnt, cnt, 0.01f, 1.f);
                const auto time_sets = [&](const auto& fn) {
                    return bench::time_cuda(opt.reps, opt.warmup, static_cast<int>(sets.size()),
                                            [&](int s) { fn(sets[static_cast<std::size_t>(s)]); });
                };
                const bench::Stat ts = time_sets([&](bench::QkvoSet& b) {
                    idattn::fast::ssm_attention_device(ssm.lambda.data(), ssm.bbar.data(), 1, b.q.data(), b.k.data(),
                                                       b.v.data(), b.o.data(), bh, n, n, M, R, D);
                });
                const bench::Stat tm = time_sets([&](bench::QkvoSet& b) {
                    idattn::fast::softmax_attention_device(b.q.data(), b.k.data(), b.v.data(), b.o.data(), bh, n, n, D,
                                                           true);
                });
                std::printf("%7d %12.3f %12.3f %12.3f %8.2f\n", n, ts.median_ms, ts.min_ms, tm.median_ms,
                            ts.median_ms / tm.median_ms);
                std::fflush(stdout);
                csv << "fused_vs_softmax," << n << "," << bh << "," << M << "," << R + D + 1 << "," << ts.median_ms
                    << "," << ts.min_ms << ",,,," << tm.median_ms << "," << ts.median_ms / tm.median_ms << "\n";
            }
        }

        std::printf("\nwrote %s\n", opt.out.c_str());
        return 0;
    });
}
