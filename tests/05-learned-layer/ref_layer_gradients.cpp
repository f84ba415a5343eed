// Chapter 5, the hand-written backward against central finite differences:
// every parameter array and x, every variant, ragged N (1, 2, 3, 17, 65),
// batches of 2, the gate on, both orders of RoPE and xi, and the forward in
// each of its forms (the chunkwise one with a chunk that does not divide N).
// Deterministic claim in float64: relative error of each gradient array <= 1e-7
// (plus the stencil's own round-off, which matters only where a gradient is 0).
// Labels refer to chapters/05-learned-layer.md.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "tests/05-learned-layer/layer_testing.hpp"

using namespace idattn::ref;
using idattn::test::flat;
using idattn::test::LayerSizes;

namespace {

double loss(LayerVariant v, const LayerParams& p, const xt::xtensor<double, 3>& x, const xt::xtensor<double, 3>& w,
            const LayerOptions& opt) {
    return xt::sum(layer_forward(v, p, x, opt) * w)();  // L = sum y (.) w, so dL/dy = w
}

// Central differences of L in every element of `a` (a parameter array or x,
// changed in place and restored), with the fourth-order stencil
// (f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / 12h: the truncation error of the
// second-order one, h^2 f'''/6, reaches 1e-6 for log_dt at N = 17 (Lambda^t
// has a third derivative ~ (t Delta |A|)^3); the fourth-order one's is ~1e-12.
template <class A, class F>
xt::xtensor<double, 1> central_differences(A& a, F&& f, double h) {
    xt::xtensor<double, 1> g = xt::zeros<double>({a.size()});
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double keep = a.flat(i);
        auto at = [&](double step) {
            a.flat(i) = keep + step;
            return f();
        };
        g(i) = (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h);
        a.flat(i) = keep;
    }
    return g;
}

// The claim: RMS(g - g_fd) <= 1e-7 RMS(g_fd) + noise, where noise is the
// stencil's own round-off, 6 u sum|y (.) w| / h (each L is a sum of terms of
// that size, rounded to u relative, and the stencil divides 18 such errors by
// 12h; 4x margin). The floor matters only where the exact gradient is 0 (softmax
// at N = 1, where every weight is 1 and q, k have no influence).
void check_gradient(const std::string& label, const xt::xtensor<double, 1>& fd, const xt::xtensor<double, 1>& g,
                    double noise) {
    double err = 0, ref = 0;
    bool finite = true;
    for (std::size_t i = 0; i < g.size(); ++i) {
        finite = finite && std::isfinite(g(i));
        err += (g(i) - fd(i)) * (g(i) - fd(i)) / double(g.size());
        ref += fd(i) * fd(i) / double(g.size());
    }
    err = std::sqrt(err);
    ref = std::sqrt(ref);
    const double bound = 1e-7 * ref + noise;
    BOOST_TEST_MESSAGE(label << ": RMS error " << err << " (relative " << (ref > 0 ? err / ref : 0.0) << ") <= "
                             << bound << " = 1e-7 x RMS " << ref << " + round-off " << noise);
    BOOST_TEST((finite && err <= bound), label << ": RMS error " << err << " > " << bound << " (RMS of the gradient "
                                                << ref << ", round-off " << noise << ")");
}

void check_variant(LayerVariant v) {
    IDATTN_SEEDED(rng);
    const double h = 1e-5;
    const LayerSizes s;
    struct Case {
        std::size_t B, N;
        LayerForm form;
        std::size_t chunk;
    };
    for (const Case c : {Case{2, 1, LayerForm::Recurrence, 1}, Case{2, 2, LayerForm::Chunked, 1},
                         Case{2, 3, LayerForm::Folded, 1}, Case{2, 17, LayerForm::Chunked, 5},
                         Case{1, 65, LayerForm::Recurrence, 1}}) {
        LayerParams p = idattn::test::random_layer_params(rng, v, s, true);
        xt::xtensor<double, 3> x = idattn::test::random_x(rng, c.B, c.N, s.D);
        const xt::xtensor<double, 3> w = idattn::test::random_x(rng, c.B, c.N, s.D);
        LayerOptions opt = idattn::test::options_for(v);
        opt.form = c.form;
        opt.chunk = c.chunk;
        if (c.N == 17) opt.rope_order = RopeOrder::AfterFeatureMap;  // the other order of Figure 3's steps
        // eq:5.adjoint eq:5.grad-readout eq:5.grad-ssm eq:5.grad-maps eq:5.out
        const LayerGrads g = layer_backward(v, p, x, w, opt);
        const double noise = 6 * 1.1102230246251565e-16 * xt::sum(xt::abs(layer_forward(v, p, x, opt) * w))() / h;
        const std::string at = layer_variant_name(v) + ", B = " + std::to_string(c.B) + ", N = " +
                               std::to_string(c.N) + ", forward " + layer_form_name(c.form) + ", RoPE " +
                               rope_order_name(opt.rope_order);
        auto fx = [&] { return loss(v, p, x, w, opt); };
        check_gradient(at + ": dL/dx", central_differences(x, fx, h), flat(g.dx), noise);
        for (auto& [name, a] : p.arrays) {
            BOOST_TEST_REQUIRE(g.params.count(name) == 1, at << ": no gradient for " << name);
            BOOST_TEST((g.params.at(name).shape() == a.shape()), at << ": the gradient of " << name << " has another shape");
            check_gradient(at + ": dL/d" + name, central_differences(a, fx, h), flat(g.params.at(name)), noise);
        }
        BOOST_TEST(g.params.size() == p.arrays.size(), at << ": one gradient per parameter array and no other");
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layer_gradients)

// eq:5.adjoint eq:5.grad-readout eq:5.grad-ssm eq:5.grad-maps
BOOST_AUTO_TEST_CASE(full_matches_finite_differences) { check_variant(LayerVariant::Full); }
// eq:5.adjoint eq:5.grad-maps
BOOST_AUTO_TEST_CASE(norope_matches_finite_differences) { check_variant(LayerVariant::NoRope); }
// eq:5.adjoint eq:5.grad-readout
BOOST_AUTO_TEST_CASE(dualkv_matches_finite_differences) { check_variant(LayerVariant::DualKv); }
// eq:5.adjoint eq:5.grad-maps
BOOST_AUTO_TEST_CASE(single_matches_finite_differences) { check_variant(LayerVariant::Single); }
// eq:5.adjoint eq:5.grad-ssm
BOOST_AUTO_TEST_CASE(s4d_matches_finite_differences) { check_variant(LayerVariant::S4d); }
// eq:5.softmax eq:5.out
BOOST_AUTO_TEST_CASE(softmax_matches_finite_differences) { check_variant(LayerVariant::Softmax); }

BOOST_AUTO_TEST_SUITE_END()
