// Benchmark (not a test): the float64 CPU reference of linear attention (P4)
// in its three forms (eq:2.5) versus N, positive features, R = 64 frequencies,
// d = 64, causal. Prints a table and writes CSV.
//
//   bench_02_ref [--out FILE.csv] [--reps R]
//
// The quadratic form materialises the N x N matrix F_q F_k^T (time ~ N^2 R);
// the recurrent form is a plain loop over keys (time ~ N R d, no N x N
// matrix); the chunked form does both in blocks of K = 64 with matrix
// products. These numbers say what the literal reference costs; the fast
// kernels are timed by bench_02_fast on a GPU.
#include <cstdio>
#include <random>
#include <string>

#include "bench/common/bench_cli.hpp"
#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/02-kernel-feature-map/linear_attention.hpp"

int main(int argc, char** argv) {
    using namespace idattn::ref;
    namespace bench = idattn::bench;
    const bench::RefArgs args = bench::parse_ref_args(argc, argv, "bench_02_ref.csv", false);
    return bench::guarded_main(argv[0], [&] {
        std::mt19937_64 rng(1);
        std::normal_distribution<double> nd;
        auto csv = bench::open_csv(args.out, "form,N,d,R,median_ms");
        std::printf("%-10s %6s %4s %4s %12s\n", "form", "N", "d", "R", "median ms");
        const std::size_t d = 64, m = 64;
        const auto w = draw_gaussian(m, d, 2);
        for (std::size_t n : {256, 1024, 4096}) {
            xt::xtensor<double, 2> q({n, d}), k({n, d}), v({n, d});
            for (auto* t : {&q, &k, &v})
                for (auto& e : *t) e = nd(rng);
            const auto fq = feature_map<double>(FeatureMap::Positive, q, w);
            const auto fk = feature_map<double>(FeatureMap::Positive, k, w);
            for (const std::string form : {"quadratic", "recurrent", "chunked"}) {
                const double med = bench::cpu_median_ms(args.reps, [&] {
                    if (form == "quadratic") return linear_attention_quadratic<double>(fq, fk, v, true)(0, 0);
                    if (form == "recurrent") return linear_attention_recurrent<double>(fq, fk, v, true)(0, 0);
                    return linear_attention_chunked<double>(fq, fk, v, true, 64)(0, 0);
                });
                std::printf("%-10s %6zu %4zu %4zu %12.2f\n", form.c_str(), n, d, m, med);
                csv << form << "," << n << "," << d << "," << m << "," << med << "\n";
            }
        }
        std::printf("wrote %s\n", args.out.c_str());
        return 0;
    });
}
