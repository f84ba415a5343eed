// Chapter 2, reference tests of linear attention (P4): the literal estimator,
// the three forms of eq:2.5 against each other (deterministic, 1e-12), and the
// denominator of (P4) with random Fourier features crossing zero.
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

// eq:P4 written out: o_i = sum_n (xi(q_i).xi(k_n)) v_n / sum_n' xi(q_i).xi(k_n'), long double.
Mat literal_p4(const Mat& fq, const Mat& fk, const Mat& v, bool causal) {
    const std::size_t nq = fq.shape(0), n = fk.shape(0), dv = v.shape(1);
    Mat o = xt::zeros<double>({nq, dv});
    for (std::size_t i = 0; i < nq; ++i) {
        long double den = 0;
        std::vector<long double> num(dv, 0);
        for (std::size_t j = 0; j < n; ++j) {
            if (causal && j > i + (n - nq)) continue;
            long double a = 0;
            for (std::size_t r = 0; r < fq.shape(1); ++r) a += static_cast<long double>(fq(i, r)) * fk(j, r);
            den += a;
            for (std::size_t c = 0; c < dv; ++c) num[c] += a * v(j, c);
        }
        for (std::size_t c = 0; c < dv; ++c) o(i, c) = static_cast<double>(num[c] / den);
    }
    return o;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_P4)

// eq:P4 eq:P3: the masked quadratic form equals the literal estimator on the same features.
BOOST_AUTO_TEST_CASE(quadratic_equals_literal_estimator) {
    IDATTN_SEEDED(rng);
    for (auto [nq, n] : {std::pair<std::size_t, std::size_t>{1, 1}, {63, 63}, {33, 97}, {64, 65}}) {
        for (bool causal : {false, true}) {
            BOOST_TEST_CONTEXT("Nq = " << nq << ", N = " << n << ", causal = " << causal) {
                const std::size_t d = 59;
                const Mat q = rng.normal<2>({nq, d}), k = rng.normal<2>({n, d}), v = rng.normal<2>({n, d});
                const Mat w = draw_gaussian(48, d, rng.engine()());
                const Mat fq = feature_map<double>(FeatureMap::Positive, q, w);
                const Mat fk = feature_map<double>(FeatureMap::Positive, k, w);
                IDATTN_CHECK_CMP(tol_check("P4", literal_p4(fq, fk, v, causal),
                                           linear_attention_quadratic<double>(fq, fk, v, causal), 1e-13));
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_2_5)

// eq:2.5 eq:2.chunk eq:2.recurrence: the masked quadratic form, the recurrence on (S, z)
// and the chunked form agree to 1e-12, for chunk sizes 1, non-dividing, dividing and >= N,
// causal and not, Nq = N and Nq < N, with positive, orthogonal and Taylor features.
BOOST_AUTO_TEST_CASE(three_forms_agree) {
    IDATTN_SEEDED(rng);
    struct Case {
        FeatureMap map;
        std::size_t nq, n, d, m;
    };
    const std::vector<Case> cases{{FeatureMap::Positive, 1, 1, 59, 32},    {FeatureMap::Positive, 63, 63, 59, 32},
                                  {FeatureMap::Positive, 64, 64, 64, 64},  {FeatureMap::Orthogonal, 65, 65, 100, 40},
                                  {FeatureMap::Orthogonal, 40, 97, 59, 70}, {FeatureMap::Taylor, 50, 65, 8, 0}};
    for (const auto& c : cases) {
        const Mat q = rng.normal<2>({c.nq, c.d}), k = rng.normal<2>({c.n, c.d}), v = rng.normal<2>({c.n, c.d});
        const Mat w = draw_for(c.map, c.m, c.d, rng.engine()());
        const Mat fq = feature_map<double>(c.map, q, w), fk = feature_map<double>(c.map, k, w);
        for (bool causal : {false, true}) {
            const Mat quad = linear_attention_quadratic<double>(fq, fk, v, causal);
            BOOST_TEST_CONTEXT("map " << feature_map_name(c.map) << ", Nq = " << c.nq << ", N = " << c.n
                                      << ", d = " << c.d << ", causal = " << causal) {
                IDATTN_CHECK_CMP(tol_check("recurrent", quad, linear_attention_recurrent<double>(fq, fk, v, causal), 1e-12));
                for (std::size_t chunk : {1ul, 7ul, 16ul, 64ul, 1000ul}) {
                    const auto cmp = tol_check("chunked", quad,
                                               linear_attention_chunked<double>(fq, fk, v, causal, chunk), 1e-12);
                    BOOST_TEST(cmp.pass, "chunk " << chunk << ": " << cmp.report());
                }
            }
        }
    }
}

// eq:2.recurrence eq:1.causal: causal row i of the recurrence equals non-causal linear
// attention over the visible prefix (the state after key i holds exactly the prefix sums).
BOOST_AUTO_TEST_CASE(causal_row_reads_the_prefix_state) {
    IDATTN_SEEDED(rng);
    const std::size_t nq = 20, n = 33, d = 59;
    const Mat q = rng.normal<2>({nq, d}), k = rng.normal<2>({n, d}), v = rng.normal<2>({n, d});
    const Mat w = draw_gaussian(16, d, rng.engine()());
    const Mat fq = feature_map<double>(FeatureMap::Positive, q, w), fk = feature_map<double>(FeatureMap::Positive, k, w);
    const Mat o = linear_attention_recurrent<double>(fq, fk, v, true);
    for (std::size_t i = 0; i < nq; ++i) {
        const std::size_t visible = i + (n - nq) + 1;
        const Mat want = linear_attention_quadratic<double>(xt::view(fq, xt::range(i, i + 1), xt::all()),
                                                            xt::view(fk, xt::range(0, visible), xt::all()),
                                                            xt::view(v, xt::range(0, visible), xt::all()), false);
        const Mat got = xt::view(o, xt::range(i, i + 1), xt::all());
        const auto c = tol_check("row", want, got, 1e-12);
        BOOST_TEST_REQUIRE(c.pass, "row " << i << ": " << c.report());
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_2_1_denominator)

// eq:2.1 eq:P4: random Fourier features can be negative, so the denominator
// sum_n xi(q_i).xi(k_n) of (P4) can reach zero or below. Search random inputs
// (R = 2 frequencies, causal rows of up to 16 keys) until a row has a denominator <= 0;
// on the same inputs positive features (eq:2.2) give only positive denominators.
BOOST_AUTO_TEST_CASE(rff_denominator_crosses_zero_positive_features_never) {
    IDATTN_SEEDED(rng);
    const std::size_t n = 16, d = 16, m = 2;
    bool found = false;
    std::size_t trials = 0;
    double min_positive_den = INFINITY;
    for (; trials < 2000 && !found; ++trials) {
        const Mat q = rng.normal<2>({n, d}), k = rng.normal<2>({n, d});
        const Mat w = draw_gaussian(m, d, rng.engine()());
        const Mat a_rff = feature_kernel_matrix<double>(feature_map<double>(FeatureMap::Rff, q, w),
                                                        feature_map<double>(FeatureMap::Rff, k, w));
        const Mat a_pos = feature_kernel_matrix<double>(feature_map<double>(FeatureMap::Positive, q, w),
                                                        feature_map<double>(FeatureMap::Positive, k, w));
        for (std::size_t i = 0; i < n; ++i) {
            double den_rff = 0, den_pos = 0;
            for (std::size_t j = 0; j <= i; ++j) {  // causal row i
                den_rff += a_rff(i, j);
                den_pos += a_pos(i, j);
            }
            min_positive_den = std::min(min_positive_den, den_pos);
            BOOST_TEST_REQUIRE(den_pos > 0.0, "positive features gave denominator " << den_pos << " at row " << i);
            if (den_rff <= 0 && !found) {
                found = true;
                BOOST_TEST_MESSAGE("trial " << trials + 1 << ", row " << i << ": rff denominator " << den_rff
                                            << " (positive features on the same inputs: " << den_pos << ")");
            }
        }
    }
    BOOST_TEST_MESSAGE("smallest positive-feature denominator seen: " << min_positive_den);
    BOOST_TEST(found, "no rff denominator <= 0 in " << trials << " trials");
}

BOOST_AUTO_TEST_SUITE_END()
