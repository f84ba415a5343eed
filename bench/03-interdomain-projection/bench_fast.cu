// Benchmark of the Chapter 3 fast kernels: interdomain attention (P9) in
// float32, B*H heads (default 32), N_q = N, R = 64 features, d = 64.
//
// Non-causal, for N in {1024, 4096, 16384} and M in {16, 64, 256}:
//   project   the projection [U | Gamma | eta] = Phi [F_k | V | 1] (eq:P6): two cuBLAS
//             strided-batched SGEMMs and the eta row sum; 2 M N (R + d) flops per head
//   readout   the fused readout F_q U^T Gamma / F_q U^T eta (eq:P9); 2 N M (R + d + 1)
//             flops per head
//   total     both, one after the other
//   cublas    a plain cuBLAS strided-batched SGEMM F_q U^T ((N x R) times (R x M),
//             2 N M R flops per head, writing the (N x M) matrix the fused kernel
//             never stores): the GEMM throughput the readout is measured against
// Causal (eq:3.4 effective weights, prefix basis generated on the device), for
// N in {1024, 4096, 16384}, M in {16, 64}, LegS and Dct: time per call and
// query-key pairs per second (N (N+1) / 2 per head); it is O(N^2 M) by
// design (Chapter 4 makes it O(N)).
//
// Protocol (as bench/01-softmax-attention): random inputs, several independent
// buffer sets that together exceed the L2 cache a few times, repetitions
// rotating over them; warm-up first, each repetition timed with its own pair of
// CUDA events; median (and minimum) reported.
//
//   bench_fast [--out FILE] [--reps R] [--warmup W] [--heads BH] [--r R] [--d D]
//              [--n 1024,4096,16384] [--m 16,64,256] [--causal-n 1024,4096,16384]
//              [--causal-m 16,64]
//
// With no usable device it prints why and exits 0 with a "skipped" line.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
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

#include "fast/03-interdomain-projection/interdomain.hpp"
#include "fast/common/cuda_check.cuh"
#include "fast/common/device.hpp"

namespace {

using idattn::fast::DeviceBuffer;
using idattn::ref::Basis;

struct Options {
    std::string out = "bench/results/03-interdomain-projection-fast.csv";
    int reps = 20;
    int warmup = 3;
    int heads = 32;  // B * H
    int r = 64;
    int d = 64;
    std::vector<int> ns = {1024, 4096, 16384};
    std::vector<int> ms = {16, 64, 256};
    std::vector<int> causal_ns = {1024, 4096, 16384};
    std::vector<int> causal_ms = {16, 64};
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
        else if (a == "--r") o.r = std::stoi(next());
        else if (a == "--d") o.d = std::stoi(next());
        else if (a == "--n") o.ns = parse_list(next());
        else if (a == "--m") o.ms = parse_list(next());
        else if (a == "--causal-n") o.causal_ns = parse_list(next());
        else if (a == "--causal-m") o.causal_ms = parse_list(next());
        else if (a == "--help" || a == "-h") {
            std::printf("usage: bench_fast [--out FILE] [--reps R] [--warmup W] [--heads BH] [--r R] [--d D] "
                        "[--n 1024,4096] [--m 16,64] [--causal-n 1024,4096] [--causal-m 16,64]\n");
            std::exit(0);
        } else
            throw std::runtime_error("unknown argument " + a + " (try --help)");
    }
    if (o.reps < 1 || o.warmup < 0 || o.heads < 1 || o.r < 1 || o.d < 1)
        throw std::runtime_error("--reps, --heads, --r and --d must be >= 1, --warmup >= 0");
    return o;
}

// Uniform values in [lo, hi) from a hash of the index (no host copies).
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

void fill(DeviceBuffer<float>& b, std::uint32_t seed, float lo, float hi) {
    fill_uniform<<<1024, 256>>>(b.data(), b.size(), seed, lo, hi);
    IDATTN_CUDA_CHECK(cudaGetLastError());
}

struct Timing {
    double ms_median, ms_min;
};

// Times fn(set) over `reps` repetitions rotating over `sets` buffer sets.
Timing time_it(const Options& opt, int sets, const std::function<void(int)>& fn) {
    for (int r = 0; r < opt.warmup; ++r) fn(r % sets);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<cudaEvent_t> start(static_cast<std::size_t>(opt.reps)), stop(static_cast<std::size_t>(opt.reps));
    for (int r = 0; r < opt.reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventCreate(&start[r]));
        IDATTN_CUDA_CHECK(cudaEventCreate(&stop[r]));
    }
    for (int r = 0; r < opt.reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventRecord(start[r]));
        fn(r % sets);
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

// Enough sets to cover 3x the L2 cache, at least 2, at most 8, within half of the free memory.
int choose_sets(std::size_t set_bytes, std::size_t l2_bytes) {
    std::size_t free_b = 0, total_b = 0;
    IDATTN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    int sets = static_cast<int>(
        std::min<std::size_t>(8, std::max<std::size_t>(2, (3 * l2_bytes + set_bytes - 1) / set_bytes)));
    while (sets > 1 && sets * set_bytes > free_b / 2) --sets;
    return sets;
}

struct Row {
    std::string kind;  // project, readout, total, cublas_fq_ut, causal_legs, causal_dct
    int n, m;
    double ms_median, ms_min, rate;  // GFLOP/s, or Gpairs/s for causal
    int sets;
};

void print_row(const Row& r) {
    std::printf("%-14s %6d %5d %10.4f %10.4f %11.1f %5d\n", r.kind.c_str(), r.n, r.m, r.ms_median, r.ms_min, r.rate,
                r.sets);
    std::fflush(stdout);
}

struct NonCausalSet {
    DeviceBuffer<float> phi, fq, fk, v, u, g, eta, o, a;
};

void bench_noncausal(const Options& opt, int n, int m, std::size_t l2, cublasHandle_t handle, std::vector<Row>& rows) {
    const std::size_t bh = static_cast<std::size_t>(opt.heads), N = static_cast<std::size_t>(n),
                      M = static_cast<std::size_t>(m), R = static_cast<std::size_t>(opt.r),
                      D = static_cast<std::size_t>(opt.d);
    const std::size_t set_floats = M * N + 2 * bh * N * R + 2 * bh * N * D + bh * M * (R + D) + M + bh * N * M;
    const int sets = choose_sets(set_floats * sizeof(float), l2);
    std::vector<NonCausalSet> bufs;
    for (int s = 0; s < sets; ++s) {
        bufs.push_back({DeviceBuffer<float>(M * N), DeviceBuffer<float>(bh * N * R), DeviceBuffer<float>(bh * N * R),
                        DeviceBuffer<float>(bh * N * D), DeviceBuffer<float>(bh * M * R),
                        DeviceBuffer<float>(bh * M * D), DeviceBuffer<float>(M), DeviceBuffer<float>(bh * N * D),
                        DeviceBuffer<float>(bh * N * M)});
        NonCausalSet& b = bufs.back();
        fill(b.phi, 100 * s + 1, -0.1f, 0.1f);
        fill(b.fq, 100 * s + 2, 0.f, 1.f);  // positive features
        fill(b.fk, 100 * s + 3, 0.f, 1.f);
        fill(b.v, 100 * s + 4, -1.f, 1.f);
    }
    const auto project = [&](int s) {
        NonCausalSet& b = bufs[static_cast<std::size_t>(s)];
        idattn::fast::interdomain_project_device(b.phi.data(), b.fk.data(), b.v.data(), b.u.data(), b.g.data(),
                                                 b.eta.data(), static_cast<std::int64_t>(bh), n, m, opt.r, opt.d);
    };
    const auto readout = [&](int s) {
        NonCausalSet& b = bufs[static_cast<std::size_t>(s)];
        idattn::fast::interdomain_readout_device(b.fq.data(), b.u.data(), b.g.data(), b.eta.data(), b.o.data(),
                                                 static_cast<std::int64_t>(bh), n, m, opt.r, opt.d);
    };
    // A (N x M) = F_q U^T per head. Column-major view: A^T (M x N) = U (M x R) F_q^T (R x N),
    // where the row-major U is the column-major U^T (R x M, ld R), hence op T, and the
    // row-major F_q is the column-major F_q^T (R x N, ld R).
    const auto cublas_fq_ut = [&](int s) {
        NonCausalSet& b = bufs[static_cast<std::size_t>(s)];
        const float one = 1.f, zero = 0.f;
        IDATTN_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, opt.r, &one,
                                                      b.u.data(), opt.r, static_cast<long long>(M * R), b.fq.data(),
                                                      opt.r, static_cast<long long>(N * R), &zero, b.a.data(), m,
                                                      static_cast<long long>(N * M), static_cast<int>(bh)));
    };
    for (int s = 0; s < sets; ++s) project(s);  // valid U, Gamma, eta for the readout-only timings
    const double h = static_cast<double>(bh), nn = n, mm = m, r = opt.r, d = opt.d;
    const double f_project = 2.0 * mm * nn * (r + d) * h, f_readout = 2.0 * nn * mm * (r + d + 1) * h,
                 f_cublas = 2.0 * nn * mm * r * h;
    const Timing tp = time_it(opt, sets, project);
    const Timing tr = time_it(opt, sets, readout);
    const Timing tt = time_it(opt, sets, [&](int s) {
        project(s);
        readout(s);
    });
    IDATTN_CUBLAS_CHECK(cublasSetStream(handle, nullptr));
    const Timing tc = time_it(opt, sets, cublas_fq_ut);
    for (const Row& row : {Row{"project", n, m, tp.ms_median, tp.ms_min, f_project / (tp.ms_median * 1e6), sets},
                           Row{"readout", n, m, tr.ms_median, tr.ms_min, f_readout / (tr.ms_median * 1e6), sets},
                           Row{"total", n, m, tt.ms_median, tt.ms_min, (f_project + f_readout) / (tt.ms_median * 1e6),
                               sets},
                           Row{"cublas_fq_ut", n, m, tc.ms_median, tc.ms_min, f_cublas / (tc.ms_median * 1e6), sets}}) {
        print_row(row);
        rows.push_back(row);
    }
}

struct CausalSet {
    DeviceBuffer<float> fq, fk, v, o;
};

void bench_causal(const Options& opt, Basis basis, int n, int m, std::size_t l2, std::vector<Row>& rows) {
    const std::size_t bh = static_cast<std::size_t>(opt.heads), N = static_cast<std::size_t>(n),
                      R = static_cast<std::size_t>(opt.r), D = static_cast<std::size_t>(opt.d);
    const int sets = choose_sets((2 * bh * N * R + 2 * bh * N * D) * sizeof(float), l2);
    std::vector<CausalSet> bufs;
    for (int s = 0; s < sets; ++s) {
        bufs.push_back({DeviceBuffer<float>(bh * N * R), DeviceBuffer<float>(bh * N * R),
                        DeviceBuffer<float>(bh * N * D), DeviceBuffer<float>(bh * N * D)});
        fill(bufs.back().fq, 100 * s + 5, 0.f, 1.f);
        fill(bufs.back().fk, 100 * s + 6, 0.f, 1.f);
        fill(bufs.back().v, 100 * s + 7, -1.f, 1.f);
    }
    const Timing t = time_it(opt, sets, [&](int s) {
        CausalSet& b = bufs[static_cast<std::size_t>(s)];
        idattn::fast::interdomain_causal_device(basis, m, b.fq.data(), b.fk.data(), b.v.data(), b.o.data(),
                                                static_cast<std::int64_t>(bh), n, n, opt.r, opt.d);
    });
    const double pairs = 0.5 * static_cast<double>(n) * (n + 1.0) * static_cast<double>(bh);
    const Row row{"causal_" + idattn::ref::basis_name(basis), n, m, t.ms_median, t.ms_min,
                  pairs / (t.ms_median * 1e6), sets};
    print_row(row);
    rows.push_back(row);
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
        std::printf("bench_fast: interdomain attention (fast, float32) on %s\n", st.detail.c_str());
        int dev = 0, l2 = 0;
        IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
        IDATTN_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
        cublasHandle_t handle = nullptr;
        IDATTN_CUBLAS_CHECK(cublasCreate(&handle));

        std::printf("B*H = %d, R = %d, d = %d, N_q = N, median of %d reps after %d warm-up, inputs rotated over "
                    "buffer sets\nrate: GFLOP/s (non-causal), 1e9 query-key pairs/s (causal)\n",
                    opt.heads, opt.r, opt.d, opt.reps, opt.warmup);
        std::printf("%-14s %6s %5s %10s %10s %11s %5s\n", "kind", "N", "M", "ms(med)", "ms(min)", "rate", "sets");
        std::vector<Row> rows;
        for (int n : opt.ns)
            for (int m : opt.ms) bench_noncausal(opt, n, m, static_cast<std::size_t>(l2), handle, rows);
        for (Basis basis : {Basis::LegS, Basis::Dct})
            for (int m : opt.causal_ms)
                for (int n : opt.causal_ns) {
                    if (basis == Basis::Dct && m > n) continue;
                    bench_causal(opt, basis, n, m, static_cast<std::size_t>(l2), rows);
                }
        (void)cublasDestroy(handle);

        const std::filesystem::path out(opt.out);
        if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
        std::ofstream f(out);
        if (!f) throw std::runtime_error("cannot write " + opt.out);
        f << "impl,device,kind,BH,R,d,N,M,ms_median,ms_min,rate,rate_unit,reps\n";
        std::string device = st.detail;
        std::replace(device.begin(), device.end(), ',', ';');
        for (const auto& r : rows)
            f << "fast," << device << ',' << r.kind << ',' << opt.heads << ',' << opt.r << ',' << opt.d << ',' << r.n
              << ',' << r.m << ',' << r.ms_median << ',' << r.ms_min << ',' << r.rate << ','
              << (r.kind.rfind("causal", 0) == 0 ? "Gpairs/s" : "GFLOP/s") << ',' << opt.reps << '\n';
        std::printf("wrote %s\n", opt.out.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_fast: error: %s\n", e.what());
        return 1;
    }
}
