// Chapter 4 reference, S4D side (scalable layer): parameters, the damped
// Fourier basis, the recurrence, the explicit projection with the impulse
// response, the chunked scan and the interdomain attention read from the
// states. The FFT form is in ssm_fft.cpp.
// Equation labels refer to chapters/04-ssm-basis-recurrence.md.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <sstream>

#include <xtensor/xview.hpp>

#include "ref/02-kernel-feature-map/linear_attention.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"

namespace idattn::ref {

namespace {

using idattn::num_str;
template <class T>
std::string num_str(std::complex<T> z) {
    return "(" + num_str(double(z.real())) + "," + num_str(double(z.imag())) + ")";
}

// A complex vector of length n (a braced {n} would be read as one value, not a shape).
template <class T>
xt::xtensor<std::complex<T>, 1> cvec(std::size_t n) {
    return xt::xtensor<std::complex<T>, 1>(std::array<std::size_t, 1>{n});
}

template <class T>
bool finite(std::complex<T> x) {
    return std::isfinite(x.real()) && std::isfinite(x.imag());
}

// exp(w) - 1 without cancellation for small |w|:
// e^x (cos y + i sin y) - 1 = (expm1(x) cos y - 2 sin^2(y/2)) + i e^x sin y.   eq:4.zoh
std::complex<double> expm1_complex(std::complex<double> w) {
    const double x = w.real(), y = w.imag();
    const double sh = std::sin(y / 2);
    return {std::expm1(x) * std::cos(y) - 2 * sh * sh, std::exp(x) * std::sin(y)};
}

template <class T>
void check_z(const std::string& what, const xt::xtensor<T, 2>& z) {
    const std::vector<std::size_t> shape{z.shape(0), z.shape(1)};
    require_sane_size(what, "z", shape);
    require_finite(what, "z", z.data(), shape);
}

template <class T>
std::vector<std::size_t> shape_of(const xt::xtensor<T, 2>& a) {
    return {a.shape(0), a.shape(1)};
}

// The Hermitian readout of one query from one state X (M, R + d + 1):
// a_m = sum_r xi(q)_r conj(U_mr), num = Re(sum_m a_m Gamma_m), den = Re(sum_m a_m eta_m).  eq:4.readout eq:3.5
template <class T, class State>
void read_state(const xt::xtensor<T, 2>& fq, std::size_t i, const State& x, std::size_t R, std::size_t d,
                Readout<T>& out) {
    const std::size_t M = x.shape(0);
    std::vector<std::complex<T>> num(d, std::complex<T>(0));
    std::complex<T> den = 0;
    for (std::size_t m = 0; m < M; ++m) {
        std::complex<T> am = 0;
        for (std::size_t r = 0; r < R; ++r) am += fq(i, r) * std::conj(x(m, r));
        for (std::size_t c = 0; c < d; ++c) num[c] += am * x(m, R + c);
        den += am * x(m, R + d);
    }
    for (std::size_t c = 0; c < d; ++c) out.num(i, c) = num[c].real();
    out.den(i) = den.real();
}

}  // namespace

// ---- S4D parameters ------------------------------------------------------------------

std::string s4d_init_name(S4dInit init) { return init == S4dInit::Inv ? "inv" : "lin"; }

xt::xtensor<std::complex<double>, 1> s4d_a(S4dInit init, std::size_t M) {
    if (M == 0) throw Error("s4d_a: the state size M must be at least 1, got 0");
    const double pi = std::numbers::pi;
    auto a = cvec<double>(M);
    for (std::size_t n = 0; n < M; ++n) {
        const double N2 = 2.0 * double(M);  // S4D's state size: M complex modes are 2M real states
        if (init == S4dInit::Inv)
            a(n) = {-0.5, (N2 / pi) * (N2 / (2.0 * n + 1) - 1)};  // A_n = -1/2 + i (2M/pi)(2M/(2n+1) - 1)   eq:4.s4d-inv
        else
            a(n) = {-0.5, pi * double(n)};  // A_n = -1/2 + i pi n                                   eq:4.s4d-lin
    }
    return a;
}

double draw_delta(std::uint64_t seed, double lo, double hi) {
    if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi))
        throw Error("draw_delta: need 0 < lo <= hi < inf, got lo = " + num_str(lo) + ", hi = " + num_str(hi));
    std::mt19937_64 eng(seed);
    // log Delta ~ U(log lo, log hi)                                               eq:4.delta
    std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
    return std::exp(u(eng));
}

DiagonalSsm<double> s4d_zoh(const xt::xtensor<std::complex<double>, 1>& a,
                            const xt::xtensor<std::complex<double>, 1>& b, double delta) {
    const std::string what = "s4d_zoh";
    const std::size_t M = a.shape(0);
    if (M == 0) throw Error(what + ": the state size M must be at least 1, but A has shape (0,)");
    if (b.shape(0) != M)
        throw Error(what + ": B has shape " + shape_str({b.shape(0)}) + " but A has M = " + std::to_string(M) +
                    "; expected B of shape (" + std::to_string(M) + ",)");
    if (!(delta > 0) || !std::isfinite(delta))
        throw Error(what + ": the step Delta must be finite and > 0, got " + num_str(delta));
    for (std::size_t m = 0; m < M; ++m) {
        if (!finite(a(m)))
            throw Error(what + ": A must be finite, but A(" + std::to_string(m) + ") = " + num_str(a(m)));
        if (!finite(b(m)))
            throw Error(what + ": B must be finite, but B(" + std::to_string(m) + ") = " + num_str(b(m)));
        if (!(a(m).real() < 0))
            throw Error(what + ": Re A(" + std::to_string(m) + ") = " + num_str(a(m).real()) +
                        " >= 0 is unstable (|Lambda| = exp(Delta Re A) >= 1); S4D needs Re A < 0");
    }
    DiagonalSsm<double> s{cvec<double>(M), cvec<double>(M)};
    for (std::size_t m = 0; m < M; ++m) {
        const std::complex<double> w = delta * a(m);
        if (!finite(w))
            throw Error(what + ": Delta A(" + std::to_string(m) + ") = " + num_str(delta) + " x " + num_str(a(m)) +
                        " overflows; the step Delta = " + num_str(delta) + " is far too large");
        s.lambda(m) = std::exp(w);                 // Lambda = exp(Delta A)                    eq:P11
        s.bbar(m) = expm1_complex(w) / a(m) * b(m);  // Bbar = (exp(Delta A) - 1) / A * B (ZOH)   eq:4.zoh
    }
    return s;
}

DiagonalSsm<double> s4d(S4dInit init, std::size_t M, double delta) {
    const auto a = s4d_a(init, M);
    auto b = cvec<double>(M);
    for (auto& e : b) e = 1.0;  // B = 1 (S4D's initialisation)
    return s4d_zoh(a, b, delta);
}

DiagonalSsm<double> damped_fourier(std::size_t L, double alpha) {
    if (L == 0) throw Error("damped_fourier: the period L (= M) must be at least 1, got 0");
    if (!(alpha >= 0) || !std::isfinite(alpha))
        throw Error("damped_fourier: the damping alpha must be finite and >= 0, got " + num_str(alpha));
    const double pi = std::numbers::pi;
    DiagonalSsm<double> s{cvec<double>(L), cvec<double>(L)};
    for (std::size_t m = 0; m < L; ++m) {
        s.lambda(m) = std::exp(std::complex<double>(-alpha, 2 * pi * double(m) / double(L)));  // eq:4.6
        s.bbar(m) = 1 / std::sqrt(double(L));  // B_m = 1/sqrt(L), applied directly       eq:4.6
    }
    // Lags tau and tau + jL share every mode (Lambda_m^L = e^{-alpha L}): beyond L
    // the basis aliases, damped by exp(-alpha L).                                     eq:4.alias
    return s;
}

template <class T>
DiagonalSsm<T> ssm_cast(const DiagonalSsm<double>& s) {
    DiagonalSsm<T> out{cvec<T>(s.lambda.shape(0)),
                       cvec<T>(s.bbar.shape(0))};
    for (std::size_t m = 0; m < s.lambda.shape(0); ++m) out.lambda(m) = std::complex<T>(s.lambda(m));
    for (std::size_t m = 0; m < s.bbar.shape(0); ++m) out.bbar(m) = std::complex<T>(s.bbar(m));
    return out;
}

template <class T>
void check_ssm(const std::string& what, const DiagonalSsm<T>& s) {
    const std::size_t M = s.lambda.shape(0);
    if (M == 0) throw Error(what + ": the state size M must be at least 1, but Lambda has shape (0,)");
    if (s.bbar.shape(0) != M)
        throw Error(what + ": Bbar has shape " + shape_str({s.bbar.shape(0)}) + " but Lambda has M = " +
                    std::to_string(M) + "; expected Bbar of shape (" + std::to_string(M) + ",)");
    for (std::size_t m = 0; m < M; ++m) {
        if (!finite(s.lambda(m)))
            throw Error(what + ": Lambda must be finite, but Lambda(" + std::to_string(m) + ") = " +
                        num_str(s.lambda(m)));
        if (!finite(s.bbar(m)))
            throw Error(what + ": Bbar must be finite, but Bbar(" + std::to_string(m) + ") = " + num_str(s.bbar(m)));
        // |Lambda| = 1 (undamped, e.g. the plain DFT basis) is allowed up to float32
        // rounding, for every T: a float32 parameter set widened to double (how the
        // fast kernels are checked against the reference) has |Lambda| = 1 + O(1e-8).
        if (std::abs(s.lambda(m)) > T(1) + 8 * T(std::numeric_limits<float>::epsilon()))
            throw Error(what + ": |Lambda(" + std::to_string(m) + ")| = " + num_str(std::abs(s.lambda(m))) +
                        " > 1 is unstable (the state grows without bound); need |Lambda| <= 1");
    }
}

template <class T>
std::complex<T> lambda_power(std::complex<T> lambda, std::size_t k) {
    if (k == 0) return T(1);                          // Lambda^0 = 1
    if (lambda == std::complex<T>(0)) return T(0);    // 0^k = 0 (log 0 would give NaN)
    return std::exp(T(k) * std::log(lambda));         // Lambda^k = exp(k log Lambda)       eq:4.psi
}

template <class T>
xt::xtensor<std::complex<T>, 2> impulse_response(const DiagonalSsm<T>& s, std::size_t N) {
    check_ssm("impulse_response", s);
    const std::size_t M = s.lambda.shape(0);
    xt::xtensor<std::complex<T>, 2> psi({N, M});
    for (std::size_t tau = 0; tau < N; ++tau)
        for (std::size_t m = 0; m < M; ++m)
            psi(tau, m) = lambda_power(s.lambda(m), tau) * s.bbar(m);  // psi_m(tau) = Lambda_m^tau Bbar_m   eq:4.psi
    return psi;
}

// ---- The four forms ---------------------------------------------------------------------

std::string ssm_form_name(SsmForm f) {
    switch (f) {
        case SsmForm::Recurrence: return "recurrence";
        case SsmForm::Explicit: return "explicit";
        case SsmForm::Fft: return "fft";
        case SsmForm::Chunked: return "chunked";
    }
    return "?";
}

template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_recurrence(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z) {
    check_ssm("ssm_states_recurrence", s);
    check_z("ssm_states_recurrence", z);
    const std::size_t N = z.shape(0), C = z.shape(1), M = s.lambda.shape(0);
    xt::xtensor<std::complex<T>, 3> x({N, M, C});
    std::vector<std::complex<T>> state(M * C, std::complex<T>(0));
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t c = 0; c < C; ++c) {
                // x_t = Lambda (.) x_{t-1} + Bbar z_t, x_{-1} = 0                     eq:P11
                state[m * C + c] = s.lambda(m) * state[m * C + c] + s.bbar(m) * z(t, c);
                x(t, m, c) = state[m * C + c];
            }
    return x;
}

template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_explicit(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z) {
    check_ssm("ssm_states_explicit", s);
    check_z("ssm_states_explicit", z);
    const std::size_t N = z.shape(0), C = z.shape(1), M = s.lambda.shape(0);
    const auto psi = impulse_response(s, N);
    xt::xtensor<std::complex<T>, 3> x({N, M, C});
    for (std::size_t t = 0; t < N; ++t)
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t c = 0; c < C; ++c) {
                // x_t = sum_{n <= t} psi(t - n) z_n: the projection onto the basis psi   eq:4.3
                std::complex<T> acc = 0;
                for (std::size_t n = 0; n <= t; ++n) acc += psi(t - n, m) * z(n, c);
                x(t, m, c) = acc;
            }
    return x;
}

template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states_chunked(const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z,
                                                   std::size_t chunk) {
    check_ssm("ssm_states_chunked", s);
    check_z("ssm_states_chunked", z);
    if (chunk == 0) throw Error("ssm_states_chunked: the chunk size K must be at least 1, got 0");
    const std::size_t N = z.shape(0), C = z.shape(1), M = s.lambda.shape(0);
    const std::size_t K = std::min(chunk, N), nchunks = (N + K - 1) / K;
    // Powers Lambda^k, k = 0..K, shared by every chunk.
    xt::xtensor<std::complex<T>, 2> pw({K + 1, M});
    for (std::size_t k = 0; k <= K; ++k)
        for (std::size_t m = 0; m < M; ++m) pw(k, m) = lambda_power(s.lambda(m), k);

    // Pass 1 (independent per chunk, parallel on a GPU): the chunk's own end
    // state from a zero start, S_j = sum_{n in chunk} Lambda^{c1-1-n} Bbar z_n.   eq:4.chunk
    xt::xtensor<std::complex<T>, 3> local({nchunks, M, C});
    for (std::size_t j = 0; j < nchunks; ++j) {
        const std::size_t c0 = j * K, c1 = std::min(N, c0 + K);
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t c = 0; c < C; ++c) {
                std::complex<T> acc = 0;
                for (std::size_t n = c0; n < c1; ++n) acc += pw(c1 - 1 - n, m) * s.bbar(m) * z(n, c);
                local(j, m, c) = acc;
            }
    }
    // Pass 2 (serial over the N/K chunk boundaries): the state entering chunk j,
    // H_j = Lambda^{len_{j-1}} H_{j-1} + S_{j-1}, H_0 = 0.                          eq:4.chunk
    xt::xtensor<std::complex<T>, 3> enter = xt::zeros<std::complex<T>>({nchunks, M, C});
    for (std::size_t j = 1; j < nchunks; ++j) {
        const std::size_t len = K;  // every chunk but the last is full
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t c = 0; c < C; ++c)
                enter(j, m, c) = pw(len, m) * enter(j - 1, m, c) + local(j - 1, m, c);
    }
    // Pass 3 (independent per chunk): x_t = Lambda^{t-c0+1} H_j + sum_{c0 <= n <= t} Lambda^{t-n} Bbar z_n.   eq:4.chunk
    xt::xtensor<std::complex<T>, 3> x({N, M, C});
    for (std::size_t j = 0; j < nchunks; ++j) {
        const std::size_t c0 = j * K, c1 = std::min(N, c0 + K);
        for (std::size_t t = c0; t < c1; ++t)
            for (std::size_t m = 0; m < M; ++m)
                for (std::size_t c = 0; c < C; ++c) {
                    std::complex<T> acc = pw(t - c0 + 1, m) * enter(j, m, c);
                    for (std::size_t n = c0; n <= t; ++n) acc += pw(t - n, m) * s.bbar(m) * z(n, c);
                    x(t, m, c) = acc;
                }
    }
    return x;
}

template <class T>
xt::xtensor<std::complex<T>, 3> ssm_states(SsmForm form, const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& z,
                                           std::size_t chunk) {
    switch (form) {
        case SsmForm::Recurrence: return ssm_states_recurrence(s, z);
        case SsmForm::Explicit: return ssm_states_explicit(s, z);
        case SsmForm::Fft: return ssm_states_fft(s, z);
        case SsmForm::Chunked: return ssm_states_chunked(s, z, chunk);
    }
    throw Error("ssm_states: unknown form");
}

// ---- Interdomain attention over the SSM basis --------------------------------------------

void check_ssm_attention_inputs(const std::string& what, const std::vector<std::size_t>& fq,
                                const std::vector<std::size_t>& fk, const std::vector<std::size_t>& v) {
    check_linear_inputs(what, fq, fk, v, /*causal=*/true);  // the shapes of causal (P4), chapter 2
}

template <class T>
xt::xtensor<T, 2> ssm_channels(const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v) {
    if (fk.shape(0) != v.shape(0))
        throw Error("ssm_channels: v has shape " + shape_str(shape_of(v)) + " but key features have N = " +
                    std::to_string(fk.shape(0)) + " rows");
    const std::size_t N = fk.shape(0), R = fk.shape(1), d = v.shape(1);
    xt::xtensor<T, 2> z({N, R + d + 1});
    for (std::size_t n = 0; n < N; ++n) {
        // z_n = [xi(k_n), v_n, 1]: one recurrence for every channel                eq:4.channels
        for (std::size_t r = 0; r < R; ++r) z(n, r) = fk(n, r);
        for (std::size_t c = 0; c < d; ++c) z(n, R + c) = v(n, c);
        z(n, R + d) = 1;
    }
    return z;
}

template <class T>
Readout<T> ssm_attention_parts(SsmForm form, const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& fq,
                               const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v, std::size_t chunk) {
    const std::string what = "ssm_attention(" + ssm_form_name(form) + ")";
    check_ssm_attention_inputs(what, shape_of(fq), shape_of(fk), shape_of(v));
    check_ssm(what, s);
    require_finite(what, "query features", fq.data(), shape_of(fq));
    require_finite(what, "key features", fk.data(), shape_of(fk));
    require_finite(what, "v", v.data(), shape_of(v));
    if (form == SsmForm::Chunked && chunk == 0)
        throw Error(what + ": the chunk size K must be at least 1, got 0");
    const std::size_t nq = fq.shape(0), N = fk.shape(0), R = fq.shape(1), d = v.shape(1), M = s.lambda.shape(0);
    const std::size_t C = R + d + 1, offset = N - nq;
    const xt::xtensor<T, 2> z = ssm_channels(fk, v);
    Readout<T> out{xt::xtensor<T, 2>({nq, d}), xt::xtensor<T, 1>(std::array<std::size_t, 1>{nq})};
    if (form == SsmForm::Recurrence) {
        // Streaming: one state X_t (M, C), read by the query at position t (decode).   eq:P11 eq:4.readout
        xt::xtensor<std::complex<T>, 2> x = xt::zeros<std::complex<T>>({M, C});
        for (std::size_t t = 0; t < N; ++t) {
            for (std::size_t m = 0; m < M; ++m)
                for (std::size_t c = 0; c < C; ++c) x(m, c) = s.lambda(m) * x(m, c) + s.bbar(m) * z(t, c);
            if (t >= offset) read_state(fq, t - offset, x, R, d, out);
        }
        return out;
    }
    const xt::xtensor<std::complex<T>, 3> states = ssm_states(form, s, z, chunk);
    for (std::size_t i = 0; i < nq; ++i) {
        const auto x = xt::view(states, i + offset, xt::all(), xt::all());  // X at the query's position
        read_state(fq, i, x, R, d, out);
    }
    return out;
}

template <class T>
xt::xtensor<T, 2> ssm_attention(SsmForm form, const DiagonalSsm<T>& s, const xt::xtensor<T, 2>& fq,
                                const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v, std::size_t chunk) {
    const Readout<T> p = ssm_attention_parts(form, s, fq, fk, v, chunk);
    xt::xtensor<T, 2> o(p.num.shape());
    for (std::size_t i = 0; i < o.shape(0); ++i)
        for (std::size_t c = 0; c < o.shape(1); ++c) o(i, c) = p.num(i, c) / p.den(i);  // eq:4.readout
    return o;
}

template <class T>
Readout<T> decayed_linear_attention_parts(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                          const xt::xtensor<T, 2>& v, T alpha) {
    const std::string what = "decayed_linear_attention";
    check_ssm_attention_inputs(what, shape_of(fq), shape_of(fk), shape_of(v));
    if (!(alpha >= 0) || !std::isfinite(alpha))
        throw Error(what + ": the damping alpha must be finite and >= 0, got " + num_str(alpha));
    const std::size_t nq = fq.shape(0), N = fk.shape(0), R = fq.shape(1), d = v.shape(1), offset = N - nq;
    Readout<T> out{xt::zeros<T>({nq, d}), xt::zeros<T>({nq})};
    for (std::size_t i = 0; i < nq; ++i) {
        const std::size_t p = i + offset;
        for (std::size_t n = 0; n <= p; ++n) {
            T k = 0;
            for (std::size_t r = 0; r < R; ++r) k += fq(i, r) * fk(n, r);
            // weight xi(q_i)^T xi(k_n) exp(-2 alpha tau), tau = p - n                 eq:4.6
            const T w = k * std::exp(-2 * alpha * T(p - n));
            for (std::size_t c = 0; c < d; ++c) out.num(i, c) += w * v(n, c);
            out.den(i) += w;
        }
    }
    return out;
}

#define IDATTN_INSTANTIATE(T)                                                                                      \
    template DiagonalSsm<T> ssm_cast<T>(const DiagonalSsm<double>&);                                               \
    template void check_ssm<T>(const std::string&, const DiagonalSsm<T>&);                                        \
    template std::complex<T> lambda_power<T>(std::complex<T>, std::size_t);                                        \
    template xt::xtensor<std::complex<T>, 2> impulse_response<T>(const DiagonalSsm<T>&, std::size_t);              \
    template xt::xtensor<std::complex<T>, 3> ssm_states_recurrence<T>(const DiagonalSsm<T>&,                       \
                                                                      const xt::xtensor<T, 2>&);                   \
    template xt::xtensor<std::complex<T>, 3> ssm_states_explicit<T>(const DiagonalSsm<T>&, const xt::xtensor<T, 2>&); \
    template xt::xtensor<std::complex<T>, 3> ssm_states_chunked<T>(const DiagonalSsm<T>&, const xt::xtensor<T, 2>&, \
                                                                   std::size_t);                                   \
    template xt::xtensor<std::complex<T>, 3> ssm_states<T>(SsmForm, const DiagonalSsm<T>&, const xt::xtensor<T, 2>&, \
                                                           std::size_t);                                           \
    template xt::xtensor<T, 2> ssm_channels<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);                \
    template Readout<T> ssm_attention_parts<T>(SsmForm, const DiagonalSsm<T>&, const xt::xtensor<T, 2>&,           \
                                               const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&, std::size_t);   \
    template xt::xtensor<T, 2> ssm_attention<T>(SsmForm, const DiagonalSsm<T>&, const xt::xtensor<T, 2>&,          \
                                                const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&, std::size_t);  \
    template Readout<T> decayed_linear_attention_parts<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&,      \
                                                          const xt::xtensor<T, 2>&, T);

IDATTN_INSTANTIATE(double)
IDATTN_INSTANTIATE(float)
#undef IDATTN_INSTANTIATE

}  // namespace idattn::ref
