// The tolerance rule itself (api/common/compare.hpp): deterministic cases.
#include <boost/test/unit_test.hpp>

#include <cfloat>
#include <cmath>
#include <vector>

#include "api/common/compare.hpp"

BOOST_AUTO_TEST_SUITE(compare_rule)

BOOST_AUTO_TEST_CASE(threshold_is_twice_baseline_plus_floor) {
    const std::vector<double> ref{3, 4};  // |ref| = 5
    const std::vector<double> base{3, 4.05};  // rel err 0.01
    const std::vector<double> good{3, 4.09};  // 0.018 <= 0.02 + floor
    const std::vector<double> bad{3, 4.11};   // 0.022 > 0.02 + floor
    const auto g = idattn::compare_to_reference(ref.data(), good.data(), base.data(), {2});
    BOOST_TEST(g.baseline_rel_rms == 0.01, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(g.threshold == 0.02 + 4 * FLT_EPSILON, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(g.pass);
    BOOST_TEST(g.fraction_used == 0.018 / g.threshold, boost::test_tools::tolerance(1e-9));
    const auto b = idattn::compare_to_reference(ref.data(), bad.data(), base.data(), {2});
    BOOST_TEST(!b.pass);
    BOOST_TEST((b.worst_multi_index == std::vector<std::size_t>{1}));
    BOOST_TEST(b.report().find("FAIL") == 0u);
}

BOOST_AUTO_TEST_CASE(zero_baseline_error_leaves_the_floor) {
    const std::vector<double> ref{1, 2, 3}, exact{1, 2, 3};
    const std::vector<double> tiny{1, 2, 3 * (1 + FLT_EPSILON)};
    const auto c = idattn::compare_to_reference(ref.data(), tiny.data(), exact.data(), {3});
    BOOST_TEST(c.baseline_rel_rms == 0.0);
    BOOST_TEST(c.pass, c.report());
}

BOOST_AUTO_TEST_CASE(non_finite_candidate_always_fails) {
    const std::vector<double> ref{1, 2}, base{1, 2.1}, cand{1, NAN};
    const auto c = idattn::compare_to_reference(ref.data(), cand.data(), base.data(), {1, 2});
    BOOST_TEST(!c.pass);
    BOOST_TEST(c.non_finite == 1u);
    BOOST_TEST((c.worst_multi_index == std::vector<std::size_t>{0, 1}));
    BOOST_TEST(c.report().find("NON-FINITE") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(fixed_tolerance) {
    const std::vector<double> ref{1, 1}, cand{1, 1 + 1e-13};
    BOOST_TEST(idattn::compare_with_tolerance(ref.data(), cand.data(), {2}, 1e-12).pass);
    BOOST_TEST(!idattn::compare_with_tolerance(ref.data(), cand.data(), {2}, 1e-14).pass);
}

BOOST_AUTO_TEST_SUITE_END()
