// Chapter 3 reference. Equation labels refer to chapters/03-interdomain-projection.md.
#include "ref/03-interdomain-projection/interdomain.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::ref {

Basis parse_basis(const std::string& name) {
    if (name == "legs") return Basis::LegS;
    if (name == "gram") return Basis::Gram;
    if (name == "dct") return Basis::Dct;
    if (name == "fourier") return Basis::Fourier;
    throw Error("--basis must be 'legs' (scaled Legendre, HiPPO-LegS), 'gram' (discrete Legendre polynomials), "
                "'dct' (DCT-II) or 'fourier' (complex, unitary DFT rows), got '" + name + "'");
}

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

void check_interdomain_inputs(const std::string& what, Basis b, std::size_t M, const std::vector<std::size_t>& fq,
                              const std::vector<std::size_t>& fk, const std::vector<std::size_t>& v, bool causal) {
    check_linear_inputs(what, fq, fk, v, causal);  // the shapes of (P4), chapter 2
    check_basis_size(what, b, M, fk[0]);
}

namespace {

template <class T>
std::vector<std::size_t> shape_of(const xt::xtensor<T, 2>& a) {
    return {a.shape(0), a.shape(1)};
}

template <class T>
void require_finite_matrix(const std::string& what, const std::string& name, const xt::xtensor<T, 2>& a) {
    require_finite(what, name, a.data(), shape_of(a));
}

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

// One query row of (P9) read from a projection (the readout of eq:P8).
template <class T>
xt::xtensor<T, 2> row(const xt::xtensor<T, 2>& fq, std::size_t i) {
    return xt::view(fq, xt::range(i, i + 1), xt::all());
}

template <class T>
xt::xtensor<T, 2> head(const xt::xtensor<T, 2>& a, std::size_t L) {
    return xt::view(a, xt::range(0, L), xt::all());
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

// ---- Projection and readout --------------------------------------------------

namespace {

// The shape and value checks of project (real or complex Phi).
template <class P, class T>
void check_projection(const xt::xtensor<P, 2>& phi, const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v) {
    const std::string what = "project";
    require_sane_size(what, "the basis matrix Phi", shape_of(phi));
    require_sane_size(what, "key features", shape_of(fk));
    require_sane_size(what, "v", shape_of(v));
    const std::size_t N = fk.shape(0);
    if (phi.shape(1) != N)
        throw Error(what + ": the basis matrix Phi has shape " + shape_str(shape_of(phi)) + " but there are N = " +
                    std::to_string(N) + " key features; expected Phi of shape (M, " + std::to_string(N) + ")");
    if (v.shape(0) != N)
        throw Error(what + ": v has shape " + shape_str(shape_of(v)) + " but there are N = " + std::to_string(N) +
                    " key features; expected v of shape (" + std::to_string(N) + ", d)");
    require_finite_matrix(what, "key features", fk);
    require_finite_matrix(what, "v", v);
}

}  // namespace

template <class T>
Projection<T> project(const xt::xtensor<T, 2>& phi, const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v) {
    check_projection(phi, fk, v);
    require_finite_matrix("project", "Phi", phi);
    Projection<T> p;
    p.U = xt::linalg::dot(phi, fk);     // u_m     = sum_n Phi[m][n] xi(k_n)          eq:P6
    p.Gamma = xt::linalg::dot(phi, v);  // gamma_m = sum_n Phi[m][n] v_n              eq:P6
    p.eta = xt::sum(phi, {1});          // eta_m   = sum_n Phi[m][n] = int phi_m       eq:P6 eq:3.eta
    return p;
}

template <class T>
Projection<std::complex<T>> project(const xt::xtensor<std::complex<T>, 2>& phi, const xt::xtensor<T, 2>& fk,
                                    const xt::xtensor<T, 2>& v) {
    check_projection(phi, fk, v);
    using C = std::complex<T>;
    const xt::xtensor<C, 2> fkc = xt::cast<C>(fk), vc = xt::cast<C>(v);
    Projection<C> p;
    p.U = xt::linalg::dot(phi, fkc);    // u_m     = sum_n Phi[m][n] xi(k_n), complex Phi     eq:P6 eq:3.5
    p.Gamma = xt::linalg::dot(phi, vc); // gamma_m = sum_n Phi[m][n] v_n                      eq:P6
    p.eta = xt::sum(phi, {1});          // eta_m   = sum_n Phi[m][n]                          eq:P6
    return p;
}

template <class T>
xt::xtensor<T, 2> readout(const xt::xtensor<T, 2>& fq, const Projection<T>& p) {
    if (fq.shape(1) != p.U.shape(1))
        throw Error("readout: query features have shape " + shape_str(shape_of(fq)) + " but U has shape " +
                    shape_str(shape_of(p.U)) + "; expected query features of shape (Nq, " +
                    std::to_string(p.U.shape(1)) + ")");
    // A = F_q U^T, A_im = xi(q_i)^T u_m: the query against each state.             eq:P8
    const xt::xtensor<T, 2> a = xt::linalg::dot(fq, xt::transpose(p.U));
    // O = F_q U^T Gamma / (F_q U^T eta), row by row.                              eq:P9
    xt::xtensor<T, 2> num = xt::linalg::dot(a, p.Gamma);
    const xt::xtensor<T, 1> den = xt::linalg::dot(a, p.eta);
    for (std::size_t i = 0; i < num.shape(0); ++i) xt::view(num, i, xt::all()) /= den(i);
    return num;
}

template <class T>
xt::xtensor<T, 2> interdomain_attention(Basis b, std::size_t M, const xt::xtensor<T, 2>& fq,
                                        const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v, bool causal) {
    const std::string what = "interdomain_attention";
    check_interdomain_inputs(what, b, M, shape_of(fq), shape_of(fk), shape_of(v), causal);
    if (is_complex(b))
        throw Error(what + ": the fourier basis is complex; use the Hermitian readout "
                    "(interdomain_attention_hermitian, eq:3.5)");
    require_finite_matrix(what, "query features", fq);
    const std::size_t nq = fq.shape(0), N = fk.shape(0);
    // Equal to (P4) when the key features lie in the span of the basis (eq:3.2),
    // in particular for a discrete basis with M = N (eq:3.3); otherwise the
    // error is that of the key-feature reconstruction of eq:P7.
    if (!causal) {
        // Project every token once, then every query reads the same M states.        eq:P6 eq:P9
        return readout(fq, project(basis_matrix<T>(b, M, N), fk, v));
    }
    // Causal: query i reads U^(i), Gamma^(i), eta^(i), the projection of its own
    // prefix 0..p_i onto the basis of that prefix (M_i functions).                 eq:3.causal
    xt::xtensor<T, 2> o({nq, v.shape(1)});
    for (std::size_t i = 0; i < nq; ++i) {
        const std::size_t L = i + (N - nq) + 1;  // p_i + 1 visible tokens
        const auto phi_i = basis_matrix<T>(b, causal_basis_size(b, M, L), L);
        const auto p_i = project(phi_i, head(fk, L), head(v, L));  // eq:P6
        xt::view(o, i, xt::all()) = xt::view(readout(row(fq, i), p_i), 0, xt::all());  // eq:P9
    }
    return o;
}

// ---- The effective attention matrix --------------------------------------------

template <class T>
xt::xtensor<T, 2> projection_kernel(Basis b, std::size_t M, std::size_t N) {
    const auto phi = basis_matrix<T>(b, M, N);
    return xt::linalg::dot(xt::transpose(phi), phi);  // P = Phi^T Phi              eq:3.4
}

template <class T>
xt::xtensor<T, 2> effective_weights(Basis b, std::size_t M, const xt::xtensor<T, 2>& fq,
                                    const xt::xtensor<T, 2>& fk, bool causal) {
    const std::string what = "effective_weights";
    check_interdomain_inputs(what, b, M, shape_of(fq), shape_of(fk), {fk.shape(0), 1}, causal);
    if (is_complex(b))
        throw Error(what + ": the fourier basis is complex; its effective kernel is Re(Phi^H Phi) (eq:3.5), "
                    "not built here");
    require_finite_matrix(what, "query features", fq);
    require_finite_matrix(what, "key features", fk);
    const std::size_t nq = fq.shape(0), N = fk.shape(0);
    if (!causal) {
        // The key features replaced by their reconstruction from the M states,
        // xi~(k_n) = sum_m u_m Phi[m][n], i.e. F~_k = Phi^T U = P F_k.                 eq:P7
        const auto phi = basis_matrix<T>(b, M, N);
        const xt::xtensor<T, 2> rec = xt::linalg::dot(xt::transpose(phi), xt::linalg::dot(phi, fk));
        // W = F_q F~_k^T = (F_q F_k^T) P: (P4)'s kernel matrix through P.              eq:3.4
        return xt::linalg::dot(fq, xt::transpose(rec));
    }
    xt::xtensor<T, 2> w = xt::zeros<T>({nq, N});
    for (std::size_t i = 0; i < nq; ++i) {
        const std::size_t L = i + (N - nq) + 1;
        // The prefix's own basis and reconstruction; weight 0 beyond the prefix.   eq:3.causal eq:P7
        const auto phi = basis_matrix<T>(b, causal_basis_size(b, M, L), L);
        const xt::xtensor<T, 2> rec = xt::linalg::dot(xt::transpose(phi), xt::linalg::dot(phi, head(fk, L)));
        for (std::size_t n = 0; n < L; ++n) {
            T s = 0;
            for (std::size_t r = 0; r < fq.shape(1); ++r) s += fq(i, r) * rec(n, r);  // eq:3.4
            w(i, n) = s;
        }
    }
    return w;
}

template <class T>
xt::xtensor<T, 2> effective_attention(const xt::xtensor<T, 2>& w, const xt::xtensor<T, 2>& v) {
    if (w.shape(1) != v.shape(0))
        throw Error("effective_attention: the weights have shape " + shape_str(shape_of(w)) + " but v has shape " +
                    shape_str(shape_of(v)) + "; expected v of shape (" + std::to_string(w.shape(1)) + ", d)");
    // O[i] = sum_n W[i][n] v_n / sum_n W[i][n]: kernel attention with weights W.    eq:3.4
    xt::xtensor<T, 2> num = xt::linalg::dot(w, v);
    const xt::xtensor<T, 1> den = xt::sum(w, {1});
    for (std::size_t i = 0; i < num.shape(0); ++i) xt::view(num, i, xt::all()) /= den(i);
    return num;
}

// ---- Complex basis, Hermitian readout ------------------------------------------

template <class T>
xt::xtensor<T, 2> interdomain_attention_hermitian(std::size_t M, const xt::xtensor<T, 2>& fq,
                                                  const xt::xtensor<T, 2>& fk, const xt::xtensor<T, 2>& v) {
    const std::string what = "interdomain_attention_hermitian";
    check_interdomain_inputs(what, Basis::Fourier, M, shape_of(fq), shape_of(fk), shape_of(v), false);
    require_finite_matrix(what, "query features", fq);
    require_finite_matrix(what, "key features", fk);
    require_finite_matrix(what, "v", v);
    using C = std::complex<T>;
    const std::size_t nq = fq.shape(0), N = fk.shape(0), R = fk.shape(1), d = v.shape(1);
    const auto phi = fourier_basis_matrix<T>(M, N);
    // U = Phi F_k, Gamma = Phi V, eta = Phi 1, complex (M x R, M x d, M).           eq:P6 eq:3.5
    xt::xtensor<C, 2> U = xt::zeros<C>({M, R}), G = xt::zeros<C>({M, d});
    xt::xtensor<C, 1> eta = xt::zeros<C>({M});
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t n = 0; n < N; ++n) {
            for (std::size_t r = 0; r < R; ++r) U(m, r) += phi(m, n) * fk(n, r);
            for (std::size_t c = 0; c < d; ++c) G(m, c) += phi(m, n) * v(n, c);
            eta(m) += phi(m, n);
        }
    // O = Re(F_q U^H Gamma) / Re(F_q U^H eta): a_im = xi(q_i)^T conj(u_m).          eq:3.5
    xt::xtensor<T, 2> o({nq, d});
    for (std::size_t i = 0; i < nq; ++i) {
        std::vector<C> a(M, C(0));
        for (std::size_t m = 0; m < M; ++m)
            for (std::size_t r = 0; r < R; ++r) a[m] += fq(i, r) * std::conj(U(m, r));
        C den = 0;
        for (std::size_t m = 0; m < M; ++m) den += a[m] * eta(m);
        for (std::size_t c = 0; c < d; ++c) {
            C num = 0;
            for (std::size_t m = 0; m < M; ++m) num += a[m] * G(m, c);
            o(i, c) = num.real() / den.real();
        }
    }
    return o;
}

#define IDATTN_INSTANTIATE(T)                                                                                         \
    template xt::xtensor<T, 2> basis_matrix<T>(Basis, std::size_t, std::size_t);                                     \
    template xt::xtensor<std::complex<T>, 2> fourier_basis_matrix<T>(std::size_t, std::size_t);                       \
    template Projection<T> project<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);  \
    template Projection<std::complex<T>> project<T>(const xt::xtensor<std::complex<T>, 2>&, const xt::xtensor<T, 2>&,  \
                                                    const xt::xtensor<T, 2>&);                                         \
    template xt::xtensor<T, 2> readout<T>(const xt::xtensor<T, 2>&, const Projection<T>&);                            \
    template xt::xtensor<T, 2> interdomain_attention<T>(Basis, std::size_t, const xt::xtensor<T, 2>&,                 \
                                                        const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&, bool);    \
    template xt::xtensor<T, 2> projection_kernel<T>(Basis, std::size_t, std::size_t);                                 \
    template xt::xtensor<T, 2> effective_weights<T>(Basis, std::size_t, const xt::xtensor<T, 2>&,                     \
                                                    const xt::xtensor<T, 2>&, bool);                                  \
    template xt::xtensor<T, 2> effective_attention<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);            \
    template xt::xtensor<T, 2> interdomain_attention_hermitian<T>(std::size_t, const xt::xtensor<T, 2>&,              \
                                                                  const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);

IDATTN_INSTANTIATE(double)
IDATTN_INSTANTIATE(float)
#undef IDATTN_INSTANTIATE

}  // namespace idattn::ref
