// Chapter 5, the forward: the three forms of the core agree (recurrence, G-folded
// readout, chunkwise two-pass for every kind of chunk), the layer is causal
// bitwise, it meets chapters 1 and 4 where the chapter says it does, and each
// token-wise map has the property that defines it. Deterministic, float64.
// Labels refer to chapters/05-learned-layer.md.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "api/common/names.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"
#include "ref/05-learned-layer/layer_maps.hpp"
#include "tests/05-learned-layer/layer_testing.hpp"

using namespace idattn::ref;
using idattn::api::parse_layer_variant;
using idattn::test::flat;
using idattn::test::LayerSizes;
using idattn::test::tol_check;

namespace {

const std::vector<std::size_t> kLayerN{1, 2, 3, 17, 65};

// A head's core inputs: f (N, R) rows of norm <= 1 like xi(q), z (N, R + d).
struct CoreInputs {
    LMat f, z;
};
CoreInputs core_inputs(idattn::test::Rng& rng, std::size_t N, std::size_t R, std::size_t d) {
    LMat f = rng.normal<2>({N, R}, 0.5), z = rng.normal<2>({N, R + d});
    return {f, z};
}

xt::xtensor<double, 2> two_d(const xt::xtensor<double, 3>& y) {
    return xt::reshape_view(y, {y.shape(0) * y.shape(1), y.shape(2)});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(layer_forms)

// eq:5.1 eq:5.fold
BOOST_AUTO_TEST_CASE(chunked_and_folded_equal_the_recurrence) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    for (std::size_t N : kLayerN) {
        const LayerParams p = idattn::test::random_layer_params(rng, LayerVariant::Full, s, false);
        const CoreParams cp = core_params(p, 1);
        const CoreInputs in = core_inputs(rng, N, s.R, s.d);
        const LMat rec = core_forward_recurrence(cp, in.f, in.z);
        const std::string at = "N = " + std::to_string(N);
        IDATTN_CHECK_CMP(tol_check<2>(at + ", folded (eq:5.fold)", rec, core_forward_folded(cp, in.f, in.z), 1e-13));
        for (std::size_t K : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{5}, std::size_t{16}, N, N + 3})
            IDATTN_CHECK_CMP(tol_check<2>(at + ", chunked K = " + std::to_string(K) + " (eq:5.1)", rec,
                                          core_forward_chunked(cp, in.f, in.z, K), 1e-13));
    }
}

// eq:5.1 eq:5.fold: the same through the whole layer, every SSM variant, batched
BOOST_AUTO_TEST_CASE(layer_forms_agree_for_every_variant) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    for (LayerVariant v : {LayerVariant::Full, LayerVariant::NoRope, LayerVariant::DualKv, LayerVariant::Single,
                           LayerVariant::S4d}) {
        const LayerParams p = idattn::test::random_layer_params(rng, v, s, true);
        const auto x = idattn::test::random_x(rng, 2, 65, s.D);
        LayerOptions opt = idattn::test::options_for(v);
        const auto rec = layer_forward(v, p, x, opt);
        opt.form = LayerForm::Folded;
        IDATTN_CHECK_CMP(tol_check<3>(layer_variant_name(v) + " folded", rec, layer_forward(v, p, x, opt), 1e-13));
        opt.form = LayerForm::Chunked;
        opt.chunk = 7;
        IDATTN_CHECK_CMP(tol_check<3>(layer_variant_name(v) + " chunked K = 7", rec, layer_forward(v, p, x, opt), 1e-13));
    }
}

// Causality: changing x after token t leaves y up to t bitwise unchanged, every variant and form.
// eq:5.conv eq:5.ssm eq:5.1 eq:5.softmax
BOOST_AUTO_TEST_CASE(causal_bitwise) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    const std::size_t N = 17, t = 9;
    for (const auto& name : layer_variant_names()) {
        const LayerVariant v = parse_layer_variant(name);
        const LayerParams p = idattn::test::random_layer_params(rng, v, s, true);
        auto x = idattn::test::random_x(rng, 1, N, s.D);
        for (LayerForm form : {LayerForm::Recurrence, LayerForm::Folded, LayerForm::Chunked}) {
            LayerOptions opt = idattn::test::options_for(v);
            opt.form = form;
            opt.chunk = 4;
            const auto y = layer_forward(v, p, x, opt);
            auto x2 = x;
            for (std::size_t u = t + 1; u < N; ++u)
                for (std::size_t c = 0; c < s.D; ++c) x2(0, u, c) += 10.0 * (1.0 + double(c));
            const auto y2 = layer_forward(v, p, x2, opt);
            bool same = true, later_changed = false;
            for (std::size_t u = 0; u < N; ++u)
                for (std::size_t c = 0; c < s.D; ++c) {
                    if (u <= t) same = same && y(0, u, c) == y2(0, u, c);
                    else later_changed = later_changed || y(0, u, c) != y2(0, u, c);
                }
            BOOST_TEST(same, name << ", " << layer_form_name(form) << ": y up to t = " << t << " changed");
            BOOST_TEST(later_changed, name << ", " << layer_form_name(form) << ": the perturbation had no effect at all");
        }
    }
}

// At initialisation (C = I, B = the zero-order hold of 1), the core's states are
// chapter 4's S4D states with zero-order hold for the same Delta and A, and its
// output is chapter 4's ssm-attention numerator on the same features.
// eq:5.init eq:5.ssm eq:5.C eq:P13
BOOST_AUTO_TEST_CASE(at_init_the_core_is_chapter_4s_numerator) {
    IDATTN_SEEDED(rng);
    const LayerSizes s;
    const LayerParams p = layer_init(LayerVariant::Full, {s.D, s.H, s.R, s.d, 8, rng.engine()(), false, true});
    for (std::size_t h = 0; h < s.H; ++h) {
        const CoreParams cp = core_params(p, h);
        const std::size_t M = cp.lambda.size();
        CVec a = xt::zeros<std::complex<double>>({M}), ones = xt::ones<std::complex<double>>({M});
        for (std::size_t m = 0; m < M; ++m)
            a(m) = {-std::exp(p.arrays.at("log_A_real")(h, m)), p.arrays.at("A_imag")(h, m)};
        const DiagonalSsm<double> ch4 = s4d_zoh(a, ones, std::exp(p.arrays.at("log_dt")(h)));
        for (std::size_t N : kLayerN) {
            const CoreInputs in = core_inputs(rng, N, s.R, s.d);
            const LMat fk = xt::view(in.z, xt::all(), xt::range(0, s.R));
            const LMat v = xt::view(in.z, xt::all(), xt::range(s.R, s.R + s.d));
            const std::string at = "head " + std::to_string(h) + ", N = " + std::to_string(N);
            const auto states4 = ssm_states_recurrence(ch4, ssm_channels(fk, v));  // [fk, v, 1]
            const auto states5 = core_states(cp, in.z);                           // [k~, v~]
            double worst = 0, scale = 0;
            for (std::size_t t = 0; t < N; ++t)
                for (std::size_t m = 0; m < M; ++m)
                    for (std::size_t c = 0; c < s.R + s.d; ++c) {
                        worst = std::max(worst, std::abs(states4(t, m, c) - states5(t, m, c)));
                        scale = std::max(scale, std::abs(states4(t, m, c)));
                    }
            BOOST_TEST(worst <= 1e-14 * scale, at << ": states differ from chapter 4's by " << worst);
            const auto num = ssm_attention_parts(SsmForm::Recurrence, ch4, in.f, fk, v).num;
            IDATTN_CHECK_CMP(tol_check<2>(at + ": core vs chapter 4's numerator", num,
                                          core_forward_recurrence(cp, in.f, in.z), 1e-13));
        }
    }
}

// The softmax variant is chapter 1's reference per head (with R = d, the case
// chapter 1 covers), heads concatenated, then W_o.     eq:5.softmax
BOOST_AUTO_TEST_CASE(softmax_variant_is_chapter_1_per_head) {
    IDATTN_SEEDED(rng);
    LayerSizes s;
    s.d = s.R;
    const LayerParams p = idattn::test::random_layer_params(rng, LayerVariant::Softmax, s, false);
    for (std::size_t N : kLayerN) {
        const auto x = idattn::test::random_x(rng, 1, N, s.D);
        const LMat x0 = xt::view(x, 0);
        const LMat q = maps::rope(maps::linear(x0, LMat(p.arrays.at("W_q"))), s.H, false);
        const LMat k = maps::rope(maps::linear(x0, LMat(p.arrays.at("W_k"))), s.H, false);
        const LMat v = maps::linear(x0, LMat(p.arrays.at("W_v")));
        LMat o = xt::zeros<double>({N, s.H * s.d});
        for (std::size_t h = 0; h < s.H; ++h) {
            auto cols = xt::range(h * s.R, (h + 1) * s.R);
            xt::view(o, xt::all(), cols) = softmax_attention<double>(LMat(xt::view(q, xt::all(), cols)),
                                                                     LMat(xt::view(k, xt::all(), cols)),
                                                                     LMat(xt::view(v, xt::all(), cols)), true);
        }
        const LMat y1 = xt::linalg::dot(o, LMat(p.arrays.at("W_o")));
        IDATTN_CHECK_CMP(tol_check<2>("N = " + std::to_string(N), y1,
                                      two_d(layer_forward(LayerVariant::Softmax, p, x, idattn::test::options_for(LayerVariant::Softmax))),
                                      1e-13));
    }
}

// The short convolution's impulse response is its kernel, read backwards, and nothing before t = 0.     eq:5.conv
BOOST_AUTO_TEST_CASE(short_conv_impulse_response) {
    IDATTN_SEEDED(rng);
    const LMat conv = rng.normal<2>({3, 4});
    for (std::size_t s : {std::size_t{0}, std::size_t{2}, std::size_t{6}}) {
        LMat x = xt::zeros<double>({8, 3});
        for (std::size_t c = 0; c < 3; ++c) x(s, c) = 1.0;
        const LMat y = maps::short_conv(x, conv);
        for (std::size_t t = 0; t < 8; ++t)
            for (std::size_t c = 0; c < 3; ++c) {
                const double expect = (t >= s && t - s < 4) ? conv(c, 3 - (t - s)) : 0.0;
                BOOST_TEST(y(t, c) == expect, "impulse at " << s << ": y(" << t << ", " << c << ")");
            }
    }
}

// RoPE is a rotation (norms kept, the inverse undoes it) and makes the score
// rope(q)_t . rope(k)_u depend on t - u only.     eq:5.rope
BOOST_AUTO_TEST_CASE(rope_is_a_relative_rotation) {
    IDATTN_SEEDED(rng);
    const std::size_t H = 2, w = 6, N = 12;
    const LMat q1 = rng.normal<2>({1, H * w}), k1 = rng.normal<2>({1, H * w});
    LMat q = xt::zeros<double>({N, H * w}), k = q;
    for (std::size_t t = 0; t < N; ++t) {
        xt::view(q, t) = xt::view(q1, 0);
        xt::view(k, t) = xt::view(k1, 0);
    }
    const LMat rq = maps::rope(q, H, false), rk = maps::rope(k, H, false);
    IDATTN_CHECK_CMP(tol_check<2>("inverse of RoPE", q, maps::rope(rq, H, true), 1e-15));
    for (std::size_t t = 0; t < N; ++t)
        BOOST_TEST(std::abs(xt::linalg::norm(xt::view(rq, t)) - xt::linalg::norm(xt::view(q, t))) <= 1e-14);
    for (std::size_t h = 0; h < H; ++h)
        for (std::size_t t = 3; t < N; ++t) {
            auto cols = xt::range(h * w, (h + 1) * w);
            const double score = xt::linalg::vdot(xt::view(rq, t, cols), xt::view(rk, t - 3, cols));
            const double first = xt::linalg::vdot(xt::view(rq, 3, cols), xt::view(rk, 0, cols));
            BOOST_TEST(std::abs(score - first) <= 1e-13 * (1 + std::abs(first)), "head " << h << ", t = " << t);
        }
}

// xi(u) = SiLU(u) / sqrt(|SiLU(u)|^2 + 1e-6): norm below 1, direction of SiLU(u).     eq:P10
// N+b with g = 1, b = 0 has mean square mean(x^2) / (mean(x^2) + 1e-6).     eq:P12
BOOST_AUTO_TEST_CASE(feature_map_and_norm_definitions) {
    IDATTN_SEEDED(rng);
    const std::size_t H = 2, w = 5, N = 7;
    const LMat u = rng.normal<2>({N, H * w}, 3.0);
    const LMat xi = maps::feature_map(u, H);
    const LMat g = xt::ones<double>({H, w}), b = xt::zeros<double>({H, w});
    const LMat nb = maps::norm_bias(u, g, b);
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t h = 0; h < H; ++h) {
            double ss = 0, xs = 0, us = 0, ns = 0;
            for (std::size_t r = 0; r < w; ++r) {
                ss += maps::silu(u(t, h * w + r)) * maps::silu(u(t, h * w + r));
                xs += xi(t, h * w + r) * xi(t, h * w + r);
                us += u(t, h * w + r) * u(t, h * w + r) / double(w);
                ns += nb(t, h * w + r) * nb(t, h * w + r) / double(w);
            }
            for (std::size_t r = 0; r < w; ++r) {  // xi times the norm is SiLU(u)
                const double sr = maps::silu(u(t, h * w + r));
                BOOST_TEST(std::abs(xi(t, h * w + r) * std::sqrt(ss + 1e-6) - sr) <= 1e-15 * (1 + std::abs(sr)));
            }
            BOOST_TEST(std::abs(xs - ss / (ss + 1e-6)) <= 1e-15);
            BOOST_TEST(std::abs(ns - us / (us + 1e-6)) <= 1e-15);
        }
}

// layer-init: the deterministic values of chapter 5's contract.     eq:5.init
BOOST_AUTO_TEST_CASE(initialisation_values) {
    const std::size_t M = 6, R = 4;
    const LayerParams p = layer_init(LayerVariant::DualKv, {5, 2, R, 3, M, 42, false, true});
    const LayerParams p2 = layer_init(LayerVariant::DualKv, {5, 2, R, 3, M, 42, false, true});
    const LayerParams p3 = layer_init(LayerVariant::DualKv, {5, 2, R, 3, M, 43, false, true});
    BOOST_TEST(p.heads == 2u);
    for (const auto& [n, a] : p.arrays) {
        BOOST_TEST((a == p2.arrays.at(n)), n << ": the same seed gives the same array");
        if (n.rfind("W_", 0) == 0 || n.rfind("conv_", 0) == 0 || n == "log_dt")
            BOOST_TEST((a != p3.arrays.at(n)), n << ": another seed gives another draw");
    }
    for (std::size_t h = 0; h < 2; ++h) {
        const double delta = std::exp(p.arrays.at("log_dt")(h));
        BOOST_TEST((delta >= 1e-3 && delta <= 1e-1));
        const CoreParams cp = core_params(p, h);
        for (std::size_t m = 0; m < M; ++m) {
            const double im = p.arrays.at("A_imag")(h, m);
            BOOST_TEST(std::abs(im - (2.0 * M / std::numbers::pi) * (2.0 * M / (2.0 * m + 1.0) - 1.0)) <= 1e-13 * im);
            BOOST_TEST(im > 0.0, "every S4D-Inv frequency is positive with state size 2M");
            BOOST_TEST(std::abs(std::exp(p.arrays.at("log_A_real")(h, m)) - 0.5) <= 1e-15);
            const std::complex<double> a(-0.5, im);
            const std::complex<double> zoh = (cp.lambda(m) - 1.0) / a;  // B = (Lambda - 1)/A
            BOOST_TEST(std::abs(cp.b(m) - zoh) <= 1e-12 * std::abs(zoh));
            for (std::size_t n = 0; n < M; ++n) BOOST_TEST(cp.c(m, n) == std::complex<double>(m == n ? 1.0 : 0.0, 0.0));
        }
        for (std::size_t r = 0; r < R; ++r) {
            BOOST_TEST(p.arrays.at("c_read")(h, r) == 1.0 / std::sqrt(double(R)));
            BOOST_TEST(p.arrays.at("g_k")(h, r) == 1.0);
            BOOST_TEST(p.arrays.at("b_k")(h, r) == 0.0);
        }
    }
    for (double c : p.arrays.at("conv_k")) BOOST_TEST((c >= -0.5 && c <= 0.5));
}

BOOST_AUTO_TEST_SUITE_END()
