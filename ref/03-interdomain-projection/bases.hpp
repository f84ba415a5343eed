// Chapter 3, exact reference: the bases of functions of time onto which the
// interdomain projection (interdomain.hpp) projects. See
// chapters/03-interdomain-projection.md; every function reads like the
// chapter: literal loops, one formula per line.
//
// Tokens are a piecewise-constant signal of time: token n (0-based here,
// n = 0..N-1) holds on [n, n+1), so t_N = N. A basis is represented by its
// projection matrix Phi (M, N): the coefficient of any token signal z is
// c_m = sum_n Phi[m][n] z_n, i.e.
//   LegS (continuous, eq:3.1): Phi[m][n] = int_n^{n+1} phi_m^{(N)}(s) ds with
//       phi_m^{(t)}(s) = sqrt((2m+1)/t) P_m(2s/t - 1), orthonormal on [0, t];
//       exact in closed form through int P_m = (P_{m+1} - P_{m-1}) / (2m+1).
//   Gram (discrete Legendre / Gram polynomials, eq:3.3): Phi[m][n] = p_m(n),
//       the orthonormal polynomials of degree m on the N points (Stieltjes
//       three-term recurrence, each new vector re-orthogonalised once against
//       the previous ones so that Phi Phi^T = I to rounding for any M <= N).
//   Dct (DCT-II, eq:3.3): Phi[m][n] = s_m sqrt(2/N) cos(pi m (2n+1) / (2N)),
//       s_0 = 1/sqrt(2), else 1; orthonormal rows.
//   Fourier (complex, unitary DFT rows, eq:3.5): Phi[m][n] = exp(-2 pi i m n / N) / sqrt(N)
//       for m = 0..M-1 (frequencies 0..M-1; M = N is the full unitary DFT).
// Discrete bases need 1 <= M <= N; LegS needs M >= 1 only.
//
// Templated on the scalar so that the same basis is handed to the float64
// reference and to the float32 naive32 baseline (below: real bases are
// evaluated in float64 and rounded). Instantiated for double and float.
#pragma once

#include <complex>
#include <cstddef>
#include <string>

#include <xtensor/xtensor.hpp>

namespace idattn::ref {

enum class Basis {
    LegS,     // eq:3.1 scaled Legendre (HiPPO-LegS), integrals over unit intervals
    Gram,     // eq:3.3 discrete Legendre (Gram) polynomials on the token positions
    Dct,      // eq:3.3 DCT-II
    Fourier,  // eq:3.5 complex, unitary DFT rows (Hermitian readout)
};

// "legs", "gram", "dct", "fourier" (api::parse_basis reads them back).
std::string basis_name(Basis b);
bool is_discrete(Basis b);  // Gram, Dct, Fourier
bool is_complex(Basis b);   // Fourier

// Throws idattn::Error (prefixed with `what`) when M = 0, N = 0, or M > N for
// a discrete basis ("M = 70 functions cannot be orthonormal on N = 64 points").
void check_basis_size(const std::string& what, Basis b, std::size_t M, std::size_t N);

// M_i, the size of the basis of a causal prefix of L tokens: M for LegS (a
// continuous basis needs no M <= L), min(M, L) for the discrete bases (a
// prefix shorter than M is represented exactly). eq:3.causal
std::size_t causal_basis_size(Basis b, std::size_t M, std::size_t L);

// ---- Bases -------------------------------------------------------------------
// Real bases are evaluated in float64 and rounded to T: a basis is an input
// constant (like the draw W of chapter 2), so a float32 run measures the
// attention arithmetic, not the basis generator.
// Phi (M, N) of a real basis (LegS, Gram, Dct); throws for Fourier.
template <class T>
xt::xtensor<T, 2> basis_matrix(Basis b, std::size_t M, std::size_t N);
// Phi (M, N) of the complex Fourier basis.
template <class T>
xt::xtensor<std::complex<T>, 2> fourier_basis_matrix(std::size_t M, std::size_t N);
// phi_m^{(t)}(s) at the points s (values, not interval integrals): (M, len(s)).
// For plots, quadrature tests and the reconstruction sum_m c_m phi_m(s).
xt::xtensor<double, 2> legs_eval(std::size_t M, double t, const xt::xtensor<double, 1>& s);

}  // namespace idattn::ref
