// Chapter 3, exact reference: the interdomain projection (P6)-(P9) onto a
// basis of functions of time, and the query readout. See
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
// Causal (U^(i) from tokens 0..p_i, p_i = i + N - Nq: the bottom-right
// alignment of chapters 1 and 2, Nq <= N): query i reads the projection of its
// own prefix onto the basis of that prefix, Phi^(i) = basis_matrix(b, M_i,
// p_i + 1), with M_i = M for LegS and M_i = min(M, p_i + 1) for the discrete
// bases (a prefix shorter than M is represented exactly: our choice, stated
// in the chapter).
//
// Templated on the scalar so that the same literal formula runs in float64
// (the reference) and plainly in float32 (the "naive32" baseline of the
// tolerance rule for the fast kernels). Instantiated for double and float.
#pragma once

#include <complex>
#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace idattn::ref {

enum class Basis {
    LegS,     // eq:3.1 scaled Legendre (HiPPO-LegS), integrals over unit intervals
    Gram,     // eq:3.3 discrete Legendre (Gram) polynomials on the token positions
    Dct,      // eq:3.3 DCT-II
    Fourier,  // eq:3.5 complex, unitary DFT rows (Hermitian readout)
};

// "legs", "gram", "dct", "fourier"; anything else throws idattn::Error.
Basis parse_basis(const std::string& name);
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

// Throws idattn::Error (prefixed with `what`) unless fq is (Nq, R), fk (N, R),
// v (N, d), no axis empty, M passes check_basis_size, and Nq <= N when causal.
void check_interdomain_inputs(const std::string& what, Basis b, std::size_t M, const std::vector<std::size_t>& fq,
                              const std::vector<std::size_t>& fk, const std::vector<std::size_t>& v, bool causal);

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

// ---- Projection (eq:P6) and readout (eq:P8, eq:P9) ----------------------------
template <class T>
struct Projection {
    xt::xtensor<T, 2> U;      // (M, R): u_m = sum_n Phi[m][n] xi(k_n)
    xt::xtensor<T, 2> Gamma;  // (M, d): gamma_m = sum_n Phi[m][n] v_n
    xt::xtensor<T, 1> eta;    // (M,):   eta_m = sum_n Phi[m][n]
};
// fk (N, R) key features, v (N, d) values, phi (M, N).
template <class T>
Projection<T> project(const xt::xtensor<T, 2>& phi, const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v);
// The same onto a complex basis (the Fourier rows of eq:3.5): complex U, Gamma, eta.
template <class T>
Projection<std::complex<T>> project(const xt::xtensor<std::complex<T>, 2>& phi, const xt::xtensor<T, 2>& fk,
                                    const xt::xtensor<T, 2>& v);
// O = F_q U^T Gamma / (F_q U^T eta), fq (Nq, R) -> (Nq, d).
template <class T>
xt::xtensor<T, 2> readout(const xt::xtensor<T, 2>& fq, const Projection<T>& p);

// Interdomain attention (P9) with a real basis, non-causal or causal (above).
template <class T>
xt::xtensor<T, 2> interdomain_attention(Basis b, std::size_t M, const xt::xtensor<T, 2>& fq,
                                        const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v, bool causal);

// ---- The effective attention matrix (eq:3.4) ----------------------------------
// Unnormalised weights W (Nq, N): W[i][n] = sum_n' (F_q F_k^T)[i][n'] P^(i)(n', n)
// with the projection kernel P^(i) = Phi^(i)T Phi^(i) on the query's prefix
// (all tokens when non-causal; zero beyond the prefix when causal). Computed
// as F_q F~_k^T with the reconstructed key features F~_k = Phi^T Phi F_k (eq:P7).
template <class T>
xt::xtensor<T, 2> effective_weights(Basis b, std::size_t M, const xt::xtensor<T, 2>& fq,
                                    const xt::xtensor<T, 2>& fk, bool causal);
// The projection kernel P = Phi^T Phi (N, N) of a real basis on N tokens:
// P(n', n) = sum_m Phi[m][n'] Phi[m][n] (eq:3.4). An orthogonal projection for
// the discrete bases; for LegS the integrals over the two tokens' intervals of
// the kernel sum_m phi_m(s) phi_m(s').
template <class T>
xt::xtensor<T, 2> projection_kernel(Basis b, std::size_t M, std::size_t N);
// Output through the matrix: O[i] = sum_n W[i][n] v_n / sum_n W[i][n].
template <class T>
xt::xtensor<T, 2> effective_attention(const xt::xtensor<T, 2>& w, const xt::xtensor<T, 2>& v);

// ---- Complex basis, Hermitian readout (eq:3.5, our choice) ---------------------
// U = Phi F_k, Gamma = Phi V, eta = Phi 1 with complex Phi; the output is
// Re(F_q U^H Gamma) / Re(F_q U^H eta). For M = N (unitary Phi) this equals (P4).
template <class T>
xt::xtensor<T, 2> interdomain_attention_hermitian(std::size_t M, const xt::xtensor<T, 2>& fq,
                                                  const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v);

}  // namespace idattn::ref
