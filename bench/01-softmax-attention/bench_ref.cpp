// Benchmark (not a test): the float64 CPU reference of softmax attention (P1)
// versus N. Prints a table and writes CSV.
//
//   bench_01_ref [--out FILE.csv] [--reps R]
//
// The reference materialises the N x N logit matrix (eq:P1): time and memory
// grow as N^2; it is written for clarity, and these numbers say what that
// clarity costs next to the fast kernel (bench_01_fast on a GPU).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ref/01-softmax-attention/softmax_attention.hpp"

int main(int argc, char** argv) {
    std::string out = "bench_01_ref.csv";
    int reps = 3;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: %s [--out FILE.csv] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    std::mt19937_64 rng(1);
    std::normal_distribution<double> nd;
    std::ofstream csv(out);
    csv << "impl,N,d,causal,median_ms,gflops\n";
    std::printf("%-8s %6s %4s %7s %12s %9s\n", "impl", "N", "d", "causal", "median ms", "GFLOP/s");
    const std::size_t d = 64;
    for (std::size_t n : {256, 1024, 4096}) {
        xt::xtensor<double, 2> q({n, d}), k({n, d}), v({n, d});
        for (auto* t : {&q, &k, &v})
            for (auto& e : *t) e = nd(rng);
        for (bool causal : {false, true}) {
            std::vector<double> ms;
            for (int r = 0; r < reps; ++r) {
                const auto t0 = std::chrono::steady_clock::now();
                auto o = idattn::ref::softmax_attention<double>(q, k, v, causal);
                const auto t1 = std::chrono::steady_clock::now();
                if (!(o(0, 0) == o(0, 0))) return 1;  // keep the result alive
                ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            }
            std::sort(ms.begin(), ms.end());
            const double med = ms[ms.size() / 2];
            // Two N x N x d products; the reference computes the masked half too.
            const double gflops = 4.0 * n * n * d / (med * 1e6);
            std::printf("%-8s %6zu %4zu %7s %12.2f %9.2f\n", "ref64", n, d, causal ? "yes" : "no", med, gflops);
            csv << "ref64," << n << "," << d << "," << causal << "," << med << "," << gflops << "\n";
        }
    }
    std::printf("wrote %s\n", out.c_str());
    return 0;
}
