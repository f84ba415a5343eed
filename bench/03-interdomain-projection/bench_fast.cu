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
// Protocol (bench/common/gpu_bench.cuh, shared by every bench_fast): random
// inputs, several independent buffer sets that together exceed the L2 cache a
// few times, repetitions rotating over them; warm-up first, each repetition
// timed with its own pair of CUDA events; median (and minimum) reported. The
// device's measured copy bandwidth and FMA rate are printed first.
//
//   bench_fast [--out FILE] [--reps R] [--warmup W] [--heads BH] [--r R] [--d D]
//              [--n 1024,4096,16384] [--m 16,64,256] [--causal-n 1024,4096,16384]
//              [--causal-m 16,64]
//
// With no usable device it prints why and exits 0 with a "skipped" line.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/common/gpu_bench.cuh"
#include "fast/03-interdomain-projection/interdomain.hpp"

namespace {

namespace bench = idattn::bench;
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

Options parse(int argc, char** argv) {
    Options o;
    bench::parse_flags(argc, argv,
                       "[--out FILE] [--reps R] [--warmup W] [--heads BH] [--r R] [--d D] [--n 1024,4096] "
                       "[--m 16,64] [--causal-n 1024,4096] [--causal-m 16,64]",
                       {bench::string_flag("--out", o.out), bench::int_flag("--reps", o.reps),
                        bench::int_flag("--warmup", o.warmup), bench::int_flag("--heads", o.heads),
                        bench::int_flag("--r", o.r), bench::int_flag("--d", o.d), bench::int_list_flag("--n", o.ns),
                        bench::int_list_flag("--m", o.ms), bench::int_list_flag("--causal-n", o.causal_ns),
                        bench::int_list_flag("--causal-m", o.causal_ms)});
    if (o.reps < 1 || o.warmup < 0 || o.heads < 1 || o.r < 1 || o.d < 1)
        throw std::runtime_error("--reps, --heads, --r and --d must be >= 1, --warmup >= 0");
    return o;
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

void bench_noncausal(const Options& opt, int n, int m, cublasHandle_t handle, std::vector<Row>& rows) {
    const std::size_t bh = static_cast<std::size_t>(opt.heads), N = static_cast<std::size_t>(n),
                      M = static_cast<std::size_t>(m), R = static_cast<std::size_t>(opt.r),
                      D = static_cast<std::size_t>(opt.d);
    const std::size_t set_floats = M * N + 2 * bh * N * R + 2 * bh * N * D + bh * M * (R + D) + M + bh * N * M;
    const int sets = bench::rotation_sets(set_floats * sizeof(float));
    std::vector<NonCausalSet> bufs;
    for (int s = 0; s < sets; ++s) {
        bufs.push_back({DeviceBuffer<float>(M * N), DeviceBuffer<float>(bh * N * R), DeviceBuffer<float>(bh * N * R),
                        DeviceBuffer<float>(bh * N * D), DeviceBuffer<float>(bh * M * R),
                        DeviceBuffer<float>(bh * M * D), DeviceBuffer<float>(M), DeviceBuffer<float>(bh * N * D),
                        DeviceBuffer<float>(bh * N * M)});
        NonCausalSet& b = bufs.back();
        bench::fill_uniform(b.phi, 100 * s + 1, -0.1f, 0.1f);
        bench::fill_uniform(b.fq, 100 * s + 2, 0.f, 1.f);  // positive features
        bench::fill_uniform(b.fk, 100 * s + 3, 0.f, 1.f);
        bench::fill_uniform(b.v, 100 * s + 4, -1.f, 1.f);
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
    const auto time = [&](const auto& fn) { return bench::time_cuda(opt.reps, opt.warmup, sets, fn); };
    const bench::Stat tp = time(project);
    const bench::Stat tr = time(readout);
    const bench::Stat tt = time([&](int s) {
        project(s);
        readout(s);
    });
    IDATTN_CUBLAS_CHECK(cublasSetStream(handle, nullptr));  // the default stream, where the events are recorded
    const bench::Stat tc = time(cublas_fq_ut);
    for (const Row& row : {Row{"project", n, m, tp.median_ms, tp.min_ms, f_project / (tp.median_ms * 1e6), sets},
                           Row{"readout", n, m, tr.median_ms, tr.min_ms, f_readout / (tr.median_ms * 1e6), sets},
                           Row{"total", n, m, tt.median_ms, tt.min_ms, (f_project + f_readout) / (tt.median_ms * 1e6),
                               sets},
                           Row{"cublas_fq_ut", n, m, tc.median_ms, tc.min_ms, f_cublas / (tc.median_ms * 1e6), sets}}) {
        print_row(row);
        rows.push_back(row);
    }
}

void bench_causal(const Options& opt, Basis basis, int n, int m, std::vector<Row>& rows) {
    const std::size_t bh = static_cast<std::size_t>(opt.heads), N = static_cast<std::size_t>(n),
                      R = static_cast<std::size_t>(opt.r), D = static_cast<std::size_t>(opt.d);
    // q, k: the features F_q, F_k (positive); v, o: the values and the output.
    auto bufs = bench::make_qkvo_sets(bh * N * R, bh * N * D, 0.f, 1.f);
    const int sets = static_cast<int>(bufs.size());
    const bench::Stat t = bench::time_cuda(opt.reps, opt.warmup, sets, [&](int s) {
        bench::QkvoSet& b = bufs[static_cast<std::size_t>(s)];
        idattn::fast::interdomain_causal_device(basis, m, b.q.data(), b.k.data(), b.v.data(), b.o.data(),
                                                static_cast<std::int64_t>(bh), n, n, opt.r, opt.d);
    });
    const double pairs = 0.5 * static_cast<double>(n) * (n + 1.0) * static_cast<double>(bh);
    const Row row{"causal_" + idattn::ref::basis_name(basis), n, m, t.median_ms, t.min_ms,
                  pairs / (t.median_ms * 1e6), sets};
    print_row(row);
    rows.push_back(row);
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("bench_fast", [&] {
        const Options opt = parse(argc, argv);
        const auto peaks = bench::begin_gpu_bench("interdomain attention (fast, float32)", opt.reps, opt.warmup);
        if (!peaks) return 0;
        cublasHandle_t handle = nullptr;
        IDATTN_CUBLAS_CHECK(cublasCreate(&handle));

        std::printf("B*H = %d, R = %d, d = %d, N_q = N, median of %d reps after %d warm-up, inputs rotated over "
                    "buffer sets\nrate: GFLOP/s (non-causal), 1e9 query-key pairs/s (causal)\n",
                    opt.heads, opt.r, opt.d, opt.reps, opt.warmup);
        std::printf("%-14s %6s %5s %10s %10s %11s %5s\n", "kind", "N", "M", "ms(med)", "ms(min)", "rate", "sets");
        std::vector<Row> rows;
        for (int n : opt.ns)
            for (int m : opt.ms) bench_noncausal(opt, n, m, handle, rows);
        for (Basis basis : {Basis::LegS, Basis::Dct})
            for (int m : opt.causal_ms)
                for (int n : opt.causal_ns) {
                    if (basis == Basis::Dct && m > n) continue;
                    bench_causal(opt, basis, n, m, rows);
                }
        (void)cublasDestroy(handle);

        auto f = bench::open_csv(opt.out, "impl,device,kind,BH,R,d,N,M,ms_median,ms_min,rate,rate_unit,reps");
        const std::string dev = bench::csv_field(peaks->device);
        for (const auto& r : rows)
            f << "fast," << dev << ',' << r.kind << ',' << opt.heads << ',' << opt.r << ',' << opt.d << ',' << r.n
              << ',' << r.m << ',' << r.ms_median << ',' << r.ms_min << ',' << r.rate << ','
              << (r.kind.rfind("causal", 0) == 0 ? "Gpairs/s" : "GFLOP/s") << ',' << opt.reps << '\n';
        std::printf("wrote %s\n", opt.out.c_str());
        return 0;
    });
}
