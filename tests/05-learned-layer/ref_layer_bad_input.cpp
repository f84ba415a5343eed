// Chapter 5, bad input to the reference: every way a parameter set or a call
// can be wrong gives an idattn::Error that names the array or option, what was
// expected and what was found. Deterministic.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include "api/common/names.hpp"
#include "tests/05-learned-layer/layer_testing.hpp"
#include "tests/common/messages.hpp"

using namespace idattn::ref;
using idattn::api::parse_layer_variant;
using idattn::test::error_message;
using idattn::test::has;

namespace {

LayerParams small(LayerVariant v, bool gate = false) { return layer_init(v, {5, 2, 4, 3, 3, 7, gate, true}); }

std::string forward_error(LayerVariant v, const LayerParams& p, const xt::xtensor<double, 3>& x,
                          LayerOptions opt) {
    return error_message([&] { layer_forward(v, p, x, opt); });
}

const xt::xtensor<double, 3> kX = xt::ones<double>({1, 4, 5});

}  // namespace

BOOST_AUTO_TEST_SUITE(layer_bad_input)

BOOST_AUTO_TEST_CASE(missing_extra_misshapen_and_non_finite_arrays_are_named) {
    for (const auto& name : layer_variant_names()) {
        const LayerVariant v = parse_layer_variant(name);
        const LayerOptions opt = idattn::test::options_for(v);
        for (const auto& array : layer_param_names(v, true)) {
            LayerParams p = small(v, true);
            p.arrays.erase(array);
            const std::string e = forward_error(v, p, kX, opt);
            if (array == "W_g") {  // the gate is optional: without it the layer runs ungated
                BOOST_TEST(e.empty(), name << ": without W_g: " << e);
                continue;
            }
            BOOST_TEST((has(e, "'" + array + "'") && has(e, "missing")), name << " without " << array << ": " << e);
        }
        LayerParams p = small(v);
        p.arrays.emplace("W_extra", xt::zeros<double>({2, 2}));
        std::string e = forward_error(v, p, kX, opt);
        BOOST_TEST((has(e, "'W_extra'") && has(e, "not used by the " + name)), e);

        p = small(v);
        p.arrays.at("W_o") = xt::zeros<double>({7, 5});
        e = forward_error(v, p, kX, opt);
        BOOST_TEST((has(e, "'W_o'") && has(e, "(7, 5)")), name << ": " << e);

        p = small(v);
        const std::string second = layer_param_names(v, false)[1];
        p.arrays.at(second).flat(0) = std::numeric_limits<double>::quiet_NaN();
        e = forward_error(v, p, kX, opt);
        BOOST_TEST((has(e, "'" + second + "'") && has(e, "nan")), name << ": " << e);
    }
    LayerParams p = small(LayerVariant::Full);
    p.arrays.at("C") = xt::zeros<double>({2, 3, 3});
    const std::string e = forward_error(LayerVariant::Full, p, kX, idattn::test::options_for(LayerVariant::Full));
    BOOST_TEST((has(e, "'C'") && has(e, "(2, 3, 3)") && has(e, "expected (2, 3, 3, 2)")), e);
}

BOOST_AUTO_TEST_CASE(lambda_on_the_unit_circle_is_refused) {
    LayerParams p = small(LayerVariant::S4d);
    p.arrays.at("log_dt")(1) = -800.0;  // Delta = exp(-800) underflows: Delta A = 0, |Lambda| = 1
    std::string e = forward_error(LayerVariant::S4d, p, kX, idattn::test::options_for(LayerVariant::S4d));
    BOOST_TEST((has(e, "|Lambda| = 1") && has(e, "head 1") && has(e, "log_dt = -800")), e);
    p = small(LayerVariant::S4d);
    p.arrays.at("log_A_real")(0, 2) = 800.0;  // exp(800) overflows
    e = forward_error(LayerVariant::S4d, p, kX, idattn::test::options_for(LayerVariant::S4d));
    BOOST_TEST((has(e, "overflows") && has(e, "mode 2") && has(e, "log_A_real = 800")), e);
}

BOOST_AUTO_TEST_CASE(odd_R_with_rope_on) {
    const LayerParams p = layer_init(LayerVariant::Full, {5, 2, 3, 3, 3, 7, false, false});  // R = 3, RoPE off
    LayerOptions opt = idattn::test::options_for(LayerVariant::Full);
    opt.rope = false;
    BOOST_TEST(forward_error(LayerVariant::Full, p, kX, opt).empty());
    opt.rope = true;
    const std::string e = forward_error(LayerVariant::Full, p, kX, opt);
    BOOST_TEST((has(e, "RoPE is on but R = 3 is odd")), e);
    const std::string ei = error_message([] { layer_init(LayerVariant::Full, {5, 2, 3, 3, 3, 7, false, true}); });
    BOOST_TEST(has(ei, "R = 3 is odd"), ei);
}

BOOST_AUTO_TEST_CASE(zero_sizes_and_bad_calls) {
    for (const auto& [field, msg] : std::vector<std::pair<int, std::string>>{
             {0, "D must be >= 1"}, {1, "H must be >= 1"}, {2, "R must be >= 1"}, {3, "d must be >= 1"}, {4, "M must be >= 1"}}) {
        LayerInitSpec s{5, 2, 4, 3, 3, 7, false, false};
        std::size_t* f[] = {&s.D, &s.H, &s.R, &s.d, &s.M};
        *f[field] = 0;
        const std::string e = error_message([&] { layer_init(LayerVariant::Full, s); });
        BOOST_TEST(has(e, msg), e);
    }
    const std::string big = error_message([] {
        layer_init(LayerVariant::Full, {std::size_t{1} << 40, 2, 4, 3, 3, 7, false, false});
    });
    BOOST_TEST((has(big, "D = 1099511627776") && has(big, "'W_q'")), big);

    const LayerParams p = small(LayerVariant::Full);
    const LayerOptions opt = idattn::test::options_for(LayerVariant::Full);
    std::string e = forward_error(LayerVariant::Full, p, xt::ones<double>({1, 4, 6}), opt);
    BOOST_TEST((has(e, "x has shape (1, 4, 6)") && has(e, "(B, N, 5)")), e);
    e = forward_error(LayerVariant::Full, p, xt::ones<double>({1, 0, 5}), opt);
    BOOST_TEST(has(e, "x has shape (1, 0, 5)"), e);
    xt::xtensor<double, 3> xn = kX;
    xn(0, 2, 1) = INFINITY;
    e = forward_error(LayerVariant::Full, p, xn, opt);
    BOOST_TEST((has(e, "x") && has(e, "inf")), e);
    LayerOptions o2 = opt;
    o2.form = LayerForm::Chunked;
    o2.chunk = 0;
    BOOST_TEST(has(forward_error(LayerVariant::Full, p, kX, o2), "chunk length must be >= 1"));
    e = error_message([&] { layer_backward(LayerVariant::Full, p, kX, xt::ones<double>({1, 3, 5}), opt); });
    BOOST_TEST((has(e, "dy has shape (1, 3, 5)") && has(e, "(1, 4, 5)")), e);
    o2 = opt;
    o2.backward = LayerBackward::LambdaDivision;
    o2.checkpoint = 0;
    e = error_message([&] { layer_backward(LayerVariant::Full, p, kX, kX, o2); });
    BOOST_TEST(has(e, "checkpoint interval must be >= 1"), e);
    LayerParams p0 = p;
    p0.heads = 0;
    BOOST_TEST(has(forward_error(LayerVariant::Full, p0, kX, opt), "'heads' must be >= 1"));
    LayerParams p3 = p;
    p3.heads = 3;  // W_o (6, 5) splits into d = 2 per head, W_q (5, 8) does not split
    e = forward_error(LayerVariant::Full, p3, kX, opt);
    BOOST_TEST((has(e, "'W_q'") && has(e, "multiple of H = 3")), e);
    for (const char* bad : {"fulll", "", "SOFTMAX"}) {
        e = error_message([&] { parse_layer_variant(bad); });
        BOOST_TEST(has(e, "expected one of full, norope, dualkv, single, s4d, softmax"), e);
    }
}

BOOST_AUTO_TEST_SUITE_END()
