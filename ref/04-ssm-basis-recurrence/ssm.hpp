// Chapter 4, exact reference: the SSM basis recurrence. HiPPO-LegS (P2) keeps
// the projection of chapter 3 online; S4D (P11) is the diagonal recurrence the
// paper trains. See chapters/04-ssm-basis-recurrence.md; every function reads
// like the chapter: literal loops, one formula per line.
//
// Time. Token n (0-based, n = 0..N-1) holds on [n, n+1) (as in chapter 3), so
// after token n the time is t = n + 1. Every "states" function returns the
// state after each token: (N, M, C), entry [n] = the state at t = n + 1.
//
// Channels. One recurrence is shared by all C input channels: column c of the
// input z (N, C) drives column c of the state (M, C). For interdomain attention
// the channels are [xi(k_t), v_t, 1] (C = R + d + 1, ssm_channels), and the
// state splits into U_t (M, R), Gamma_t (M, d) and eta_t (M,).
//
// Two sides of the paper's boundary:
//   LegS (ideal derivation): double only; the exact update uses matrix
//     exponentials (scaling and squaring with a Pade approximant, Van Loan's
//     block-matrix trick for the input integral), Euler and bilinear are the
//     usual approximations (eq:4.1, eq:4.2).
//   S4D (scalable layer): templated on the scalar so the same literal formula
//     runs in float64 (the reference) and plainly in float32 (the "naive32"
//     baseline of the tolerance rule for the fast kernels). The four forms
//     recurrence | explicit | fft | chunked compute the same states
//     (eq:4.3, eq:4.4, eq:4.5); the damped Fourier basis is exactly
//     orthogonal (eq:4.6).
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace idattn::ref {

// ---- HiPPO-LegS (eq:P2, eq:4.legs) ------------------------------------------------
// A (M, M): A_nk = sqrt(2n+1) sqrt(2k+1) for n > k, n + 1 for n = k, 0 above.
xt::xtensor<double, 2> legs_a(std::size_t M);
// B (M,): B_n = sqrt(2n+1).
xt::xtensor<double, 1> legs_b(std::size_t M);

// exp(X) of a square matrix: scaling and squaring with the [8/8] Pade
// approximant (Golub & Van Loan, Algorithm 9.3.1), the denominator solved by
// Gaussian elimination with partial pivoting. Throws on a non-square or
// non-finite X.
xt::xtensor<double, 2> expm(const xt::xtensor<double, 2>& x);

// The exact LegS update over a step dtau of tau = log t with constant input z:
// c <- E c + F z, E = exp(-A dtau), F = int_0^dtau exp(-A s) ds B (eq:4.1),
// both read off one exponential of the (M+1) x (M+1) block matrix
// [[-A dtau, B dtau], [0, 0]] (Van Loan), so A is never inverted.
struct LegsStep {
    xt::xtensor<double, 2> e;  // (M, M) transition exp(-A dtau)
    xt::xtensor<double, 1> f;  // (M,)   input integral
};
LegsStep legs_exact_step(const xt::xtensor<double, 2>& a, const xt::xtensor<double, 1>& b, double dtau);

enum class LegsMethod {
    Exact,     // eq:4.1 matrix exponentials, exact for piecewise-constant input
    Euler,     // eq:4.2 forward Euler in tau, s sub-steps per token
    Bilinear,  // eq:4.2 bilinear (trapezoidal) in tau, s sub-steps per token
};
std::string legs_method_name(LegsMethod m);

// The LegS states c(t) for t = 1..N: (N, M, C), z (N, C). The first token
// (t from 0 to 1, tau from -inf to 0) is exact for every method:
// c(1) = A^{-1} B z_0 (= z_0 e_0). Later tokens step tau by log((n+1)/n) in
// `substeps` >= 1 equal sub-steps (ignored by Exact). Chapter 3's coefficients
// are u(t) = sqrt(t) c(t) (eq:4.scale).
xt::xtensor<double, 3> legs_states(LegsMethod method, std::size_t M, const xt::xtensor<double, 2>& z,
                                   std::size_t substeps = 1);

// Causal interdomain attention over the LegS basis, driven by the exact
// recurrence: query i (at position p_i = i + N - Nq, needs Nq <= N) reads
// c(p_i + 1) with the real readout of chapter 3 (eq:P9). Equals chapter 3's
// interdomain_attention(Basis::LegS, M, fq, fk, v, causal = true): the factor
// sqrt(t) of eq:4.scale cancels between numerator and denominator.
xt::xtensor<double, 2> legs_attention(std::size_t M, const xt::xtensor<double, 2>& fq,
                                      const xt::xtensor<double, 2>& fk, const xt::xtensor<double, 2>& v);

// ---- The bridge to S4D: time-invariant LegS and its normal part ----------------------
// The LegS matrices used with a fixed step in t instead of in tau = log t: the
// time-invariant system x' = -A x + B z. Its impulse response exp(-A t) B (M,)
// through expm (eq:4.ti-legs).
xt::xtensor<double, 1> legs_ti_impulse(std::size_t M, double t);
// The same in closed form, the exponentially warped Legendre basis:
// sqrt(2n+1) P_n(2 e^-t - 1) e^-t, n = 0..M-1 (eq:4.ti-legs).
xt::xtensor<double, 1> legs_warped_basis(std::size_t M, double t);
// A = A_N + P P^T with P_n = sqrt(n + 1/2) and A_N = I/2 + S, S skew-symmetric
// (eq:4.normal): the frequencies omega of S (its eigenvalues are +- i omega), the
// N/2 positive ones of the N x N LegS matrix, descending. -A_N has the
// eigenvalues -1/2 +- i omega, which S4D-Inv approximates (N = 2M).
xt::xtensor<double, 1> legs_normal_frequencies(std::size_t N);

// ---- S4D (eq:P11) -------------------------------------------------------------------
enum class S4dInit {
    Inv,  // eq:4.s4d-inv  A_n = -1/2 + i (2M/pi) (2M/(2n+1) - 1), S4D's state size 2M: every frequency > 0
    Lin,  // eq:4.s4d-lin  A_n = -1/2 + i pi n
};
std::string s4d_init_name(S4dInit init);

// The continuous diagonal A (M,), n = 0..M-1. Throws when M = 0.
xt::xtensor<std::complex<double>, 1> s4d_a(S4dInit init, std::size_t M);

// Delta = exp(U(log lo, log hi)), log-uniform in [lo, hi] (the paper's
// [1e-3, 1e-1]). Deterministic in the seed.
double draw_delta(std::uint64_t seed, double lo = 1e-3, double hi = 1e-1);

// A diagonal SSM x_t = Lambda (.) x_{t-1} + Bbar z_t, discrete parameters.
template <class T>
struct DiagonalSsm {
    xt::xtensor<std::complex<T>, 1> lambda;  // (M,) Lambda
    xt::xtensor<std::complex<T>, 1> bbar;    // (M,) Bbar, the discrete input coefficients
};

// Lambda = exp(Delta A) (eq:P11), Bbar = (exp(Delta A) - 1) / A * B by zero-order
// hold (eq:4.zoh, our choice), with exp(x) - 1 evaluated without cancellation.
// Throws when M = 0, the lengths differ, Delta <= 0 or is not finite, an entry
// is not finite, or Re A_m >= 0 (unstable: |Lambda_m| >= 1).
DiagonalSsm<double> s4d_zoh(const xt::xtensor<std::complex<double>, 1>& a,
                            const xt::xtensor<std::complex<double>, 1>& b, double delta);
// s4d_zoh(s4d_a(init, M), ones, delta): the initialisation with B = 1.
DiagonalSsm<double> s4d(S4dInit init, std::size_t M, double delta);

// The damped Fourier basis of eq:4.6: M = L, Lambda_m = exp(-alpha + i 2 pi m / L),
// Bbar_m = 1/sqrt(L) applied directly (no zero-order hold). Throws when L = 0
// or alpha < 0 or not finite (alpha = 0, the undamped DFT, is allowed).
DiagonalSsm<double> damped_fourier(std::size_t L, double alpha);

// The same parameters rounded to float32 (the input a float32 kernel sees).
template <class T>
DiagonalSsm<T> ssm_cast(const DiagonalSsm<double>& s);

// Throws (prefixed with `what`) unless lambda and bbar have the same length
// M >= 1, are finite, and |Lambda_m| <= 1 up to rounding (|Lambda| > 1 grows
// without bound).
template <class T>
void check_ssm(const std::string& what, const DiagonalSsm<T>& s);

// Lambda^k for an integer k >= 0, as exp(k log Lambda): the literal power,
// computed independently of the recurrence (Lambda^0 = 1, 0^k = 0 for k >= 1).
template <class T>
std::complex<T> lambda_power(std::complex<T> lambda, std::size_t k);

// The impulse response, i.e. the basis: psi (N, M), psi[tau][m] = Lambda_m^tau Bbar_m (eq:4.psi).
template <class T>
xt::xtensor<std::complex<T>, 2> impulse_response(const DiagonalSsm<T>& s, std::size_t N);

// ---- The four forms of the states (N, M, C), z (N, C) real -------------------------
enum class SsmForm {
    Recurrence,  // eq:P11  x_t = Lambda (.) x_{t-1} + Bbar z_t
    Explicit,    // eq:4.3  x_t = sum_{n <= t} psi(t - n) z_n
    Fft,         // eq:4.4  the same causal convolution through FFTW, per state and channel
    Chunked,     // eq:4.5  chunk-end states, a serial pass over chunk boundaries, a final pass
};
std::string ssm_form_name(SsmForm f);

template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_recurrence(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z);
template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_explicit(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z);
template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_fft(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z);
// chunk >= 1 positions per chunk (the last chunk may be shorter; chunk >= N is one chunk).
template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_chunked(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z,
                                                   std::size_t chunk);
// Dispatch; `chunk` is used by Chunked only.
template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states(SsmForm form, const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z,
                                           std::size_t chunk = 64);

// ---- Interdomain attention over the SSM basis ---------------------------------------
// The channels [xi(k_t), v_t, 1]: (N, R + d + 1) from fk (N, R) and v (N, d).
template <class T>
xt::xtensor<T, 2> ssm_channels(const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v);

// Numerator and denominator of the readout, o = num / den (row-wise).
template <class T>
struct Readout {
    xt::xtensor<T, 2> num;  // (Nq, d)
    xt::xtensor<T, 1> den;  // (Nq,)
};

// Causal interdomain attention over a diagonal SSM basis: query i sits at
// position p_i = i + N - Nq (needs Nq <= N) and reads the state after token
// p_i, X = [U | Gamma | eta], with the Hermitian readout of chapter 3 (eq:4.readout,
// eq:3.5): num_i = Re(xi(q_i)^T U^H Gamma), den_i = Re(xi(q_i)^T U^H eta).
// fq (Nq, R), fk (N, R), v (N, d); the states come from `form` (chunk for Chunked).
template <class T>
Readout<T> ssm_attention_parts(SsmForm form, const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& fq,
                               const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v, std::size_t chunk = 64);
template <class T>
xt::xtensor<T, 2> ssm_attention(SsmForm form, const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& fq,
                                const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v, std::size_t chunk = 64);

// Exponentially decayed causal linear attention (eq:4.6): weights
// xi(q_i)^T xi(k_n) exp(-2 alpha (p_i - n)) for n <= p_i; num and den as above.
template <class T>
Readout<T> decayed_linear_attention_parts(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                          const xt::xtensor<T, 2>& v, T alpha);

// Shape checks shared by the attention functions (throws idattn::Error naming
// the tensor): fq (Nq, R), fk (N, R), v (N, d), every axis >= 1, Nq <= N.
void check_ssm_attention_inputs(const std::string& what, const std::vector<std::size_t>& fq,
                                const std::vector<std::size_t>& fk, const std::vector<std::size_t>& v);

}  // namespace idattn::ref
