// Chapter 5, the memory trick of the paper's backward (Appendix A.1): the
// states between checkpoints are recovered by dividing by Lambda. Where
// |Lambda| >= 1/2 it gives the stored-states gradients to 1e-10; for |Lambda|
// down to 1e-3 its error is measured and stays under the bound the chapter
// derives (eq:5.lambda-err), which the checkpoint interval K controls.
// Deterministic, float64. Labels refer to chapters/05-learned-layer.md.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "tests/05-learned-layer/layer_testing.hpp"

using namespace idattn::ref;
using idattn::test::flat;
using idattn::test::LayerSizes;
using idattn::test::tol_check;

namespace {

constexpr double kU = std::numeric_limits<double>::epsilon() / 2;  // unit round-off

// log_A_real such that |Lambda| = exp(-Delta exp(log_A_real)) = rho.
double log_a_real_for(double rho, double log_dt) { return std::log(-std::log(rho) / std::exp(log_dt)); }

}  // namespace

BOOST_AUTO_TEST_SUITE(lambda_division)

// eq:5.lambda-div
BOOST_AUTO_TEST_CASE(equals_the_stored_backward_when_lambda_is_at_least_one_half) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    for (LayerVariant v : {LayerVariant::Full, LayerVariant::NoRope, LayerVariant::DualKv, LayerVariant::Single,
                           LayerVariant::S4d}) {
        LayerParams p = idattn::test::random_layer_params(rng, v, s, true);
        for (std::size_t h = 0; h < s.H; ++h)
            for (std::size_t m = 0; m < s.M; ++m)
                p.arrays.at("log_A_real")(h, m) = log_a_real_for(rng.uniform(0.5, 0.99), p.arrays.at("log_dt")(h));
        const auto x = idattn::test::random_x(rng, 2, 65, s.D), dy = idattn::test::random_x(rng, 2, 65, s.D);
        LayerOptions opt = idattn::test::options_for(v);
        const LayerGrads stored = layer_backward(v, p, x, dy, opt);
        opt.backward = LayerBackward::LambdaDivision;
        for (std::size_t K : {std::size_t{1}, std::size_t{3}, std::size_t{8}, std::size_t{16}}) {
            opt.checkpoint = K;
            const LayerGrads div = layer_backward(v, p, x, dy, opt);
            const std::string at = layer_variant_name(v) + ", K = " + std::to_string(K);
            IDATTN_CHECK_CMP(tol_check<1>(at + ": dL/dx", flat(stored.dx), flat(div.dx), 1e-10));
            for (const auto& [name, g] : stored.params)
                IDATTN_CHECK_CMP(tol_check<1>(at + ": dL/d" + name, flat(g), flat(div.params.at(name)), 1e-10));
        }
    }
}

// The recovered states against the forward's, per mode m:
//   max_{t,p} |X^_t - X_t| <= 16 u S_m sum_{i=1}^{K-1} |Lambda_m|^-i,
//   S_m = max_{t,p} (|X_t[m,p]| + |B_m z_t[p]|),
// for |Lambda| from 1/2 down to 1e-3 and K from 1 (every state a checkpoint:
// exact) to 16.     eq:5.lambda-err eq:5.lambda-div
BOOST_AUTO_TEST_CASE(recovered_state_error_is_bounded_by_the_checkpoint_interval) {
    IDATTN_SEEDED(rng);
    const std::size_t N = 64, M = 4, P = 5;
    for (double rho : {0.5, 0.1, 1e-2, 1e-3}) {
        CoreParams cp{CVec(xt::zeros<std::complex<double>>({M})), CVec(xt::zeros<std::complex<double>>({M})),
                      CMat(xt::eye<std::complex<double>>(M))};
        for (std::size_t m = 0; m < M; ++m) {
            cp.lambda(m) = std::polar(rho * rng.uniform(1.0, 1.5), rng.uniform(-3.0, 3.0));
            cp.b(m) = {rng.uniform(-1, 1), rng.uniform(-1, 1)};
        }
        const LMat z = rng.normal<2>({N, P});
        const CStates exact = core_states(cp, z);
        for (std::size_t K : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{4}, std::size_t{8},
                              std::size_t{16}}) {
            const CStates rec = core_states_lambda_division(cp, z, K);
            for (std::size_t m = 0; m < M; ++m) {
                double err = 0, scale = 0, growth = 0;
                for (std::size_t t = 0; t < N; ++t)
                    for (std::size_t p = 0; p < P; ++p) {
                        err = std::max(err, std::abs(rec(t, m, p) - exact(t, m, p)));
                        scale = std::max(scale, std::abs(exact(t, m, p)) + std::abs(cp.b(m) * z(t, p)));
                    }
                for (std::size_t i = 1; i < K; ++i) growth += std::pow(std::abs(cp.lambda(m)), -double(i));
                const double bound = 16 * kU * scale * growth;
                BOOST_TEST_MESSAGE("|Lambda| = " << std::abs(cp.lambda(m)) << ", K = " << K << ": error " << err
                                                 << " <= bound " << bound << " ("
                                                 << (bound > 0 ? 100 * err / bound : 0.0) << "% of it)");
                BOOST_TEST(err <= bound, "|Lambda| = " << std::abs(cp.lambda(m)) << ", K = " << K << ": error " << err
                                                        << " exceeds the bound " << bound);
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
