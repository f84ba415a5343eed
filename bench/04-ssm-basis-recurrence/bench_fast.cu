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
// Protocol: random inputs (hashed, on the device), warm-up launches, each
// repetition timed alone with a pair of CUDA events; median and minimum. The
// inputs of every case exceed the L2 cache except the smallest fused cases.
//
//   bench_fast [--out FILE] [--reps R] [--warmup W] [--n 1024,2048,...] [--heads H]
//
// With no usable device it prints why and exits 0 with a "skipped" line.
#include <cuda_runtime.h>

#include <algorithm>
#include <complex>
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
#include "fast/04-ssm-basis-recurrence/ssm.hpp"
#include "fast/common/cuda_check.cuh"
#include "fast/common/device.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"

namespace {

using idattn::fast::DeviceBuffer;

struct Options {
    std::string out = "bench/results/04-ssm-basis-recurrence-fast.csv";
    int reps = 10;
    int warmup = 2;
    int heads = 32;  // B x H of the fused-vs-softmax comparison
    std::vector<int> ns = {1024, 2048, 4096, 8192, 16384};
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
        else if (a == "--heads") o.heads = std::stoi(next());
        else if (a == "--n") o.ns = parse_list(next());
        else if (a == "--help" || a == "-h") {
            std::printf("usage: bench_fast [--out FILE] [--reps R] [--warmup W] [--n 1024,2048] [--heads H]\n");
            std::exit(0);
        } else
            throw std::runtime_error("unknown argument " + a + " (try --help)");
    }
    if (o.reps < 1 || o.warmup < 0 || o.heads < 1) throw std::runtime_error("--reps, --heads >= 1, --warmup >= 0");
    return o;
}

// Uniform values in [lo, hi) from a hash of the index.
__global__ void fill_uniform(float* __restrict__ p, std::size_t count, std::uint32_t seed, float lo, float hi) {
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

void fill(DeviceBuffer<float>& b, std::uint32_t seed, float lo = -1.f, float hi = 1.f) {
    fill_uniform<<<1024, 256>>>(b.data(), b.size(), seed, lo, hi);
    IDATTN_CUDA_CHECK(cudaGetLastError());
}

struct Timing {
    double med, min;
};

Timing time_it(const Options& opt, const std::function<void()>& fn) {
    for (int r = 0; r < opt.warmup; ++r) fn();
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ms;
    cudaEvent_t a, b;
    IDATTN_CUDA_CHECK(cudaEventCreate(&a));
    IDATTN_CUDA_CHECK(cudaEventCreate(&b));
    for (int r = 0; r < opt.reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventRecord(a));
        fn();
        IDATTN_CUDA_CHECK(cudaEventRecord(b));
        IDATTN_CUDA_CHECK(cudaEventSynchronize(b));
        float t = 0.f;
        IDATTN_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    IDATTN_CUDA_CHECK(cudaEventDestroy(a));
    IDATTN_CUDA_CHECK(cudaEventDestroy(b));
    std::sort(ms.begin(), ms.end());
    const double med = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
    return {med, ms.front()};
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
    try {
        const Options opt = parse(argc, argv);
        const auto st = idattn::fast::device_status();
        if (!st.available) {
            std::printf("bench_fast: skipped: %s\n", st.detail.c_str());
            return 0;
        }
        std::printf("bench_fast: chapter 4 SSM kernels (fast, float32/complex64) on %s\n", st.detail.c_str());
        std::printf("median of %d reps after %d warm-up\n", opt.reps, opt.warmup);
        std::ostringstream csv;
        csv << "case,n,bh,m,c,ms_median,ms_min,gb_per_s,copy_gb_per_s,fraction_of_copy,softmax_ms,ratio_to_softmax\n";

        // ---- Device-to-device copy bandwidth (read + write bytes / time).
        double copy_gbs = 0;
        {
            const std::size_t bytes = std::size_t{1} << 30;
            DeviceBuffer<char> src(bytes), dst(bytes);
            src.fill_bytes(1);
            const Timing t = time_it(opt, [&] {
                IDATTN_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice));
            });
            copy_gbs = 2.0 * bytes / (t.med * 1e-3) / 1e9;
            std::printf("\ndevice-to-device copy of 1 GiB: %.3f ms, %.0f GB/s (read + write)\n", t.med, copy_gbs);
            csv << "d2d_copy," << 0 << ",0,0,0," << t.med << "," << t.min << "," << copy_gbs << "," << copy_gbs
                << ",1,,\n";
        }

        // ---- Scan and FFT at N = 16384, M = 64, C = 129.
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
            fill(z, 7);
            const Timing t = time_it(opt, [&] {
                idattn::fast::ssm_states_chunked_device(ssm.lambda.data(), ssm.bbar.data(), 1, z.data(), x.data(), bh,
                                                        N, M, C, K);
            });
            const double min_bytes = static_cast<double>(bh) * (N * C * 4.0 + N * M * C * 8.0);
            const double all_bytes = min_bytes + bh * (N * C * 4.0 + 3.0 * ((N + K - 1) / K) * M * C * 8.0);
            const double gbs = min_bytes / (t.med * 1e-3) / 1e9;
            std::printf("\nchunked scan (eq:4.chunk), N = %lld, M = %lld, C = %lld, K = %lld, bh = %lld\n",
                        (long long)N, (long long)M, (long long)C, (long long)K, (long long)bh);
            std::printf("  %.3f ms (min %.3f): %.0f GB/s counting z read once + states written once = %.0f%% of the "
                        "copy bandwidth (all traffic incl. z re-read and chunk states: %.0f GB/s)\n",
                        t.med, t.min, gbs, 100 * gbs / copy_gbs, all_bytes / (t.med * 1e-3) / 1e9);
            csv << "scan," << N << "," << bh << "," << M << "," << C << "," << t.med << "," << t.min << "," << gbs
                << "," << copy_gbs << "," << gbs / copy_gbs << ",,\n";

            const std::int64_t bh_fft = 1;
            const Timing tf = time_it(opt, [&] {
                idattn::fast::ssm_states_fft_device(ssm.lambda.data(), ssm.bbar.data(), 1, z.data(), x.data(), bh_fft,
                                                    N, M, C);
            });
            const double gbs_f = bh_fft * (N * C * 4.0 + N * M * C * 8.0) / (tf.med * 1e-3) / 1e9;
            std::printf("cuFFT path (eq:4.4), same shapes, bh = 1: %.3f ms (min %.3f) = %.1fx the scan's time per "
                        "head; %.0f GB/s effective\n",
                        tf.med, tf.min, tf.med / (t.med / bh), gbs_f);
            csv << "fft," << N << "," << bh_fft << "," << M << "," << C << "," << tf.med << "," << tf.min << ","
                << gbs_f << "," << copy_gbs << "," << gbs_f / copy_gbs << ",,\n";
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
                const std::size_t cnt = static_cast<std::size_t>(bh) * n * 64;
                DeviceBuffer<float> fq(cnt), fk(cnt), v(cnt), o(cnt);
                fill(fq, 1, 0.01f, 1.f);  // positive features
                fill(fk, 2, 0.01f, 1.f);
                fill(v, 3);
                const Timing ts = time_it(opt, [&] {
                    idattn::fast::ssm_attention_device(ssm.lambda.data(), ssm.bbar.data(), 1, fq.data(), fk.data(),
                                                       v.data(), o.data(), bh, n, n, M, R, D);
                });
                const Timing tm = time_it(opt, [&] {
                    idattn::fast::softmax_attention_device(fq.data(), fk.data(), v.data(), o.data(), bh, n, n, D, true);
                });
                std::printf("%7d %12.3f %12.3f %12.3f %8.2f\n", n, ts.med, ts.min, tm.med, ts.med / tm.med);
                std::fflush(stdout);
                csv << "fused_vs_softmax," << n << "," << bh << "," << M << "," << R + D + 1 << "," << ts.med << ","
                    << ts.min << ",,,," << tm.med << "," << ts.med / tm.med << "\n";
            }
        }

        const std::filesystem::path out(opt.out);
        if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
        std::ofstream f(out);
        if (!f) throw std::runtime_error("cannot write " + opt.out);
        f << csv.str();
        std::printf("\nwrote %s\n", opt.out.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_fast: %s\n", e.what());
        return 1;
    }
}
