// Benchmark (not a test): the learned layer's float64 CPU reference, forward in
// each form and backward in each form, versus N, at the paper's head shape
// (R = d = M = 64, one head, D = 64) and a small one (R = d = M = 16). Prints a
// table and writes CSV.
//
//   bench_05_ref [--out FILE.csv] [--reps R] [--quick]
//
// Forward, per token and head: the recurrence with the explicit readout C X_t
// (eq:5.C) costs O(M^2 (R + d)); the folded readout (eq:5.fold) O(M (R + d) + M^2);
// the chunkwise two-pass form (eq:5.1, K = 64) O(K M (R + d)) for the intra-chunk
// matrices, the folded readout's cost per token and the carried state. Backward
// (eq:5.adjoint, explicit readout): O(M^2 (R + d)) per token with every state
// stored (N M (R + d) complex numbers) or recovered by dividing by Lambda from
// checkpoints every K = 16 tokens (eq:5.lambda-div; N/K states kept).
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/common/bench_cli.hpp"
#include "ref/05-learned-layer/layer.hpp"

int main(int argc, char** argv) {
    using namespace idattn::ref;
    namespace bench = idattn::bench;
    const bench::RefArgs args = bench::parse_ref_args(argc, argv, "bench_05_ref.csv", true);
    return bench::guarded_main(argv[0], [&] {
        auto csv = bench::open_csv(args.out, "shape,pass,form,N,R,d,M,median_ms");
        std::printf("%-6s %-9s %-16s %6s %4s %4s %4s %12s\n", "shape", "pass", "form", "N", "R", "d", "M",
                    "median ms");
        struct Shape {
            const char* name;
            std::size_t R, d, M;
        };
        const std::vector<std::size_t> ns = args.quick ? std::vector<std::size_t>{64, 256}
                                                       : std::vector<std::size_t>{64, 256, 1024};
        std::mt19937_64 rng(1);
        std::normal_distribution<double> nd;
        for (const Shape s : {Shape{"small", 16, 16, 16}, Shape{"paper", 64, 64, 64}}) {
            const LayerParams p = layer_init(LayerVariant::Full, {64, 1, s.R, s.d, s.M, 1, false, true});
            for (std::size_t n : ns) {
                xt::xtensor<double, 3> x = xt::zeros<double>({std::size_t{1}, n, std::size_t{64}});
                for (auto& e : x) e = nd(rng);
                auto report = [&](const char* pass, const std::string& form, double med) {
                    std::printf("%-6s %-9s %-16s %6zu %4zu %4zu %4zu %12.2f\n", s.name, pass, form.c_str(), n, s.R,
                                s.d, s.M, med);
                    std::fflush(stdout);
                    csv << s.name << "," << pass << "," << form << "," << n << "," << s.R << "," << s.d << "," << s.M
                        << "," << med << "\n";
                };
                for (LayerForm form : {LayerForm::Recurrence, LayerForm::Folded, LayerForm::Chunked}) {
                    LayerOptions opt;
                    opt.form = form;
                    opt.chunk = 64;
                    report("forward", layer_form_name(form),
                           bench::cpu_median_ms(args.reps, [&] { return layer_forward(LayerVariant::Full, p, x, opt)(0, n - 1, 0); }));
                }
                for (LayerBackward b : {LayerBackward::Stored, LayerBackward::LambdaDivision}) {
                    LayerOptions opt;
                    opt.backward = b;
                    opt.checkpoint = 16;
                    report("backward", layer_backward_name(b),
                           bench::cpu_median_ms(args.reps, [&] { return layer_backward(LayerVariant::Full, p, x, x, opt).dx(0, 0, 0); }));
                }
            }
        }
        std::printf("wrote %s\n", args.out.c_str());
        return 0;
    });
}
