// Chapter 4, reference tests of the S4D side (scalable layer): the parameters
// (S4D-Inv, S4D-Lin, zero-order hold, Delta), the impulse response as the
// basis, and the four forms of the states (recurrence, explicit projection,
// FFT convolution, chunked scan) and of the attention read from them, all
// equal to 1e-12 on ragged N with every kind of chunk size. Deterministic.
// Labels refer to chapters/04-ssm-basis-recurrence.md.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numbers>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "ref/04-ssm-basis-recurrence/ssm.hpp"
#include "tests/common/testutil.hpp"

using namespace idattn::ref;
using Mat = xt::xtensor<double, 2>;
using CState = xt::xtensor<std::complex<double>, 3>;
using idattn::test::kRaggedN;
using idattn::test::tol_check;

namespace {

// (N, M, C) complex -> (N, M, C, 2) real: [..., 0] real part, [..., 1] imaginary part.
xt::xtensor<double, 4> split(const CState& x) {
    xt::xtensor<double, 4> y = xt::zeros<double>({x.shape(0), x.shape(1), x.shape(2), std::size_t{2}});
    for (std::size_t i = 0; i < x.shape(0); ++i)
        for (std::size_t m = 0; m < x.shape(1); ++m)
            for (std::size_t c = 0; c < x.shape(2); ++c) {
                y(i, m, c, 0) = x(i, m, c).real();
                y(i, m, c, 1) = x(i, m, c).imag();
            }
    return y;
}

CState to_f64(const xt::xtensor<std::complex<float>, 3>& x) {
    CState y(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = std::complex<double>(x.data()[i]);
    return y;
}

std::vector<std::size_t> chunk_sizes(std::size_t N) {
    // 1 (the recurrence), non-dividing, dividing, >= N and > N.
    return {1, 7, 16, 64, 100, N, N + 3};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_P11)

// eq:4.s4d-inv eq:4.s4d-lin eq:4.zoh eq:P11 eq:4.delta: the initialisations written out,
// Lambda = exp(Delta A) with |Lambda| = exp(-Delta/2), Bbar (A) = (Lambda - 1) B, and Delta
// draws in [1e-3, 1e-1], deterministic in the seed.
BOOST_AUTO_TEST_CASE(s4d_parameters) {
    const double pi = std::numbers::pi;
    const std::size_t M = 16;
    const auto inv = s4d_a(S4dInit::Inv, M), lin = s4d_a(S4dInit::Lin, M);
    for (std::size_t n = 0; n < M; ++n) {
        BOOST_TEST(inv(n).real() == -0.5);
        // S4D's convention: M complex modes are a real state of size 2M, so every frequency is positive
        BOOST_TEST(std::abs(inv(n).imag() - (2.0 * M / pi) * (2.0 * M / (2 * n + 1) - 1)) < 1e-12);
        BOOST_TEST(inv(n).imag() > 0.0);
        BOOST_TEST(lin(n).real() == -0.5);
        BOOST_TEST(std::abs(lin(n).imag() - pi * n) < 1e-13);
    }
    for (double delta : {1e-3, 0.0371, 0.1}) {
        const DiagonalSsm<double> s = s4d(S4dInit::Inv, M, delta);
        for (std::size_t n = 0; n < M; ++n) {
            BOOST_TEST(std::abs(std::abs(s.lambda(n)) - std::exp(-delta / 2)) < 1e-15);
            BOOST_TEST(std::abs(s.lambda(n) - std::exp(delta * inv(n))) < 1e-15);
            // ZOH: Bbar A = exp(Delta A) - 1 (with B = 1).
            BOOST_TEST(std::abs(s.bbar(n) * inv(n) - (s.lambda(n) - 1.0)) < 1e-14);
        }
    }
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        const double delta = draw_delta(seed);
        BOOST_TEST((delta >= 1e-3 && delta <= 1e-1), "Delta = " << delta);
        BOOST_TEST(delta == draw_delta(seed));
    }
}

// eq:4.psi eq:P11: the basis is the impulse response: the recurrence driven by a unit
// impulse at n = 0 is psi_m(tau) = Lambda_m^tau Bbar_m.
BOOST_AUTO_TEST_CASE(impulse_response_is_the_basis) {
    for (S4dInit init : {S4dInit::Inv, S4dInit::Lin}) {
        const DiagonalSsm<double> s = s4d(init, 12, 0.05);
        const std::size_t N = 300;
        Mat z = xt::zeros<double>({N, std::size_t{1}});
        z(0, 0) = 1;
        const CState x = ssm_states_recurrence(s, z);
        const auto psi = impulse_response(s, N);
        CState p({N, std::size_t{12}, std::size_t{1}});
        for (std::size_t t = 0; t < N; ++t)
            for (std::size_t m = 0; m < 12; ++m) p(t, m, 0) = psi(t, m);
        IDATTN_CHECK_CMP(tol_check("impulse response " + s4d_init_name(init), split(p), split(x), 1e-13));
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_4_3_to_4_5)

// eq:4.3 eq:4.4 eq:4.5 eq:4.chunk eq:P11: the explicit projection with psi, the FFT
// convolution and the chunked scan equal the recurrence (1e-12 relative RMS), for N in
// {1, 63, 64, 65, 97, 1025}, S4D-Inv and S4D-Lin with a drawn Delta, and chunk sizes
// 1, 7, 16, 64, 100 (dividing and not), N and N + 3.
BOOST_AUTO_TEST_CASE(four_forms_agree_on_ragged_sizes) {
    IDATTN_SEEDED(rng);
    const std::size_t M = 16, C = 5;
    for (std::size_t N : kRaggedN) {
        for (S4dInit init : {S4dInit::Inv, S4dInit::Lin}) {
            const double delta = draw_delta(rng.engine()());
            BOOST_TEST_CONTEXT("N = " << N << ", " << s4d_init_name(init) << ", Delta = " << delta) {
                const DiagonalSsm<double> s = s4d(init, M, delta);
                const Mat z = rng.normal<2>({N, C});
                const auto rec = split(ssm_states_recurrence(s, z));
                IDATTN_CHECK_CMP(tol_check("eq:4.3 explicit", rec, split(ssm_states_explicit(s, z)), 1e-12));
                IDATTN_CHECK_CMP(tol_check("eq:4.4 fft", rec, split(ssm_states_fft(s, z)), 1e-12));
                for (std::size_t K : chunk_sizes(N)) {
                    BOOST_TEST_CONTEXT("chunk K = " << K) {
                        IDATTN_CHECK_CMP(tol_check("eq:4.5 chunked K=" + std::to_string(K), rec,
                                                   split(ssm_states_chunked(s, z, K)), 1e-12));
                    }
                }
            }
        }
    }
}

// eq:4.3 eq:4.4 eq:4.5: the same with a larger state (M = 64, the paper's size) and the
// largest Delta, where Im(Delta A) of S4D-Inv wraps around the circle many times.
BOOST_AUTO_TEST_CASE(four_forms_agree_at_the_paper_state_size) {
    IDATTN_SEEDED(rng);
    const std::size_t M = 64, C = 3, N = 97;
    for (S4dInit init : {S4dInit::Inv, S4dInit::Lin}) {
        BOOST_TEST_CONTEXT(s4d_init_name(init)) {
            const DiagonalSsm<double> s = s4d(init, M, 0.1);
            const Mat z = rng.normal<2>({N, C});
            const auto rec = split(ssm_states_recurrence(s, z));
            IDATTN_CHECK_CMP(tol_check("explicit", rec, split(ssm_states_explicit(s, z)), 1e-12));
            IDATTN_CHECK_CMP(tol_check("fft", rec, split(ssm_states_fft(s, z)), 1e-12));
            IDATTN_CHECK_CMP(tol_check("chunked K=32", rec, split(ssm_states_chunked(s, z, 32)), 1e-12));
        }
    }
}

// eq:4.readout eq:4.channels eq:3.5 eq:4.3 eq:4.4 eq:4.5: causal interdomain attention
// over the S4D basis read from each of the four forms agrees to 1e-12 (Nq = N and Nq < N).
BOOST_AUTO_TEST_CASE(attention_from_the_four_forms_agrees) {
    IDATTN_SEEDED(rng);
    struct Case {
        std::size_t nq, n, M, R, d, K;
    };
    for (const Case& c : {Case{1, 1, 4, 3, 2, 1}, Case{63, 63, 16, 8, 5, 7}, Case{30, 97, 16, 6, 4, 64},
                          Case{65, 65, 8, 4, 3, 100}}) {
        for (S4dInit init : {S4dInit::Inv, S4dInit::Lin}) {
            const double delta = draw_delta(rng.engine()());
            BOOST_TEST_CONTEXT("Nq = " << c.nq << ", N = " << c.n << ", M = " << c.M << ", K = " << c.K << ", "
                                       << s4d_init_name(init) << ", Delta = " << delta) {
                const DiagonalSsm<double> s = s4d(init, c.M, delta);
                const Mat fq = xt::exp(rng.normal<2>({c.nq, c.R}, 0.3));
                const Mat fk = xt::exp(rng.normal<2>({c.n, c.R}, 0.3));
                const Mat v = rng.normal<2>({c.n, c.d});
                const Readout<double> rec = ssm_attention_parts(SsmForm::Recurrence, s, fq, fk, v);
                for (SsmForm f : {SsmForm::Explicit, SsmForm::Fft, SsmForm::Chunked}) {
                    const Readout<double> other = ssm_attention_parts(f, s, fq, fk, v, c.K);
                    IDATTN_CHECK_CMP(tol_check("numerator " + ssm_form_name(f), rec.num, other.num, 1e-12));
                    const Mat den_r = xt::view(rec.den, xt::all(), xt::newaxis());
                    const Mat den_o = xt::view(other.den, xt::all(), xt::newaxis());
                    IDATTN_CHECK_CMP(tol_check("denominator " + ssm_form_name(f), den_r, den_o, 1e-12));
                }
                // The output is num / den row-wise.
                const Mat o = ssm_attention(SsmForm::Chunked, s, fq, fk, v, c.K);
                Mat expect = rec.num;
                for (std::size_t i = 0; i < c.nq; ++i) xt::view(expect, i, xt::all()) /= rec.den(i);
                IDATTN_CHECK_CMP(tol_check("output", expect, o, 1e-12));
            }
        }
    }
}

// eq:P11 eq:4.4 eq:4.5: the float32 instantiation (the naive32 baseline of the fast
// kernels) of every form stays within float32 rounding of the float64 reference.
BOOST_AUTO_TEST_CASE(naive32_forms_are_close_to_the_reference) {
    IDATTN_SEEDED(rng);
    const std::size_t M = 16, C = 4, N = 97;
    const DiagonalSsm<double> s = s4d(S4dInit::Inv, M, draw_delta(rng.engine()()));
    const Mat z = rng.normal<2>({N, C});
    const auto ref = split(ssm_states_recurrence(s, z));
    const DiagonalSsm<float> s32 = ssm_cast<float>(s);
    const xt::xtensor<float, 2> z32 = idattn::test::to_f32(z);
    for (SsmForm f : {SsmForm::Recurrence, SsmForm::Explicit, SsmForm::Fft, SsmForm::Chunked}) {
        IDATTN_CHECK_CMP(tol_check("naive32 " + ssm_form_name(f), ref, split(to_f64(ssm_states(f, s32, z32, 16))),
                                   1e-5));
    }
}

BOOST_AUTO_TEST_SUITE_END()
