// Test utilities shared by every chapter: seeded random inputs (seed printed,
// reproducible with IDATTN_SEED=...), the specification's ragged sizes, and
// the tolerance rule as a Boost.Test check that prints its numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "api/common/compare.hpp"

namespace idattn::test {

// The ragged sizes of the project's tolerance convention (README.md, "Conventions").
inline const std::vector<std::size_t> kRaggedN{1, 63, 64, 65, 97, 1025};
inline const std::vector<std::size_t> kRaggedD{59, 64, 100};

// A generator seeded freshly per test (from std::random_device), or from the
// environment variable IDATTN_SEED to reproduce a failure. The seed is logged
// with BOOST_TEST_MESSAGE and attached to every failing check through
// BOOST_TEST_INFO_SCOPE by the IDATTN_SEEDED macro.
class Rng {
public:
    explicit Rng(const char* test_name);
    std::uint64_t seed() const { return seed_; }
    std::mt19937_64& engine() { return eng_; }

    // Standard normal entries times `scale`.
    template <std::size_t R>
    xt::xtensor<double, R> normal(const std::array<std::size_t, R>& shape, double scale = 1.0);
    double uniform(double lo, double hi);

private:
    std::uint64_t seed_;
    std::mt19937_64 eng_;
};

extern template xt::xtensor<double, 2> Rng::normal<2>(const std::array<std::size_t, 2>&, double);
extern template xt::xtensor<double, 4> Rng::normal<4>(const std::array<std::size_t, 4>&, double);

// Round every entry to float32 (the input a float32 kernel actually sees).
template <std::size_t R>
xt::xtensor<float, R> to_f32(const xt::xtensor<double, R>& x) { return xt::xtensor<float, R>(xt::cast<float>(x)); }
template <std::size_t R>
xt::xtensor<double, R> to_f64(const xt::xtensor<float, R>& x) { return xt::xtensor<double, R>(xt::cast<double>(x)); }

// Counts NaN/Inf entries.
std::size_t count_non_finite(const double* x, std::size_t n);
std::size_t count_non_finite(const float* x, std::size_t n);

// The pass rule: fast vs the float64 reference, with naive32 as the baseline.
// Logs the report line and returns it for BOOST_TEST.
Comparison rule_check(const std::string& label, const xt::xtensor<double, 4>& ref,
                      const xt::xtensor<double, 4>& fast, const xt::xtensor<double, 4>& naive32);
// A float64 identity to a fixed relative tolerance.
template <std::size_t R>
Comparison tol_check(const std::string& label, const xt::xtensor<double, R>& ref,
                     const xt::xtensor<double, R>& candidate, double tol);
extern template Comparison tol_check<2>(const std::string&, const xt::xtensor<double, 2>&, const xt::xtensor<double, 2>&, double);
extern template Comparison tol_check<4>(const std::string&, const xt::xtensor<double, 4>&, const xt::xtensor<double, 4>&, double);
extern template Comparison tol_check<1>(const std::string&, const xt::xtensor<double, 1>&, const xt::xtensor<double, 1>&, double);
extern template Comparison tol_check<3>(const std::string&, const xt::xtensor<double, 3>&, const xt::xtensor<double, 3>&, double);

}  // namespace idattn::test

// Use at the top of a test case: `IDATTN_SEEDED(rng);` declares `rng` and
// attaches "seed = ..., rerun with IDATTN_SEED=..." to every check below.
#define IDATTN_SEEDED(var)                                                         \
    ::idattn::test::Rng var(::boost::unit_test::framework::current_test_case().p_name->c_str()); \
    BOOST_TEST_MESSAGE("seed " << var.seed() << " (rerun with IDATTN_SEED=" << var.seed() << ")"); \
    BOOST_TEST_INFO_SCOPE("seed " << var.seed() << " (rerun with IDATTN_SEED=" << var.seed() << ")")

// Checks a Comparison (rule_check/tol_check already logged its numbers).
#define IDATTN_CHECK_CMP(cmp)                                \
    do {                                                     \
        const ::idattn::Comparison& idattn_c_ = (cmp);       \
        BOOST_TEST(idattn_c_.pass, idattn_c_.report());      \
    } while (0)
