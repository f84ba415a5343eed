// Chapter 4, the bridge from HiPPO-LegS to S4D: the LegS matrices with a fixed
// step in t are a time-invariant system whose impulse response is the
// exponentially warped Legendre basis; their normal part has the spectrum
// -1/2 +- i omega that S4D-Inv approximates, with S4D's state size 2M and not
// with M. Deterministic. Labels refer to chapters/04-ssm-basis-recurrence.md.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numbers>

#include "ref/04-ssm-basis-recurrence/ssm.hpp"

using namespace idattn::ref;

BOOST_AUTO_TEST_SUITE(bridge)

// exp(-A t) B = sqrt(2n+1) P_n(2 e^-t - 1) e^-t for every n, t.     eq:4.ti-legs
BOOST_AUTO_TEST_CASE(time_invariant_legs_impulse_response_is_the_warped_legendre_basis) {
    for (std::size_t M : {std::size_t{1}, std::size_t{4}, std::size_t{12}})
        for (double t : {0.0, 0.05, 0.5, 1.0, 3.0, 8.0}) {
            const auto x = legs_ti_impulse(M, t), w = legs_warped_basis(M, t);
            for (std::size_t n = 0; n < M; ++n)
                BOOST_TEST(std::abs(x(n) - w(n)) <= 1e-11 * (1 + std::abs(w(n))), "M = " << M << ", t = " << t << ", n = " << n);
        }
}

// The normal part's frequencies against S4D-Inv: with S4D's state size N = 2M the largest
// frequency is within 6 % (N = 16) and 2 % (N = 64); read with M in place of N (the
// literal formula) it is 4 times too small and half the frequencies are negative.     eq:4.normal eq:4.s4d-inv
BOOST_AUTO_TEST_CASE(s4d_inv_tracks_the_normal_part_with_state_size_2m) {
    for (const auto& [N, within] : {std::pair{std::size_t{16}, 0.06}, std::pair{std::size_t{64}, 0.02}}) {
        const std::size_t M = N / 2;
        const auto omega = legs_normal_frequencies(N);
        const auto a = s4d_a(S4dInit::Inv, M);
        BOOST_TEST(omega.size() == M);
        for (std::size_t i = 0; i + 1 < M; ++i) BOOST_TEST(omega(i) >= omega(i + 1));
        BOOST_TEST(std::abs(a(0).imag() - omega(0)) <= within * omega(0), "N = " << N << ": " << a(0).imag() << " vs " << omega(0));
        const double literal_top = (double(M) / std::numbers::pi) * (double(M) - 1);
        BOOST_TEST(literal_top < omega(0) / 3.5, "N = " << N);
        const double literal_last = (double(M) / std::numbers::pi) * (double(M) / (2.0 * (M - 1) + 1) - 1);
        BOOST_TEST(literal_last < 0.0);
    }
}

BOOST_AUTO_TEST_SUITE_END()
