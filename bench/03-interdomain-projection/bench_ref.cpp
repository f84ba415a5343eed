// Benchmark (not a test): the float64 CPU reference of interdomain attention
// (P9) versus N and M, positive-feature-like inputs with R = 64, d = 64, LegS
// and DCT bases, non-causal and causal. Prints a table and writes CSV.
//
//   bench_03_ref [--out FILE.csv] [--reps R] [--quick]
//
// Non-causal: one basis matrix, the projection U = Phi F_k, Gamma = Phi V
// (two GEMMs, ~2 M N (R + d)) and the readout (~2 Nq M (R + d)): linear in N.
// Causal: the reference rebuilds the basis of every prefix and projects the
// whole prefix again for every query, ~N^2 M (R + d) / 2: the literal cost
// of eq:3.causal that chapter 4's recurrence removes. These numbers say what
// the literal reference costs; the fast kernels live in fast/03-*.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ref/03-interdomain-projection/interdomain.hpp"

int main(int argc, char** argv) {
    using namespace idattn::ref;
    std::string out = "bench_03_ref.csv";
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
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> ud(0.05, 1.0);  // positive, like positive random features
    std::normal_distribution<double> nd;
    std::ofstream csv(out);
    csv << "basis,causal,N,M,R,d,median_ms\n";
    std::printf("%-5s %-6s %6s %5s %4s %4s %12s\n", "basis", "causal", "N", "M", "R", "d", "median ms");
    const std::size_t R = 64, d = 64;
    const std::vector<std::size_t> ns_nc = quick ? std::vector<std::size_t>{256, 1024} : std::vector<std::size_t>{256, 1024, 4096, 16384};
    const std::vector<std::size_t> ns_c = quick ? std::vector<std::size_t>{128, 256} : std::vector<std::size_t>{256, 512, 1024};
    for (bool causal : {false, true})
        for (std::size_t n : causal ? ns_c : ns_nc)
            for (std::size_t M : {16, 64, 256}) {
                if (M > n) continue;
                xt::xtensor<double, 2> fq({n, R}), fk({n, R}), v({n, d});
                for (auto* t : {&fq, &fk})
                    for (auto& e : *t) e = ud(rng);
                for (auto& e : v) e = nd(rng);
                for (Basis b : {Basis::LegS, Basis::Dct}) {
                    std::vector<double> ms;
                    for (int r = 0; r < reps; ++r) {
                        const auto t0 = std::chrono::steady_clock::now();
                        const auto o = interdomain_attention<double>(b, M, fq, fk, v, causal);
                        const auto t1 = std::chrono::steady_clock::now();
                        if (!(o(0, 0) == o(0, 0))) return 1;  // keep the result alive
                        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
                    }
                    std::sort(ms.begin(), ms.end());
                    const double med = ms[ms.size() / 2];
                    std::printf("%-5s %-6s %6zu %5zu %4zu %4zu %12.2f\n", basis_name(b).c_str(), causal ? "yes" : "no",
                                n, M, R, d, med);
                    std::fflush(stdout);
                    csv << basis_name(b) << "," << causal << "," << n << "," << M << "," << R << "," << d << "," << med
                        << "\n";
                }
            }
    std::printf("wrote %s\n", out.c_str());
    return 0;
}
