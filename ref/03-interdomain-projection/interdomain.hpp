// Chapter 3, exact reference: the interdomain projection (P6)-(P9) onto a
// basis of functions of time (bases.hpp), and the query readout. See
// chapters/03-interdomain-projection.md; every function reads like the
// chapter: literal loops, one formula per line.
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

#include "ref/03-interdomain-projection/bases.hpp"

namespace idattn::ref {

// Throws idattn::Error (prefixed with `what`) unless fq is (Nq, R), fk (N, R),
// v (N, d), no axis empty, M passes check_basis_size, and Nq <= N when causal.
void check_interdomain_inputs(const std::string& what, Basis b, std::size_t M, const std::vector<std::size_t>& fq,
                              const std::vector<std::size_t>& fk, const std::vector<std::size_t>& v, bool causal);

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
