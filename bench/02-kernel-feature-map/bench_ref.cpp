// Benchmark (not a test): the float64 CPU reference of linear attention (P4)
// in its three forms (eq:2.5) versus N, positive features, R = 64 frequencies,
// d = 64, causal. Prints a table and writes CSV.
//
//   bench_02_ref [--out FILE.csv] [--reps R]
//
// The quadratic form materialises the N x N matrix F_q F_k^T (time ~ N^2 R);
// the recurrent form is a plain loop over keys (time ~ N R d, no N x N
// matrix); the chunked form does both in blocks of K = 64 with matrix
// products. These numbers say what the literal reference costs; they are not
// a fast implementation (fast/02-kernel-feature-map is not written yet).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ref/02-kernel-feature-map/feature_map.hpp"

int main(int argc, char** argv) {
    using namespace idattn::ref;
    std::string out = "bench_02_ref.csv";
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
    csv << "form,N,d,R,median_ms\n";
    std::printf("%-10s %6s %4s %4s %12s\n", "form", "N", "d", "R", "median ms");
    const std::size_t d = 64, m = 64;
    const auto w = draw_gaussian(m, d, 2);
    for (std::size_t n : {256, 1024, 4096}) {
        xt::xtensor<double, 2> q({n, d}), k({n, d}), v({n, d});
        for (auto* t : {&q, &k, &v})
            for (auto& e : *t) e = nd(rng);
        const auto fq = feature_map<double>(FeatureMap::Positive, q, w);
        const auto fk = feature_map<double>(FeatureMap::Positive, k, w);
        for (const char* form : {"quadratic", "recurrent", "chunked"}) {
            std::vector<double> ms;
            for (int r = 0; r < reps; ++r) {
                const auto t0 = std::chrono::steady_clock::now();
                xt::xtensor<double, 2> o;
                if (!std::strcmp(form, "quadratic")) o = linear_attention_quadratic<double>(fq, fk, v, true);
                else if (!std::strcmp(form, "recurrent")) o = linear_attention_recurrent<double>(fq, fk, v, true);
                else o = linear_attention_chunked<double>(fq, fk, v, true, 64);
                const auto t1 = std::chrono::steady_clock::now();
                if (!(o(0, 0) == o(0, 0))) return 1;  // keep the result alive
                ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            }
            std::sort(ms.begin(), ms.end());
            const double med = ms[ms.size() / 2];
            std::printf("%-10s %6zu %4zu %4zu %12.2f\n", form, n, d, m, med);
            csv << form << "," << n << "," << d << "," << m << "," << med << "\n";
        }
    }
    std::printf("wrote %s\n", out.c_str());
    return 0;
}
