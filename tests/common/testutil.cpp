#include "tests/common/testutil.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>

namespace idattn::test {

Rng::Rng(const char* test_name) {
    if (const char* env = std::getenv("IDATTN_SEED")) {
        seed_ = std::strtoull(env, nullptr, 10);
    } else {
        std::random_device rd;
        seed_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    // Mix in the test name so that two tests reproduced with the same
    // IDATTN_SEED still draw different inputs.
    std::uint64_t h = 1469598103934665603ull;
    for (const char* p = test_name; *p; ++p) h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
    eng_.seed(seed_ ^ h);
}

template <std::size_t R>
xt::xtensor<double, R> Rng::normal(const std::array<std::size_t, R>& shape, double scale) {
    xt::xtensor<double, R> x(shape);
    std::normal_distribution<double> nd(0.0, 1.0);
    for (auto& e : x) e = scale * nd(eng_);
    return x;
}
template xt::xtensor<double, 2> Rng::normal<2>(const std::array<std::size_t, 2>&, double);
template xt::xtensor<double, 4> Rng::normal<4>(const std::array<std::size_t, 4>&, double);

double Rng::uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(eng_); }

std::size_t count_non_finite(const double* x, std::size_t n) {
    std::size_t c = 0;
    for (std::size_t i = 0; i < n; ++i) c += !std::isfinite(x[i]);
    return c;
}
std::size_t count_non_finite(const float* x, std::size_t n) {
    std::size_t c = 0;
    for (std::size_t i = 0; i < n; ++i) c += !std::isfinite(x[i]);
    return c;
}

Comparison rule_check(const std::string& label, const xt::xtensor<double, 4>& ref,
                      const xt::xtensor<double, 4>& fast, const xt::xtensor<double, 4>& naive32) {
    const std::vector<std::size_t> shape(ref.shape().begin(), ref.shape().end());
    BOOST_TEST_REQUIRE((fast.shape() == ref.shape()), label << ": fast output shape differs from the reference");
    BOOST_TEST_REQUIRE((naive32.shape() == ref.shape()), label << ": naive32 shape differs from the reference");
    Comparison c = compare_to_reference(ref.data(), fast.data(), naive32.data(), shape);
    BOOST_TEST_MESSAGE(label << ": " << c.report());
    return c;
}

template <std::size_t R>
Comparison tol_check(const std::string& label, const xt::xtensor<double, R>& ref,
                     const xt::xtensor<double, R>& candidate, double tol) {
    BOOST_TEST_REQUIRE((candidate.shape() == ref.shape()), label << ": shape differs from the reference");
    const std::vector<std::size_t> shape(ref.shape().begin(), ref.shape().end());
    Comparison c = compare_with_tolerance(ref.data(), candidate.data(), shape, tol);
    BOOST_TEST_MESSAGE(label << ": " << c.report());
    return c;
}
template Comparison tol_check<2>(const std::string&, const xt::xtensor<double, 2>&, const xt::xtensor<double, 2>&, double);
template Comparison tol_check<4>(const std::string&, const xt::xtensor<double, 4>&, const xt::xtensor<double, 4>&, double);
template Comparison tol_check<1>(const std::string&, const xt::xtensor<double, 1>&, const xt::xtensor<double, 1>&, double);
template Comparison tol_check<3>(const std::string&, const xt::xtensor<double, 3>&, const xt::xtensor<double, 3>&, double);

}  // namespace idattn::test
