// Chapter 1, reference tests: the float64 reference against the chapter's
// equations, computed independently here (deterministic claims, tight
// tolerances). Labels refer to chapters/01-softmax-attention.md.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "tests/common/testutil.hpp"

using idattn::ref::online_softmax_attention;
using idattn::ref::softmax_attention;
using Mat = xt::xtensor<double, 2>;

namespace {

// eq:P1 written out with no shift and no matrix products: the literal
// Nadaraya-Watson sum, in long double, usable only for moderate logits.
Mat literal_p1(const Mat& q, const Mat& k, const Mat& v, bool causal) {
    const std::size_t nq = q.shape(0), n = k.shape(0), d = q.shape(1);
    Mat o = xt::zeros<double>({nq, d});
    for (std::size_t i = 0; i < nq; ++i) {
        long double den = 0;
        std::vector<long double> num(d, 0);
        for (std::size_t j = 0; j < n; ++j) {
            if (causal && j > i + (n - nq)) continue;  // eq:1.causal
            long double dot = 0;
            for (std::size_t c = 0; c < d; ++c) dot += static_cast<long double>(q(i, c)) * k(j, c);
            const long double kern = std::exp(dot / std::sqrt(static_cast<long double>(d)));
            den += kern;
            for (std::size_t c = 0; c < d; ++c) num[c] += kern * v(j, c);
        }
        for (std::size_t c = 0; c < d; ++c) o(i, c) = static_cast<double>(num[c] / den);
    }
    return o;
}

double max_abs_logit(const Mat& q, const Mat& k) {
    double m = 0;
    for (std::size_t i = 0; i < q.shape(0); ++i)
        for (std::size_t j = 0; j < k.shape(0); ++j) {
            double dot = 0;
            for (std::size_t c = 0; c < q.shape(1); ++c) dot += q(i, c) * k(j, c);
            m = std::max(m, std::fabs(dot) / std::sqrt(static_cast<double>(q.shape(1))));
        }
    return m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_P1)

// eq:P1 eq:1.normalise: the reference equals the literal estimator.
BOOST_AUTO_TEST_CASE(reference_equals_literal_estimator) {
    IDATTN_SEEDED(rng);
    for (std::size_t n : idattn::test::kRaggedN) {
        if (n > 97) continue;  // the literal long-double sum is slow; shapes up to 97 cover the tiling edges
        for (std::size_t d : idattn::test::kRaggedD)
            for (bool causal : {false, true}) {
                BOOST_TEST_CONTEXT("N = " << n << ", d = " << d << ", causal = " << causal) {
                    const Mat q = rng.normal<2>({n, d}), k = rng.normal<2>({n, d}), v = rng.normal<2>({n, d});
                    IDATTN_CHECK_CMP(idattn::test::tol_check("P1", literal_p1(q, k, v, causal),
                                                             softmax_attention<double>(q, k, v, causal), 1e-13));
                }
            }
    }
}

// eq:P1: the weights are a convex combination, so every output coordinate
// lies between the smallest and largest value of that coordinate.
BOOST_AUTO_TEST_CASE(outputs_are_convex_combinations_of_values) {
    IDATTN_SEEDED(rng);
    const std::size_t n = 97, d = 59;
    const Mat q = rng.normal<2>({n, d}, 2.0), k = rng.normal<2>({n, d}, 2.0), v = rng.normal<2>({n, d});
    const Mat o = softmax_attention<double>(q, k, v, false);
    const xt::xtensor<double, 1> lo = xt::amin(v, {0}), hi = xt::amax(v, {0});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < d; ++c)
            BOOST_TEST_REQUIRE((o(i, c) >= lo(c) - 1e-14 && o(i, c) <= hi(c) + 1e-14),
                               "o(" << i << ", " << c << ") = " << o(i, c) << " outside [" << lo(c) << ", " << hi(c) << "]");
}

// eq:P1 for batched (B, H, N, d) tensors: every head independently.
BOOST_AUTO_TEST_CASE(batched_equals_each_head) {
    IDATTN_SEEDED(rng);
    const std::size_t b = 2, h = 3, nq = 65, n = 97, d = 64;
    const auto q = rng.normal<4>({b, h, nq, d}), k = rng.normal<4>({b, h, n, d}), v = rng.normal<4>({b, h, n, d});
    const auto o = softmax_attention<double>(q, k, v, true);
    BOOST_TEST_REQUIRE((o.shape() == q.shape()));
    for (std::size_t bi = 0; bi < b; ++bi)
        for (std::size_t hi = 0; hi < h; ++hi) {
            const Mat qh = xt::view(q, bi, hi), kh = xt::view(k, bi, hi), vh = xt::view(v, bi, hi);
            const Mat oh = xt::view(o, bi, hi);
            IDATTN_CHECK_CMP(idattn::test::tol_check("head", softmax_attention<double>(qh, kh, vh, true), oh, 0.0));
        }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_1_causal)

// eq:1.causal eq:1.2: causal row i equals non-causal attention over the
// visible prefix k_0..k_{i+N-Nq}.
BOOST_AUTO_TEST_CASE(causal_row_equals_attention_over_prefix) {
    IDATTN_SEEDED(rng);
    for (auto [nq, n] : {std::pair<std::size_t, std::size_t>{63, 63}, {1, 65}, {64, 97}, {97, 97}}) {
        BOOST_TEST_CONTEXT("Nq = " << nq << ", N = " << n) {
            const std::size_t d = 59;
            const Mat q = rng.normal<2>({nq, d}), k = rng.normal<2>({n, d}), v = rng.normal<2>({n, d});
            const Mat o = softmax_attention<double>(q, k, v, true);
            for (std::size_t i = 0; i < nq; ++i) {
                const std::size_t visible = i + (n - nq) + 1;
                const Mat qi = xt::view(q, xt::range(i, i + 1), xt::all());
                const Mat kp = xt::view(k, xt::range(0, visible), xt::all());
                const Mat vp = xt::view(v, xt::range(0, visible), xt::all());
                const Mat want = softmax_attention<double>(qi, kp, vp, false);
                const Mat got = xt::view(o, xt::range(i, i + 1), xt::all());
                const auto c = idattn::test::tol_check("row", want, got, 1e-13);
                BOOST_TEST_REQUIRE(c.pass, "row " << i << ": " << c.report());
            }
        }
    }
}

// eq:1.causal: with Nq = N the first query sees only the first key, so o_0 = v_0.
BOOST_AUTO_TEST_CASE(first_causal_row_is_first_value) {
    IDATTN_SEEDED(rng);
    const std::size_t n = 65, d = 100;
    const Mat q = rng.normal<2>({n, d}), k = rng.normal<2>({n, d}), v = rng.normal<2>({n, d});
    const Mat o = softmax_attention<double>(q, k, v, true);
    for (std::size_t c = 0; c < d; ++c) BOOST_TEST(o(0, c) == v(0, c), boost::test_tools::tolerance(1e-15));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_1_shift)

// eq:1.shift: translating every key by the same vector delta adds q_i.delta/sqrt(d)
// to all logits of row i, which cancels in (P1). With |q.delta|/sqrt(d) ~ 1e3 the
// unshifted exponentials overflow, yet the shifted reference is unchanged.
BOOST_AUTO_TEST_CASE(key_translation_cancels_even_when_exp_overflows) {
    IDATTN_SEEDED(rng);
    const std::size_t n = 97, d = 64;
    const Mat q = rng.normal<2>({n, d}), k = rng.normal<2>({n, d}), v = rng.normal<2>({n, d});
    Mat delta = rng.normal<2>({1, d});
    delta *= 6e3 / std::sqrt(static_cast<double>(d));  // q_i . delta / sqrt(d) ~ N(0, 750^2)
    const Mat k_shifted = k + delta;
    // The unshifted exponential really does overflow for this input.
    const double max_logit = max_abs_logit(q, k_shifted);
    BOOST_TEST_MESSAGE("largest |logit|: " << max_logit);
    BOOST_TEST(max_logit > 709.8);  // exp(709.8) overflows float64
    for (bool causal : {false, true}) {
        const Mat want = softmax_attention<double>(q, k, v, causal);
        const Mat got = softmax_attention<double>(q, k_shifted, v, causal);
        // logits of size 1e3 carry absolute rounding ~1e3 * 1e-16, amplified by exp: tolerance 1e-11
        IDATTN_CHECK_CMP(idattn::test::tol_check("translated keys", want, got, 1e-11));
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_1_online)

// eq:1.online: the online-softmax recurrence over key blocks equals the direct
// form for every block size, including 1, non-dividing sizes and >= N.
BOOST_AUTO_TEST_CASE(online_recurrence_equals_direct_form) {
    IDATTN_SEEDED(rng);
    for (std::size_t n : {1ul, 63ul, 64ul, 65ul, 97ul})
        for (std::size_t block : {1ul, 7ul, 16ul, 64ul, 1000ul})
            for (bool causal : {false, true}) {
                BOOST_TEST_CONTEXT("N = " << n << ", block = " << block << ", causal = " << causal) {
                    const std::size_t d = 59;
                    const Mat q = rng.normal<2>({n, d}, 2.0), k = rng.normal<2>({n, d}, 2.0), v = rng.normal<2>({n, d});
                    const auto c = idattn::test::tol_check("online", softmax_attention<double>(q, k, v, causal),
                                                           online_softmax_attention<double>(q, k, v, causal, block), 1e-13);
                    BOOST_TEST(c.pass, c.report());
                }
            }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_1_3)

// eq:1.3: rows of huge logits (|q.k|/sqrt(d) ~ 1e3) stay finite and remain
// convex combinations; the online recurrence agrees.
BOOST_AUTO_TEST_CASE(huge_logits_stay_finite) {
    IDATTN_SEEDED(rng);
    const std::size_t n = 65, d = 64;
    Mat q = rng.normal<2>({n, d}), k = rng.normal<2>({n, d});
    q *= 16.0;
    k *= 16.0;  // |q.k| / sqrt(d) has standard deviation 256: the largest of 65^2 is ~1e3
    const Mat v = rng.normal<2>({n, d});
    const double max_logit = max_abs_logit(q, k);
    BOOST_TEST_MESSAGE("largest |logit|: " << max_logit);
    BOOST_TEST(max_logit > 500.0);
    for (bool causal : {false, true}) {
        const Mat o = softmax_attention<double>(q, k, v, causal);
        BOOST_TEST(idattn::test::count_non_finite(o.data(), o.size()) == 0u);
        IDATTN_CHECK_CMP(idattn::test::tol_check("online at huge logits", o,
                                                 online_softmax_attention<double>(q, k, v, causal, 16), 1e-12));
    }
}

BOOST_AUTO_TEST_SUITE_END()
