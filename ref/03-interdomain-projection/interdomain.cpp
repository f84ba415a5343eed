// Chapter 3 reference: the interdomain projection (P6), the readout (P8)/(P9),
// the effective attention matrix (eq:3.4) and the Hermitian readout of a
// complex basis (eq:3.5). Equation labels refer to
// chapters/03-interdomain-projection.md.
#include "ref/03-interdomain-projection/interdomain.hpp"

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "ref/02-kernel-feature-map/linear_attention.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::ref {

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
