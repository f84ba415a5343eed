// Benchmark (not a test): the float64 CPU reference of softmax attention (P1)
// versus N. Prints a table and writes CSV.
//
//   bench_01_ref [--out FILE.csv] [--reps R]
//
// The reference materialises the N x N logit matrix (eq:P1): time and memory
// grow as N^2; it is written for clarity, and these numbers say what that
// clarity costs next to the fast kernel (bench_01_fast on a GPU).
#include <cstdio>
#include <random>

#include "bench/common/bench_cli.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"

int main(int argc, char** argv) {
    namespace bench = idattn::bench;
    const bench::RefArgs args = bench::parse_ref_args(argc, argv, "bench_01_ref.csv", false);
    return bench::guarded_main(argv[0], [&] {
        std::mt19937_64 rng(1);
        std::normal_distribution<double> nd;
        auto csv = bench::open_csv(args.out, "impl,N,d,causal,median_ms,gflops");
        std::printf("%-8s %6s %4s %7s %12s %9s\n", "impl", "N", "d", "causal", "median ms", "GFLOP/s");
        const std::size_t d = 64;
        for (std::size_t n : {256, 1024, 4096}) {
            xt::xtensor<double, 2> q({n, d}), k({n, d}), v({n, d});
            for (auto* t : {&q, &k, &v})
                for (auto& e : *t) e = nd(rng);
            for (bool causal : {false, true}) {
                const double med = bench::cpu_median_ms(
                    args.reps, [&] { return idattn::ref::softmax_attention<double>(q, k, v, causal)(0, 0); });
                // Two N x N x d products; the reference computes the masked half too.
                const double gflops = 4.0 * n * n * d / (med * 1e6);
                std::printf("%-8s %6zu %4zu %7s %12.2f %9.2f\n", "ref64", n, d, causal ? "yes" : "no", med, gflops);
                csv << "ref64," << n << "," << d << "," << causal << "," << med << "," << gflops << "\n";
            }
        }
        std::printf("wrote %s\n", args.out.c_str());
        return 0;
    });
}
