// Chapter 2, statistical tests: the claims about *distributions* of the random
// feature maps (unbiasedness, variance, Monte Carlo rate), kept apart from the
// deterministic tests. Every test here uses FIXED seeds (not IDATTN_SEEDED), so
// that it is reproducible and cannot be flaky: the numbers printed are the same
// on every run of the same build. The bands are stated per test.
// Labels refer to chapters/02-kernel-feature-map.md.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>

#include <xtensor/xmath.hpp>

#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "tests/common/testutil.hpp"

using namespace idattn::ref;
using Mat = xt::xtensor<double, 2>;

namespace {

constexpr std::uint64_t kFixedSeed = 20260526;  // fixed on purpose: see the file comment

Mat fixed_normal(std::size_t n, std::size_t d, double scale, std::uint64_t seed) {
    std::mt19937_64 eng(seed);
    std::normal_distribution<double> nd(0.0, scale);
    Mat x({n, d});
    for (auto& e : x) e = nd(eng);
    return x;
}

struct Moments {
    double mean = 0, var = 0;  // sample mean, unbiased sample variance
};

Moments moments(const std::vector<double>& xs) {
    Moments m;
    for (double x : xs) m.mean += x;
    m.mean /= double(xs.size());
    for (double x : xs) m.var += (x - m.mean) * (x - m.mean);
    m.var /= double(xs.size() - 1);
    return m;
}

// 400 independent draws of W (R = 4 frequencies, d = 8) at three fixed (q, k) pairs:
// the mean of xi(q).xi(k) must lie within 5 standard errors (from the sample variance)
// of the exact kernel exp(q.k/sqrt d). Prints the z-scores.
void check_unbiased(FeatureMap map) {
    const std::size_t d = 8, m = 4, draws = 400;
    const Mat q = fixed_normal(3, d, 0.5, kFixedSeed), k = fixed_normal(3, d, 0.5, kFixedSeed + 1);
    const Mat exact = softmax_kernel_matrix<double>(q, k);
    std::vector<std::vector<double>> est(3);
    for (std::size_t t = 0; t < draws; ++t) {
        const Mat w = draw_for(map, m, d, kFixedSeed + 1000 + t);
        const Mat a = feature_kernel_matrix<double>(feature_map<double>(map, q, w), feature_map<double>(map, k, w));
        for (std::size_t p = 0; p < 3; ++p) est[p].push_back(a(p, p));
    }
    for (std::size_t p = 0; p < 3; ++p) {
        const auto mo = moments(est[p]);
        const double se = std::sqrt(mo.var / double(draws));
        const double z = (mo.mean - exact(p, p)) / se;
        BOOST_TEST_MESSAGE(feature_map_name(map) << " pair " << p << ": K = " << exact(p, p) << ", mean of "
                                                 << draws << " draws " << mo.mean << ", std. error " << se
                                                 << ", z = " << z);
        BOOST_TEST(std::fabs(z) < 5.0, feature_map_name(map) << " pair " << p << ": z = " << z);
    }
}

// Mean over draws of the mean squared error of the 16 x 16 kernel matrix (d = 8,
// R = 8 = one full orthogonal block, inputs of scale 0.3).
double kernel_mse(FeatureMap map, bool orthogonal_draw, std::size_t draws) {
    const std::size_t d = 8, m = 8;
    const Mat q = fixed_normal(16, d, 0.3, kFixedSeed + 2), k = fixed_normal(16, d, 0.3, kFixedSeed + 3);
    const Mat exact = softmax_kernel_matrix<double>(q, k);
    double total = 0;
    for (std::size_t t = 0; t < draws; ++t) {
        const std::uint64_t seed = kFixedSeed + 5000 + t;
        const Mat w = orthogonal_draw ? draw_orthogonal(m, d, seed) : draw_gaussian(m, d, seed);
        const Mat a = feature_kernel_matrix<double>(feature_map<double>(map, q, w), feature_map<double>(map, k, w));
        total += xt::mean(xt::square(a - exact))();
    }
    return total / double(draws);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(statistical)

// eq:P5 eq:2.1: random Fourier features of the Gaussian factor are unbiased (5 standard errors).
BOOST_AUTO_TEST_CASE(rff_is_unbiased) { check_unbiased(FeatureMap::Rff); }

// eq:2.2: positive random features are unbiased (5 standard errors).
BOOST_AUTO_TEST_CASE(positive_is_unbiased) { check_unbiased(FeatureMap::Positive); }

// eq:2.3: positive features on orthogonal draws are unbiased (5 standard errors).
BOOST_AUTO_TEST_CASE(orthogonal_is_unbiased) { check_unbiased(FeatureMap::Orthogonal); }

// eq:2.3: at equal R, orthogonal draws give a lower mean squared kernel error than iid
// draws (3000 draws each). Margins: ratio < 0.95 for positive features (observed ~0.85
// in numpy experiments with other seeds), < 0.5 for rff on the same draws (observed ~0.25).
BOOST_AUTO_TEST_CASE(orthogonal_has_lower_variance_than_iid) {
    const std::size_t draws = 3000;
    const double pos_iid = kernel_mse(FeatureMap::Positive, false, draws);
    const double pos_orth = kernel_mse(FeatureMap::Positive, true, draws);
    const double rff_iid = kernel_mse(FeatureMap::Rff, false, draws);
    const double rff_orth = kernel_mse(FeatureMap::Rff, true, draws);
    BOOST_TEST_MESSAGE("positive: MSE iid " << pos_iid << ", orthogonal " << pos_orth << ", ratio " << pos_orth / pos_iid);
    BOOST_TEST_MESSAGE("rff:      MSE iid " << rff_iid << ", orthogonal " << rff_orth << ", ratio " << rff_orth / rff_iid);
    BOOST_TEST(pos_orth / pos_iid < 0.95);
    BOOST_TEST(rff_orth / rff_iid < 0.5);
}

// eq:P3: the relative error of F_q F_k^T against the kernel falls like R^(-1/2) (Monte
// Carlo). Least-squares slope of log(mean error over 8 draws) against log R for
// R = 16 .. 4096, d = 16, N = 32, inputs of scale 0.5: must lie in [-0.65, -0.35].
BOOST_AUTO_TEST_CASE(kernel_error_falls_like_inverse_sqrt_R) {
    const std::size_t d = 16, n = 32;
    const Mat q = fixed_normal(n, d, 0.5, kFixedSeed + 4), k = fixed_normal(n, d, 0.5, kFixedSeed + 5);
    const Mat exact = softmax_kernel_matrix<double>(q, k);
    const double exact_norm = std::sqrt(xt::sum(xt::square(exact))());
    for (auto map : {FeatureMap::Rff, FeatureMap::Positive, FeatureMap::Orthogonal}) {
        std::vector<double> lx, ly;
        for (std::size_t m = 16; m <= 4096; m *= 4) {
            double err = 0;
            for (std::size_t t = 0; t < 8; ++t) {
                const Mat w = draw_for(map, m, d, kFixedSeed + 9000 + 100 * m + t);
                const Mat a = feature_kernel_matrix<double>(feature_map<double>(map, q, w), feature_map<double>(map, k, w));
                err += std::sqrt(xt::sum(xt::square(a - exact))()) / exact_norm / 8.0;
            }
            lx.push_back(std::log(double(m)));
            ly.push_back(std::log(err));
        }
        double mx = 0, my = 0;
        for (std::size_t i = 0; i < lx.size(); ++i) mx += lx[i] / lx.size(), my += ly[i] / ly.size();
        double sxy = 0, sxx = 0;
        for (std::size_t i = 0; i < lx.size(); ++i) sxy += (lx[i] - mx) * (ly[i] - my), sxx += (lx[i] - mx) * (lx[i] - mx);
        const double slope = sxy / sxx;
        BOOST_TEST_MESSAGE(feature_map_name(map) << ": error-vs-R slope " << slope << " (Monte Carlo: -0.5)");
        BOOST_TEST((slope > -0.65 && slope < -0.35), feature_map_name(map) << ": slope " << slope);
    }
}

BOOST_AUTO_TEST_SUITE_END()
