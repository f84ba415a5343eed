// Chapter 3, reference tests of the bases: orthonormality of every basis
// (LegS by Gauss-Legendre quadrature of its values on [0, t]; the discrete
// ones as Phi Phi^T = I on ragged N, M up to N), the closed-form interval
// integrals of eq:3.1 against high-order quadrature, and eta (eq:3.eta).
// Deterministic claims, tight tolerances. Labels refer to
// chapters/03-interdomain-projection.md.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <complex>
#include <numbers>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "ref/03-interdomain-projection/bases.hpp"
#include "ref/03-interdomain-projection/interdomain.hpp"
#include "tests/common/testutil.hpp"

using namespace idattn::ref;
using Mat = xt::xtensor<double, 2>;
using Vec = xt::xtensor<double, 1>;
using idattn::test::tol_check;

namespace {

// Gauss-Legendre nodes and weights on [-1, 1] (Newton on P_n from the usual
// cosine guesses); exact for polynomials of degree <= 2n - 1.
void gauss_legendre(std::size_t n, std::vector<double>& x, std::vector<double>& w) {
    x.assign(n, 0);
    w.assign(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
        double z = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5)), dp = 0;
        for (int it = 0; it < 100; ++it) {
            double p0 = 1, p1 = z;
            for (std::size_t k = 1; k < n; ++k) {
                const double p2 = ((2.0 * k + 1) * z * p1 - k * p0) / (k + 1.0);
                p0 = p1;
                p1 = p2;
            }
            dp = n * (z * p1 - p0) / (z * z - 1);
            const double dz = p1 / dp;
            z -= dz;
            if (std::abs(dz) < 1e-16) break;
        }
        x[i] = z;
        w[i] = 2 / ((1 - z * z) * dp * dp);
    }
}

// max |A - I| over all entries.
double max_from_identity(const Mat& a) {
    double e = 0;
    for (std::size_t i = 0; i < a.shape(0); ++i)
        for (std::size_t j = 0; j < a.shape(1); ++j) e = std::max(e, std::abs(a(i, j) - (i == j ? 1.0 : 0.0)));
    return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eq_3_legs)

// eq:3.legs: phi_m^(t)(s) = sqrt((2m+1)/t) P_m(2s/t - 1) is orthonormal on [0, t]: the Gram
// matrix by Gauss-Legendre quadrature with M + 1 nodes (exact for the degree 2M - 2
// products) is the identity to 1e-12, for several window lengths t and M up to 200.
BOOST_AUTO_TEST_CASE(legs_is_orthonormal_on_the_window) {
    for (double t : {1.0, 7.5, 64.0, 1025.0})
        for (std::size_t M : {1ul, 2ul, 17ul, 64ul, 200ul}) {
            std::vector<double> x, w;
            gauss_legendre(M + 1, x, w);
            Vec s(std::array<std::size_t, 1>{x.size()});
            for (std::size_t j = 0; j < x.size(); ++j) s(j) = t * (x[j] + 1) / 2;
            const Mat phi = legs_eval(M, t, s);
            Mat g = xt::zeros<double>({M, M});
            for (std::size_t a = 0; a < M; ++a)
                for (std::size_t b = 0; b < M; ++b)
                    for (std::size_t j = 0; j < x.size(); ++j) g(a, b) += phi(a, j) * phi(b, j) * w[j] * t / 2;
            const double e = max_from_identity(g);
            BOOST_TEST_MESSAGE("t = " << t << ", M = " << M << ": max |G - I| = " << e);
            BOOST_TEST(e < 1e-12, "t = " << t << ", M = " << M << ": max |G - I| = " << e);
        }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_3_1)

// eq:3.1 eq:P6: the closed-form integrals Phi[m][n] = int_n^{n+1} phi_m^(N)(s) ds equal
// Gauss-Legendre quadrature of legs_eval on every unit interval (M nodes per interval,
// exact for degree M - 1), to 1e-12 (relative RMS over the matrix), ragged N.
BOOST_AUTO_TEST_CASE(closed_form_interval_integrals_equal_quadrature) {
    for (std::size_t N : idattn::test::kRaggedN)
        for (std::size_t M : {1ul, 5ul, 64ul}) {
            std::vector<double> x, w;
            gauss_legendre(M, x, w);
            Vec s(std::array<std::size_t, 1>{N * M});
            for (std::size_t n = 0; n < N; ++n)
                for (std::size_t j = 0; j < M; ++j) s(n * M + j) = n + (x[j] + 1) / 2;
            const Mat vals = legs_eval(M, double(N), s);
            Mat quad = xt::zeros<double>({M, N});
            for (std::size_t m = 0; m < M; ++m)
                for (std::size_t n = 0; n < N; ++n)
                    for (std::size_t j = 0; j < M; ++j) quad(m, n) += vals(m, n * M + j) * w[j] / 2;
            const auto c = tol_check("LegS interval integrals", quad, basis_matrix<double>(Basis::LegS, M, N), 1e-12);
            BOOST_TEST(c.pass, "N = " << N << ", M = " << M << ": " << c.report());
        }
}

// eq:3.1 eq:3.legs: the interval integrals of the first M functions of a long window
// sum, over the intervals, to the integral of the function: sum_n Phi[m][n] = sqrt(N) for
// m = 0 and 0 otherwise (Legendre polynomials integrate to zero for m >= 1).
BOOST_AUTO_TEST_CASE(interval_integrals_add_up_to_the_window_integral) {
    const std::size_t N = 1025, M = 100;
    const Mat phi = basis_matrix<double>(Basis::LegS, M, N);
    for (std::size_t m = 0; m < M; ++m) {
        double s = 0;
        for (std::size_t n = 0; n < N; ++n) s += phi(m, n);
        BOOST_TEST(std::abs(s - (m == 0 ? std::sqrt(double(N)) : 0.0)) < 1e-11, "m = " << m << ": sum = " << s);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_3_3)

// eq:3.gram eq:3.dct eq:3.3: the discrete bases are orthonormal on the N token positions,
// Phi Phi^T = I (max entry error < 1e-12) for ragged N and M in {1, N/2, N}; with M = N,
// Phi is square, hence also Phi^T Phi = I (Parseval).
BOOST_AUTO_TEST_CASE(discrete_bases_are_orthonormal) {
    for (Basis b : {Basis::Gram, Basis::Dct})
        for (std::size_t N : idattn::test::kRaggedN)
            for (std::size_t M : {std::size_t{1}, std::max<std::size_t>(1, N / 2), N}) {
                const Mat phi = basis_matrix<double>(b, M, N);
                const Mat g = xt::linalg::dot(phi, xt::transpose(phi));
                const double e = max_from_identity(g);
                BOOST_TEST_MESSAGE(basis_name(b) << " N = " << N << ", M = " << M << ": max |Phi Phi^T - I| = " << e);
                BOOST_TEST(e < 1e-12, basis_name(b) << " N = " << N << ", M = " << M << ": " << e);
                if (M == N) {
                    const double e2 = max_from_identity(xt::linalg::dot(xt::transpose(phi), phi));
                    BOOST_TEST(e2 < 1e-12, basis_name(b) << " N = M = " << N << ": max |Phi^T Phi - I| = " << e2);
                }
            }
}

// eq:3.gram: the Gram basis is the discrete Legendre family: row m is a polynomial of
// degree m in the position n (its (m+1)-th finite difference vanishes), with a positive
// leading coefficient (the m-th finite difference is positive).
BOOST_AUTO_TEST_CASE(gram_rows_are_polynomials_of_degree_m) {
    const std::size_t N = 40, M = 8;
    const Mat phi = basis_matrix<double>(Basis::Gram, M, N);
    for (std::size_t m = 0; m < M; ++m) {
        std::vector<double> d(phi.begin() + m * N, phi.begin() + (m + 1) * N);
        for (std::size_t k = 0; k < m; ++k)
            for (std::size_t n = 0; n + 1 < d.size() - k; ++n) d[n] = d[n + 1] - d[n];
        BOOST_TEST(d[0] > 0, "m = " << m << ": m-th difference " << d[0]);  // positive leading coefficient
        double worst = 0;
        for (std::size_t n = 0; n + 1 < N - m; ++n) worst = std::max(worst, std::abs(d[n + 1] - d[n]));
        BOOST_TEST(worst < 1e-10 * std::abs(d[0]) + 1e-13, "m = " << m << ": (m+1)-th difference " << worst);
    }
}

// eq:3.5: the Fourier rows are unitary, Phi Phi^H = I for M <= N, and at M = N also
// Phi^H Phi = I.
BOOST_AUTO_TEST_CASE(fourier_rows_are_unitary) {
    for (std::size_t N : {1ul, 63ul, 64ul, 65ul, 97ul})
        for (std::size_t M : {std::size_t{1}, std::max<std::size_t>(1, N / 3), N}) {
            const auto phi = fourier_basis_matrix<double>(M, N);
            double e = 0;
            for (std::size_t a = 0; a < M; ++a)
                for (std::size_t b = 0; b < M; ++b) {
                    std::complex<double> s = 0;
                    for (std::size_t n = 0; n < N; ++n) s += phi(a, n) * std::conj(phi(b, n));
                    e = std::max(e, std::abs(s - (a == b ? 1.0 : 0.0)));
                }
            BOOST_TEST(e < 1e-12, "N = " << N << ", M = " << M << ": max |Phi Phi^H - I| = " << e);
        }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(eq_3_eta)

// eq:3.eta eq:P6: every real basis here contains the constant function (phi_0 = 1/sqrt(t)),
// so eta = Phi 1 = sqrt(N) e_0, for LegS, Gram and DCT, ragged N.
BOOST_AUTO_TEST_CASE(eta_is_sqrt_n_times_e0) {
    for (Basis b : {Basis::LegS, Basis::Gram, Basis::Dct})
        for (std::size_t N : {1ul, 63ul, 64ul, 65ul, 97ul}) {
            const std::size_t M = std::min<std::size_t>(N, 9);
            const Mat phi = basis_matrix<double>(b, M, N);
            const Mat fk = xt::ones<double>({N, std::size_t{2}}), v = xt::ones<double>({N, std::size_t{1}});
            const auto p = project<double>(phi, fk, v);
            for (std::size_t m = 0; m < M; ++m) {
                const double want = m == 0 ? std::sqrt(double(N)) : 0.0;
                BOOST_TEST(std::abs(p.eta(m) - want) < 1e-12 * std::sqrt(double(N)),
                           basis_name(b) << " N = " << N << ": eta(" << m << ") = " << p.eta(m));
            }
        }
}

BOOST_AUTO_TEST_SUITE_END()
