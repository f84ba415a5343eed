// Chapter 2, reference tests of the feature maps (deterministic claims, tight
// float64 tolerances): each map against its formula written out per element,
// the Taylor map against the truncated kernel, and the exponent stabiliser.
// The statistical claims (unbiasedness, variance) are in ref_statistical.cpp.
// Labels refer to chapters/02-kernel-feature-map.md.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/02-kernel-feature-map/linear_attention.hpp"
#include "tests/common/testutil.hpp"

using namespace idattn::ref;
using Mat = xt::xtensor<double, 2>;
using idattn::test::tol_check;

namespace {

using LD = long double;

LD dot_row(const Mat& a, std::size_t i, const Mat& b, std::size_t j) {
    LD s = 0;
    for (std::size_t c = 0; c < a.shape(1); ++c) s += static_cast<LD>(a(i, c)) * b(j, c);
    return s;
}

// The maps written out per element in long double, independently of the reference.
Mat literal_features(FeatureMap map, const Mat& x, const Mat& w) {
    const std::size_t n = x.shape(0), d = x.shape(1), m = w.shape(0);
    const LD s = std::sqrt(static_cast<LD>(d)), root_s = std::sqrt(s);
    Mat f = xt::zeros<double>({n, feature_dim(map, m, d)});
    for (std::size_t i = 0; i < n; ++i) {
        const LD sq = dot_row(x, i, x, i);
        for (std::size_t r = 0; r < m; ++r) {
            const LD wx = dot_row(w, r, x, i);
            if (map == FeatureMap::Rff) {
                f(i, r) = static_cast<double>(std::exp(sq / (2 * s)) * std::cos(wx / root_s) / std::sqrt(LD(m)));
                f(i, m + r) = static_cast<double>(std::exp(sq / (2 * s)) * std::sin(wx / root_s) / std::sqrt(LD(m)));
            } else {
                f(i, r) = static_cast<double>(std::exp(wx / root_s - sq / (2 * s)) / std::sqrt(LD(m)));
            }
        }
    }
    return f;
}

Mat as_column(const xt::xtensor<double, 1>& v) {
    Mat m = xt::zeros<double>({v.size(), std::size_t{1}});
    for (std::size_t i = 0; i < v.size(); ++i) m(i, 0) = v(i);
    return m;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_2_1)

// eq:2.1 eq:P5: the rff features equal exp(|x|^2/2s) R^(-1/2) [cos(w.x~), sin(w.x~)] element by element.
BOOST_AUTO_TEST_CASE(rff_matches_literal_formula) {
    IDATTN_SEEDED(rng);
    for (std::size_t d : idattn::test::kRaggedD) {
        BOOST_TEST_CONTEXT("d = " << d) {
            const Mat x = rng.normal<2>({63, d}, 0.5);
            const Mat w = draw_gaussian(17, d, rng.engine()());
            IDATTN_CHECK_CMP(tol_check("rff", literal_features(FeatureMap::Rff, x, w),
                                       feature_map<double>(FeatureMap::Rff, x, w), 1e-13));
        }
    }
}

// eq:2.gauss-split eq:P5 eq:P3: the rff inner product is exactly the split kernel with the
// Gaussian factor replaced by its Monte Carlo average (1/R) sum_r cos(w_r.(q - k)/d^(1/4)),
// and the split itself is an identity: exp(q.k/s) = exp(|q|^2/2s) exp(|k|^2/2s) exp(-|q-k|^2/2s).
BOOST_AUTO_TEST_CASE(rff_inner_product_is_the_split_kernel_with_monte_carlo_gaussian) {
    IDATTN_SEEDED(rng);
    const std::size_t n = 33, d = 64, m = 25;
    const Mat q = rng.normal<2>({n, d}, 0.4), k = rng.normal<2>({n, d}, 0.4);
    const Mat w = draw_gaussian(m, d, rng.engine()());
    const Mat approx = feature_kernel_matrix<double>(feature_map<double>(FeatureMap::Rff, q, w),
                                                     feature_map<double>(FeatureMap::Rff, k, w));
    Mat want = xt::zeros<double>({n, n}), split = xt::zeros<double>({n, n});
    const LD s = std::sqrt(LD(d));
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            const LD qq = dot_row(q, i, q, i), kk = dot_row(k, j, k, j), qk = dot_row(q, i, k, j);
            LD mc = 0;
            for (std::size_t r = 0; r < m; ++r) mc += std::cos((dot_row(w, r, q, i) - dot_row(w, r, k, j)) / std::sqrt(s));
            want(i, j) = static_cast<double>(std::exp(qq / (2 * s)) * std::exp(kk / (2 * s)) * mc / LD(m));
            split(i, j) = static_cast<double>(std::exp(qq / (2 * s)) * std::exp(kk / (2 * s)) *
                                              std::exp(-(qq - 2 * qk + kk) / (2 * s)));
        }
    IDATTN_CHECK_CMP(tol_check("rff inner product", want, approx, 1e-13));
    IDATTN_CHECK_CMP(tol_check("gaussian split", softmax_kernel_matrix<double>(q, k), split, 1e-13));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_2_2)

// eq:2.2: positive features R^(-1/2) exp(w.x~ - |x~|^2/2), x~ = x / d^(1/4), element by element;
// every feature is > 0.
BOOST_AUTO_TEST_CASE(positive_matches_literal_formula) {
    IDATTN_SEEDED(rng);
    for (std::size_t d : idattn::test::kRaggedD) {
        BOOST_TEST_CONTEXT("d = " << d) {
            const Mat x = rng.normal<2>({65, d});
            const Mat w = draw_gaussian(31, d, rng.engine()());
            const Mat f = feature_map<double>(FeatureMap::Positive, x, w);
            IDATTN_CHECK_CMP(tol_check("positive", literal_features(FeatureMap::Positive, x, w), f, 1e-13));
            BOOST_TEST(xt::amin(f)() > 0.0);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_2_3)

// eq:2.3: the orthogonal draw is blocks of d exactly orthogonal rows (the last block
// truncated), deterministic in its seed, and the orthogonal map is the positive formula
// evaluated on that draw.
BOOST_AUTO_TEST_CASE(orthogonal_draw_is_orthogonal_blocks) {
    IDATTN_SEEDED(rng);
    for (auto [m, d] : {std::pair<std::size_t, std::size_t>{8, 8}, {20, 8}, {130, 64}, {3, 59}}) {
        BOOST_TEST_CONTEXT("R = " << m << ", d = " << d) {
            const auto seed = rng.engine()();
            const Mat w = draw_orthogonal(m, d, seed);
            BOOST_TEST_REQUIRE((w.shape(0) == m && w.shape(1) == d));
            double worst = 0;
            for (std::size_t a = 0; a < m; ++a)
                for (std::size_t b = a + 1; b < m && b / d == a / d; ++b) {
                    const double cosine = static_cast<double>(dot_row(w, a, w, b) /
                                                              std::sqrt(dot_row(w, a, w, a) * dot_row(w, b, w, b)));
                    worst = std::max(worst, std::fabs(cosine));
                }
            BOOST_TEST_MESSAGE("largest |cos| between rows of one block: " << worst);
            BOOST_TEST(worst < 1e-13);
            BOOST_TEST((draw_orthogonal(m, d, seed) == w));
            const Mat x = rng.normal<2>({9, d});
            IDATTN_CHECK_CMP(tol_check("orthogonal map", literal_features(FeatureMap::Positive, x, w),
                                       feature_map<double>(FeatureMap::Orthogonal, x, w), 1e-13));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_2_4)

// eq:2.4 eq:P3: the Taylor features reproduce the truncated kernel 1 + t + t^2/2 exactly
// (to rounding), and that kernel is >= 1/2, so the (P4) denominator stays positive.
BOOST_AUTO_TEST_CASE(taylor_reproduces_truncated_kernel) {
    IDATTN_SEEDED(rng);
    for (std::size_t d : idattn::test::kRaggedD) {
        BOOST_TEST_CONTEXT("d = " << d) {
            const Mat q = rng.normal<2>({63, d}), k = rng.normal<2>({64, d});
            const Mat empty(std::array<std::size_t, 2>{0, 0});
            const Mat fq = feature_map<double>(FeatureMap::Taylor, q, empty);
            BOOST_TEST(fq.shape(1) == 1 + d + d * d);
            const Mat got = feature_kernel_matrix<double>(fq, feature_map<double>(FeatureMap::Taylor, k, empty));
            const Mat want = truncated_softmax_kernel_matrix<double>(q, k);
            IDATTN_CHECK_CMP(tol_check("taylor", want, got, 1e-12));
            BOOST_TEST(xt::amin(want)() >= 0.5);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_2_stab)

// eq:2.stab: the scaled features times exp(c) are the literal features, for every map,
// wherever the literal features are finite; the scaled ones are bounded by R^(-1/2).
BOOST_AUTO_TEST_CASE(scaled_features_times_scale_equal_features) {
    IDATTN_SEEDED(rng);
    const std::size_t d = 59, m = 23;
    const Mat x = rng.normal<2>({97, d});
    for (auto map : {FeatureMap::Rff, FeatureMap::Positive, FeatureMap::Orthogonal, FeatureMap::Taylor}) {
        BOOST_TEST_CONTEXT("map " << feature_map_name(map)) {
            const Mat w = draw_for(map, m, d, rng.engine()());
            const auto sf = scaled_feature_map<double>(map, x, w);
            const Mat back = sf.f * xt::exp(as_column(sf.c));
            IDATTN_CHECK_CMP(tol_check("exp(c) f", feature_map<double>(map, x, w), back, 1e-13));
            if (map != FeatureMap::Taylor)
                BOOST_TEST(xt::amax(xt::abs(sf.f))() <= 1.0 / std::sqrt(double(m)) * (1 + 1e-15));
        }
    }
}

// eq:2.stab eq:P4: a per-query constant cancels, and one constant for all keys cancels:
// linear attention on (f_q, exp(c_n - max c) f_k) equals it on the literal features.
BOOST_AUTO_TEST_CASE(query_and_sequence_constants_cancel) {
    IDATTN_SEEDED(rng);
    const std::size_t d = 64, m = 40;
    const Mat q = rng.normal<2>({65, d}), k = rng.normal<2>({97, d}), v = rng.normal<2>({97, d});
    for (auto map : {FeatureMap::Positive, FeatureMap::Orthogonal}) {
        const Mat w = draw_for(map, m, d, rng.engine()());
        const auto sq = scaled_feature_map<double>(map, q, w), sk = scaled_feature_map<double>(map, k, w);
        for (bool causal : {false, true}) {
            BOOST_TEST_CONTEXT("map " << feature_map_name(map) << ", causal " << causal) {
                const Mat want = linear_attention_quadratic<double>(feature_map<double>(map, q, w),
                                                                    feature_map<double>(map, k, w), v, causal);
                IDATTN_CHECK_CMP(tol_check("stabilised", want,
                                           linear_attention_quadratic<double>(sq.f, sequence_stabilised(sk), v, causal),
                                           1e-12));
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_2_stream)

// eq:2.stream: the streaming stabiliser (running maximum of the key constants, sums
// rescaled by exp(m - m') when it grows) equals the unstabilised recurrence where that
// is finite, for every map, causal and not.
BOOST_AUTO_TEST_CASE(streaming_stabiliser_equals_unstabilised) {
    IDATTN_SEEDED(rng);
    const std::size_t d = 16, m = 32;
    const Mat q = rng.normal<2>({63, d}, 0.7), k = rng.normal<2>({97, d}, 0.7), v = rng.normal<2>({97, d});
    for (auto map : {FeatureMap::Rff, FeatureMap::Positive, FeatureMap::Orthogonal, FeatureMap::Taylor}) {
        const Mat w = draw_for(map, m, d, rng.engine()());
        for (bool causal : {false, true}) {
            BOOST_TEST_CONTEXT("map " << feature_map_name(map) << ", causal " << causal) {
                const Mat plain = linear_attention_recurrent<double>(feature_map<double>(map, q, w),
                                                                     feature_map<double>(map, k, w), v, causal);
                const Mat stable = linear_attention_recurrent_stable<double>(
                    scaled_feature_map<double>(map, q, w), scaled_feature_map<double>(map, k, w), v, causal);
                BOOST_TEST_REQUIRE(idattn::test::count_non_finite(plain.data(), plain.size()) == 0u);
                // rff denominators can come close to zero (see eq:2.1): compare at 1e-10 there.
                IDATTN_CHECK_CMP(tol_check("stream", plain, stable, map == FeatureMap::Rff ? 1e-10 : 1e-12));
            }
        }
    }
}

// eq:2.stream eq:2.stab: inputs of norm ~100 overflow the rff exponent exp(|x|^2/2s) and
// underflow every positive feature (exponents below -745): the unstabilised outputs are
// inf/nan, the stabilised ones finite. For the positive map, non-causal, the streaming form
// equals the quadratic form with one constant per sequence (causal, a prefix may lie entirely
// ~1e3 below the sequence's largest constant and underflow: the reason to stream).
BOOST_AUTO_TEST_CASE(large_norms_stay_finite) {
    IDATTN_SEEDED(rng);
    const std::size_t d = 16, m = 32, n = 65;
    const Mat q = rng.normal<2>({n, d}, 25.0), k = rng.normal<2>({n, d}, 25.0), v = rng.normal<2>({n, d});
    for (auto map : {FeatureMap::Rff, FeatureMap::Positive}) {
        const Mat w = draw_for(map, m, d, rng.engine()());
        const auto sq = scaled_feature_map<double>(map, q, w), sk = scaled_feature_map<double>(map, k, w);
        BOOST_TEST_MESSAGE(feature_map_name(map) << ": key log-scales from " << xt::amin(sk.c)() << " to "
                                                 << xt::amax(sk.c)());
        for (bool causal : {false, true}) {
            BOOST_TEST_CONTEXT("map " << feature_map_name(map) << ", causal " << causal) {
                const Mat plain = linear_attention_recurrent<double>(feature_map<double>(map, q, w),
                                                                     feature_map<double>(map, k, w), v, causal);
                const Mat stable = linear_attention_recurrent_stable<double>(sq, sk, v, causal);
                const auto bad = idattn::test::count_non_finite(plain.data(), plain.size());
                BOOST_TEST_MESSAGE("unstabilised: " << bad << " of " << plain.size() << " outputs non-finite");
                BOOST_TEST(bad > 0u);
                BOOST_TEST(idattn::test::count_non_finite(stable.data(), stable.size()) == 0u);
                if (map == FeatureMap::Positive && !causal)
                    IDATTN_CHECK_CMP(tol_check("stream vs sequence constant", stable,
                                               linear_attention_quadratic<double>(sq.f, sequence_stabilised(sk), v, causal),
                                               1e-10));
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
