// Chapter 4, reference tests of the damped Fourier basis (eq:4.6): interdomain
// attention over it equals exponentially decayed linear attention for every
// position t < L (1e-12), and beyond L the aliasing error obeys the bound
// derived in the chapter. Deterministic. Labels refer to
// chapters/04-ssm-basis-recurrence.md.
#include <boost/test/unit_test.hpp>

#include <cmath>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "ref/04-ssm-basis-recurrence/ssm.hpp"
#include "tests/common/testutil.hpp"

using namespace idattn::ref;
using Mat = xt::xtensor<double, 2>;
using idattn::test::tol_check;

namespace {

Mat column(const xt::xtensor<double, 1>& x) { return xt::view(x, xt::all(), xt::newaxis()); }

// Rows [r0, r1) of a matrix.
Mat rows(const Mat& a, std::size_t r0, std::size_t r1) { return xt::view(a, xt::range(r0, r1), xt::all()); }

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_4_6)

// eq:4.6 eq:4.readout eq:3.5: with Lambda_m = exp(-alpha + i 2 pi m / L), B_m = 1/sqrt(L),
// M = L, the Hermitian readout (numerator and denominator) equals decayed linear attention
// with weights xi(q)^T xi(k) exp(-2 alpha tau) at every position t < L (1e-12), for every
// form of the states, alpha = 0 (the plain DFT) included, L even and odd.
BOOST_AUTO_TEST_CASE(damped_fourier_equals_decayed_linear_attention_before_L) {
    IDATTN_SEEDED(rng);
    for (std::size_t L : {std::size_t{1}, std::size_t{17}, std::size_t{64}}) {
        for (double alpha : {0.0, 0.01, 0.2}) {
            BOOST_TEST_CONTEXT("L = " << L << ", alpha = " << alpha) {
                const std::size_t R = 6, d = 4, N = L;  // positions 0..L-1, all < L
                const DiagonalSsm<double> s = damped_fourier(L, alpha);
                const Mat fq = xt::exp(rng.normal<2>({N, R}, 0.3)), fk = xt::exp(rng.normal<2>({N, R}, 0.3));
                const Mat v = rng.normal<2>({N, d});
                const Readout<double> ref = decayed_linear_attention_parts(fq, fk, v, alpha);
                for (SsmForm f : {SsmForm::Recurrence, SsmForm::Explicit, SsmForm::Fft, SsmForm::Chunked}) {
                    const Readout<double> p = ssm_attention_parts(f, s, fq, fk, v, 5);
                    IDATTN_CHECK_CMP(tol_check("numerator " + ssm_form_name(f), ref.num, p.num, 1e-12));
                    IDATTN_CHECK_CMP(tol_check("denominator " + ssm_form_name(f), column(ref.den), column(p.den), 1e-12));
                }
            }
        }
    }
}

// eq:4.6 eq:4.alias: beyond L the basis aliases: positions n and n' = n + jL (j != 0) are
// no longer separated. For every position t >= L the numerator and denominator differ
// from decayed linear attention by at most
//   2 e^{-alpha L} / ((1 - e^{-2 alpha}) (1 - e^{-alpha L})) max|xi(q).xi(k)| max|v|
// (max|v| -> 1 for the denominator), while t < L stays exact; with alpha = 0 the
// aliasing error is of the order of the output itself.
BOOST_AUTO_TEST_CASE(aliasing_beyond_L_is_bounded_by_the_damping) {
    IDATTN_SEEDED(rng);
    const std::size_t L = 32, R = 5, d = 3, N = 3 * L + 7;
    const Mat fq = xt::exp(rng.normal<2>({N, R}, 0.3)), fk = xt::exp(rng.normal<2>({N, R}, 0.3));
    const Mat v = rng.normal<2>({N, d});
    double max_k = 0;
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t n = 0; n < N; ++n) {
            double k = 0;
            for (std::size_t r = 0; r < R; ++r) k += fq(i, r) * fk(n, r);
            max_k = std::max(max_k, std::abs(k));
        }
    const double max_v = xt::amax(xt::abs(v))();
    for (double alpha : {0.02, 0.1, 0.3}) {
        BOOST_TEST_CONTEXT("alpha = " << alpha) {
            const DiagonalSsm<double> s = damped_fourier(L, alpha);
            const Readout<double> ref = decayed_linear_attention_parts(fq, fk, v, alpha);
            const Readout<double> p = ssm_attention_parts(SsmForm::Recurrence, s, fq, fk, v);
            // t < L: exact.
            IDATTN_CHECK_CMP(tol_check("t < L numerator", rows(ref.num, 0, L), rows(p.num, 0, L), 1e-12));
            // t >= L: the bound.
            const double ea = std::exp(-alpha * double(L));
            const double sum = 2 * ea / ((1 - std::exp(-2 * alpha)) * (1 - ea));
            double worst_num = 0, worst_den = 0;
            for (std::size_t t = L; t < N; ++t) {
                for (std::size_t c = 0; c < d; ++c) worst_num = std::max(worst_num, std::abs(p.num(t, c) - ref.num(t, c)));
                worst_den = std::max(worst_den, std::abs(p.den(t) - ref.den(t)));
            }
            BOOST_TEST_MESSAGE("alpha " << alpha << ": aliasing |d num| " << worst_num << " <= "
                                        << sum * max_k * max_v << ", |d den| " << worst_den << " <= " << sum * max_k
                                        << " (e^{-alpha L} = " << ea << ")");
            BOOST_TEST(worst_num <= sum * max_k * max_v);
            BOOST_TEST(worst_den <= sum * max_k);
            BOOST_TEST(worst_den > 0.0);  // aliasing is real, not an artefact of the bound
        }
    }
    // alpha = 0: no damping, the aliasing error is as large as the signal.
    const Readout<double> ref0 = decayed_linear_attention_parts(fq, fk, v, 0.0);
    const Readout<double> p0 = ssm_attention_parts(SsmForm::Fft, damped_fourier(L, 0.0), fq, fk, v);
    double rel = 0;
    for (std::size_t t = L; t < N; ++t) rel = std::max(rel, std::abs(p0.den(t) - ref0.den(t)) / ref0.den(t));
    BOOST_TEST_MESSAGE("alpha 0: worst relative denominator error beyond L " << rel);
    BOOST_TEST(rel > 0.1);
}

BOOST_AUTO_TEST_SUITE_END()
