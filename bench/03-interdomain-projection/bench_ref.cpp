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
#include <cstdio>
#include <random>
#include <vector>

#include "bench/common/bench_cli.hpp"
#include "ref/03-interdomain-projection/bases.hpp"
#include "ref/03-interdomain-projection/interdomain.hpp"

int main(int argc, char** argv) {
    using namespace idattn::ref;
    namespace bench = idattn::bench;
    const bench::RefArgs args = bench::parse_ref_args(argc, argv, "bench_03_ref.csv", true);
    return bench::guarded_main(argv[0], [&] {
        std::mt19937_64 rng(1);
        std::uniform_real_distribution<double> ud(0.05, 1.0);  // positive, like positive random features
        std::normal_distribution<double> nd;
        auto csv = bench::open_csv(args.out, "basis,causal,N,M,R,d,median_ms");
        std::printf("%-5s %-6s %6s %5s %4s %4s %12s\n", "basis", "causal", "N", "M", "R", "d", "median ms");
        const std::size_t R = 64, d = 64;
        const std::vector<std::size_t> ns_nc =
            args.quick ? std::vector<std::size_t>{256, 1024} : std::vector<std::size_t>{256, 1024, 4096, 16384};
        const std::vector<std::size_t> ns_c =
            args.quick ? std::vector<std::size_t>{128, 256} : std::vector<std::size_t>{256, 512, 1024};
        for (bool causal : {false, true})
            for (std::size_t n : causal ? ns_c : ns_nc)
                for (std::size_t M : {16, 64, 256}) {
                    if (M > n) continue;
                    xt::xtensor<double, 2> fq({n, R}), fk({n, R}), v({n, d});
                    for (auto* t : {&fq, &fk})
                        for (auto& e : *t) e = ud(rng);
                    for (auto& e : v) e = nd(rng);
                    for (Basis b : {Basis::LegS, Basis::Dct}) {
                        const double med = bench::cpu_median_ms(
                            args.reps, [&] { return interdomain_attention<double>(b, M, fq, fk, v, causal)(0, 0); });
                        std::printf("%-5s %-6s %6zu %5zu %4zu %4zu %12.2f\n", basis_name(b).c_str(),
                                    causal ? "yes" : "no", n, M, R, d, med);
                        std::fflush(stdout);
                        csv << basis_name(b) << "," << causal << "," << n << "," << M << "," << R << "," << d << ","
                            << med << "\n";
                    }
                }
        std::printf("wrote %s\n", args.out.c_str());
        return 0;
    });
}
