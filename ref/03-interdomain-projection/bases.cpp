// Chapter 3 reference: the bases of functions of time (LegS, Gram, DCT-II,
// Fourier) as projection matrices Phi, and the LegS functions themselves.
// Equation labels refer to chapters/03-interdomain-projection.md.
#include "ref/03-interdomain-projection/bases.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include <xtensor/xmath.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::ref {

std::string basis_name(Basis b) {
    switch (b) {
        case Basis::LegS: return "legs";
        case Basis::Gram: return "gram";
        case Basis::Dct: return "dct";
        case Basis::Fourier: return "fourier";
    }
    return "?";
}

bool is_discrete(Basis b) { return b != Basis::LegS; }
bool is_complex(Basis b) { return b == Basis::Fourier; }

void check_basis_size(const std::string& what, Basis b, std::size_t M, std::size_t N) {
    if (N == 0) throw Error(what + ": the basis needs at least one token, got N = 0");
    if (M == 0) throw Error(what + ": the number of basis functions M must be at least 1, got M = 0");
    require_memory(what, "M = " + std::to_string(M) + " basis functions", {{"the basis matrix Phi", {M, N}}});
    if (is_discrete(b) && M > N)
        throw Error(what + ": the " + basis_name(b) + " basis is discrete: M = " + std::to_string(M) +
                    " functions cannot be orthonormal on N = " + std::to_string(N) +
                    " points; expected 1 <= M <= " + std::to_string(N));
}

std::size_t causal_basis_size(Basis b, std::size_t M, std::size_t L) {
    return is_discrete(b) ? std::min(M, L) : M;  // eq:3.causal
}

namespace {

// P_0(x) .. P_{K-1}(x) by Bonnet's recurrence (m+1) P_{m+1} = (2m+1) x P_m - m P_{m-1}.
void legendre_values(double x, std::size_t K, std::vector<double>& p) {
    p.assign(K, 0.0);
    if (K > 0) p[0] = 1.0;
    if (K > 1) p[1] = x;
    for (std::size_t m = 1; m + 1 < K; ++m)
        p[m + 1] = ((2.0 * m + 1.0) * x * p[m] - double(m) * p[m - 1]) / (m + 1.0);
}

// A primitive of P_m: Q_m = (P_{m+1} - P_{m-1}) / (2m+1) for m >= 1, Q_0 = x.    eq:3.1
double legendre_primitive(std::size_t m, const std::vector<double>& p, double x) {
    if (m == 0) return x;
    return (p[m + 1] - p[m - 1]) / (2.0 * m + 1.0);
}

// LegS: Phi[m][n] = int_n^{n+1} phi_m^{(N)}(s) ds, with s = N (x + 1) / 2:
//   = sqrt((2m+1)/N) * N/2 * (Q_m(x_{n+1}) - Q_m(x_n)),  x_n = 2n/N - 1.         eq:3.1 eq:3.legs eq:P6
xt::xtensor<double, 2> legs_matrix(std::size_t M, std::size_t N) {
    xt::xtensor<double, 2> phi({M, N});
    std::vector<double> lo, hi;
    const double t = double(N);
    for (std::size_t n = 0; n < N; ++n) {
        const double x0 = 2.0 * double(n) / t - 1.0, x1 = 2.0 * double(n + 1) / t - 1.0;
        legendre_values(x0, M + 1, lo);
        legendre_values(x1, M + 1, hi);
        for (std::size_t m = 0; m < M; ++m) {
            const double scale = std::sqrt((2.0 * m + 1.0) / t) * t / 2.0;
            phi(m, n) = scale * (legendre_primitive(m, hi, x1) - legendre_primitive(m, lo, x0));
        }
    }
    return phi;
}

// Gram polynomials: orthonormal polynomials on the N points, by the Stieltjes
// three-term recurrence p_{m+1} ~ (x - a_m) p_m - b_m p_{m-1} (x centred and
// scaled to [-1, 1]), each new vector re-orthogonalised once against all
// previous ones (full reorthogonalisation, as in Lanczos) and normalised.      eq:3.gram
xt::xtensor<double, 2> gram_matrix(std::size_t M, std::size_t N) {
    xt::xtensor<double, 2> phi = xt::zeros<double>({M, N});
    std::vector<double> x(N);
    for (std::size_t n = 0; n < N; ++n) x[n] = N > 1 ? (2.0 * double(n) - double(N - 1)) / double(N - 1) : 0.0;
    for (std::size_t n = 0; n < N; ++n) phi(0, n) = 1.0 / std::sqrt(double(N));  // p_0 = 1 / sqrt(N)
    double b_prev = 0.0;  // b_m = |p_m before normalisation|
    for (std::size_t m = 0; m + 1 < M; ++m) {
        std::vector<double> w(N);
        for (std::size_t n = 0; n < N; ++n) w[n] = x[n] * phi(m, n);
        double a = 0.0;
        for (std::size_t n = 0; n < N; ++n) a += w[n] * phi(m, n);  // a_m = <x p_m, p_m>
        for (std::size_t n = 0; n < N; ++n) w[n] -= a * phi(m, n) + (m ? b_prev * phi(m - 1, n) : 0.0);
        for (std::size_t j = 0; j <= m; ++j) {  // re-orthogonalise against p_0 .. p_m
            double dot = 0.0;
            for (std::size_t n = 0; n < N; ++n) dot += w[n] * phi(j, n);
            for (std::size_t n = 0; n < N; ++n) w[n] -= dot * phi(j, n);
        }
        double norm = 0.0;
        for (std::size_t n = 0; n < N; ++n) norm += w[n] * w[n];
        norm = std::sqrt(norm);
        for (std::size_t n = 0; n < N; ++n) phi(m + 1, n) = w[n] / norm;
        b_prev = norm;
    }
    return phi;
}

// DCT-II: Phi[m][n] = s_m sqrt(2/N) cos(pi m (2n+1) / (2N)), s_0 = 1/sqrt 2.    eq:3.dct
xt::xtensor<double, 2> dct_matrix(std::size_t M, std::size_t N) {
    xt::xtensor<double, 2> phi({M, N});
    for (std::size_t m = 0; m < M; ++m) {
        const double s = m == 0 ? 1.0 / std::sqrt(2.0) : 1.0;
        for (std::size_t n = 0; n < N; ++n) {
            // the angle's numerator m (2n+1) reduced mod 4N keeps cos exact for large m n
            const std::size_t k = (m * (2 * n + 1)) % (4 * N);
            phi(m, n) = s * std::sqrt(2.0 / double(N)) * std::cos(std::numbers::pi * double(k) / (2.0 * double(N)));
        }
    }
    return phi;
}

template <class T>
xt::xtensor<T, 2> rounded(const xt::xtensor<double, 2>& a) {
    return xt::xtensor<T, 2>(xt::cast<T>(a));
}

}  // namespace

// ---- Bases -------------------------------------------------------------------

template <class T>
xt::xtensor<T, 2> basis_matrix(Basis b, std::size_t M, std::size_t N) {
    check_basis_size("basis_matrix", b, M, N);
    switch (b) {
        case Basis::LegS: return rounded<T>(legs_matrix(M, N));
        case Basis::Gram: return rounded<T>(gram_matrix(M, N));
        case Basis::Dct: return rounded<T>(dct_matrix(M, N));
        case Basis::Fourier: break;
    }
    throw Error("basis_matrix: the fourier basis is complex; use fourier_basis_matrix (eq:3.5)");
}

template <class T>
xt::xtensor<std::complex<T>, 2> fourier_basis_matrix(std::size_t M, std::size_t N) {
    check_basis_size("fourier_basis_matrix", Basis::Fourier, M, N);
    xt::xtensor<std::complex<T>, 2> phi({M, N});
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t n = 0; n < N; ++n) {
            // Phi[m][n] = exp(-2 pi i m n / N) / sqrt(N), the angle reduced mod N.      eq:3.5
            const double angle = -2.0 * std::numbers::pi * double((m * n) % N) / double(N);
            phi(m, n) = std::complex<T>(T(std::cos(angle) / std::sqrt(double(N))),
                                        T(std::sin(angle) / std::sqrt(double(N))));
        }
    return phi;
}

xt::xtensor<double, 2> legs_eval(std::size_t M, double t, const xt::xtensor<double, 1>& s) {
    if (M == 0) throw Error("legs_eval: the number of basis functions M must be at least 1, got M = 0");
    if (!(t > 0) || !std::isfinite(t)) throw Error("legs_eval: the window length t must be positive and finite, got " + std::to_string(t));
    xt::xtensor<double, 2> out({M, s.size()});
    std::vector<double> p;
    for (std::size_t j = 0; j < s.size(); ++j) {
        if (!(s(j) >= 0 && s(j) <= t))
            throw Error("legs_eval: s(" + std::to_string(j) + ") = " + std::to_string(s(j)) +
                        " lies outside the window [0, t] = [0, " + std::to_string(t) + "]");
        legendre_values(2.0 * s(j) / t - 1.0, M, p);
        // phi_m^{(t)}(s) = sqrt((2m+1)/t) P_m(2s/t - 1)                            eq:3.legs
        for (std::size_t m = 0; m < M; ++m) out(m, j) = std::sqrt((2.0 * m + 1.0) / t) * p[m];
    }
    return out;
}

#define IDATTN_INSTANTIATE(T)                                                                                         \
    template xt::xtensor<T, 2> basis_matrix<T>(Basis, std::size_t, std::size_t);                                     \
    template xt::xtensor<std::complex<T>, 2> fourier_basis_matrix<T>(std::size_t, std::size_t);

IDATTN_INSTANTIATE(double)
IDATTN_INSTANTIATE(float)
#undef IDATTN_INSTANTIATE

}  // namespace idattn::ref
