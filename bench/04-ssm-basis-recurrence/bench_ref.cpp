// Benchmark (not a test): the four forms of the S4D states in the float64 CPU
// reference versus N, M = 64 states, C = 129 channels (R = 64 key features,
// d = 64 values and the constant channel of eq:4.channels), S4D-Inv with
// Delta = 0.01. Prints a table and writes CSV.
//
//   bench_04_ref [--out FILE.csv] [--reps R] [--quick]
//
// Recurrence (eq:P11): N M C complex multiply-adds, serial in N.
// Explicit (eq:4.3): the literal projection, N^2 M C / 2: run up to N = 1024
// only (N = 4096 would take minutes); the cost chapter 4's recurrence removes.
// FFT (eq:4.4): M + C forward and M C inverse FFTW transforms of length
// L >= 2N - 1, O(M C N log N): on a CPU slower than the recurrence (its
// constant is larger and the recurrence is already linear); it is the parallel
// form for a GPU. Chunked (eq:4.5, K = 64): the same work as the recurrence
// plus the chunk sums, the form the fast kernels parallelise.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ref/04-ssm-basis-recurrence/ssm.hpp"

int main(int argc, char** argv) {
    using namespace idattn::ref;
    std::string out = "bench_04_ref.csv";
    int reps = 3;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = std::max(1, std::atoi(argv[++i]));
        } else if (!std::strcmp(argv[i], "--quick")) {
            quick = true;
        } else {
            std::fprintf(stderr, "usage: %s [--out FILE.csv] [--reps R] [--quick]\n", argv[0]);
            return 2;
        }
    }
    const std::size_t M = 64, C = 129, chunk = 64;
    const double delta = 0.01;
    const std::size_t max_explicit = quick ? 256 : 1024;
    const auto s = s4d(S4dInit::Inv, M, delta);
    std::mt19937_64 rng(1);
    std::normal_distribution<double> nd;
    std::ofstream csv(out);
    csv << "form,N,M,C,chunk,median_ms\n";
    std::printf("%-10s %6s %4s %4s %12s\n", "form", "N", "M", "C", "median ms");
    const std::vector<std::size_t> ns = quick ? std::vector<std::size_t>{256, 1024}
                                              : std::vector<std::size_t>{256, 1024, 4096, 16384};
    for (std::size_t n : ns) {
        xt::xtensor<double, 2> z({n, C});
        for (auto& e : z) e = nd(rng);
        for (SsmForm form : {SsmForm::Recurrence, SsmForm::Explicit, SsmForm::Fft, SsmForm::Chunked}) {
            if (form == SsmForm::Explicit && n > max_explicit) {
                std::printf("%-10s %6zu %4zu %4zu %12s\n", ssm_form_name(form).c_str(), n, M, C, "skipped");
                continue;
            }
            std::vector<double> ms;
            for (int r = 0; r < reps; ++r) {
                const auto t0 = std::chrono::steady_clock::now();
                const auto x = ssm_states<double>(form, s, z, chunk);
                const auto t1 = std::chrono::steady_clock::now();
                if (!(x(n - 1, 0, 0) == x(n - 1, 0, 0))) return 1;  // keep the result alive
                ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            }
            std::sort(ms.begin(), ms.end());
            const double med = ms[ms.size() / 2];
            std::printf("%-10s %6zu %4zu %4zu %12.2f\n", ssm_form_name(form).c_str(), n, M, C, med);
            std::fflush(stdout);
            csv << ssm_form_name(form) << "," << n << "," << M << "," << C << "," << chunk << "," << med << "\n";
        }
    }
    std::printf("wrote %s\n", out.c_str());
    return 0;
}
