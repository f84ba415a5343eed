// Chapter 2 reference: linear attention (P4) in its quadratic, recurrent,
// chunked and streaming-stable forms. Equation labels refer to
// chapters/02-kernel-feature-map.md.
#include "ref/02-kernel-feature-map/linear_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::ref {

namespace {

// Row i of (P4) read from the recurrent state: o_i = S^T xi(q_i) / z^T xi(q_i).   eq:P4
template <class T>
void read_state(const xt::xtensor<T, 2>& fq, std::size_t i, const xt::xtensor<T, 2>& S, const xt::xtensor<T, 1>& z,
                xt::xtensor<T, 2>& o) {
    const std::size_t rf = fq.shape(1), dv = S.shape(1);
    T den = 0;
    for (std::size_t r = 0; r < rf; ++r) den += fq(i, r) * z(r);
    for (std::size_t c = 0; c < dv; ++c) {
        T num = 0;
        for (std::size_t r = 0; r < rf; ++r) num += fq(i, r) * S(r, c);
        o(i, c) = num / den;
    }
}

template <class T>
std::vector<std::size_t> shape_of(const xt::xtensor<T, 2>& a) {
    return {a.shape(0), a.shape(1)};
}

}  // namespace

// ---- Linear attention --------------------------------------------------------

void check_linear_inputs(const std::string& what, const std::vector<std::size_t>& fq,
                         const std::vector<std::size_t>& fk, const std::vector<std::size_t>& v, bool causal) {
    require_rank(what, "query features", fq, {2});
    require_rank(what, "key features", fk, {2});
    require_rank(what, "v", v, {2});
    require_sane_size(what, "query features", fq);
    require_sane_size(what, "key features", fk);
    require_sane_size(what, "v", v);
    if (fk[1] != fq[1])
        throw Error(what + ": key features have shape " + shape_str(fk) + " but query features have " +
                    std::to_string(fq[1]) + " features per row; expected (N, " + std::to_string(fq[1]) + ")");
    if (v[0] != fk[0])
        throw Error(what + ": v has shape " + shape_str(v) + " but there are N = " + std::to_string(fk[0]) +
                    " keys; expected v of shape (" + std::to_string(fk[0]) + ", d)");
    if (causal && fq[0] > fk[0])
        throw Error(what + ": causal attention needs Nq <= N (queries are the last Nq of N positions), "
                    "but Nq = " + std::to_string(fq[0]) + " and N = " + std::to_string(fk[0]));
}

template <class T>
xt::xtensor<T, 2> linear_attention_quadratic(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                             const xt::xtensor<T, 2>& v, bool causal) {
    check_linear_inputs("linear_attention_quadratic", shape_of(fq), shape_of(fk), shape_of(v), causal);
    const std::size_t nq = fq.shape(0), n = fk.shape(0), offset = n - nq;
    // A = F_q F_k^T, A_in = xi(q_i)^T xi(k_n)                                     eq:P3
    xt::xtensor<T, 2> a = feature_kernel_matrix(fq, fk);
    // Causal: keys after the query get weight 0 (tril with the chapter 1 alignment).  eq:1.causal eq:2.5
    if (causal)
        for (std::size_t i = 0; i < nq; ++i)
            for (std::size_t j = i + offset + 1; j < n; ++j) a(i, j) = 0;
    // o_i = sum_n A_in v_n / sum_n A_in                                            eq:P4
    xt::xtensor<T, 2> num = xt::linalg::dot(a, v);
    xt::xtensor<T, 2> den = xt::sum(a, {1}, xt::keep_dims);
    return num / den;
}

template <class T>
xt::xtensor<T, 2> linear_attention_recurrent(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                             const xt::xtensor<T, 2>& v, bool causal) {
    check_linear_inputs("linear_attention_recurrent", shape_of(fq), shape_of(fk), shape_of(v), causal);
    const std::size_t nq = fq.shape(0), n = fk.shape(0), rf = fq.shape(1), dv = v.shape(1);
    const std::size_t offset = n - nq;
    xt::xtensor<T, 2> S = xt::zeros<T>({rf, dv});  // S = sum_n xi(k_n) v_n^T
    xt::xtensor<T, 1> z = xt::zeros<T>({rf});      // z = sum_n xi(k_n)
    xt::xtensor<T, 2> o = xt::zeros<T>({nq, dv});
    auto read = [&](std::size_t i) { read_state(fq, i, S, z, o); };  // eq:P4
    for (std::size_t j = 0; j < n; ++j) {
        // S_j = S_{j-1} + xi(k_j) v_j^T,  z_j = z_{j-1} + xi(k_j)                   eq:2.recurrence
        for (std::size_t r = 0; r < rf; ++r) {
            z(r) += fk(j, r);
            for (std::size_t c = 0; c < dv; ++c) S(r, c) += fk(j, r) * v(j, c);
        }
        if (causal && j >= offset) read(j - offset);  // query j - offset sits at position j
    }
    if (!causal)
        for (std::size_t i = 0; i < nq; ++i) read(i);
    return o;
}

template <class T>
xt::xtensor<T, 2> linear_attention_chunked(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                           const xt::xtensor<T, 2>& v, bool causal, std::size_t chunk) {
    check_linear_inputs("linear_attention_chunked", shape_of(fq), shape_of(fk), shape_of(v), causal);
    if (chunk == 0) throw Error("linear_attention_chunked: the chunk size must be at least 1, got 0");
    const std::size_t nq = fq.shape(0), n = fk.shape(0), rf = fq.shape(1), dv = v.shape(1);
    const std::size_t offset = n - nq;
    xt::xtensor<T, 2> S = xt::zeros<T>({rf, dv});  // state of all earlier chunks
    xt::xtensor<T, 2> z = xt::zeros<T>({rf, std::size_t{1}});
    xt::xtensor<T, 2> o = xt::zeros<T>({nq, dv});
    for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
        const std::size_t c1 = std::min(n, c0 + chunk);
        const xt::xtensor<T, 2> fk_c = xt::view(fk, xt::range(c0, c1), xt::all());
        const xt::xtensor<T, 2> v_c = xt::view(v, xt::range(c0, c1), xt::all());
        if (causal) {
            // The queries sitting at positions c0..c1-1 of this chunk.
            const std::size_t i0 = std::max(c0, offset) - offset, i1 = c1 > offset ? c1 - offset : 0;
            if (i0 < i1) {
                const xt::xtensor<T, 2> fq_c = xt::view(fq, xt::range(i0, i1), xt::all());
                // inter-chunk: the state of keys < c0;  intra-chunk: masked quadratic.   eq:2.chunk
                xt::xtensor<T, 2> a = xt::linalg::dot(fq_c, xt::transpose(fk_c));
                for (std::size_t i = i0; i < i1; ++i)
                    for (std::size_t j = i + offset + 1; j < c1; ++j) a(i - i0, j - c0) = 0;  // eq:1.causal
                xt::xtensor<T, 2> num = xt::linalg::dot(fq_c, S) + xt::linalg::dot(a, v_c);
                xt::xtensor<T, 2> den = xt::linalg::dot(fq_c, z) + xt::sum(a, {1}, xt::keep_dims);
                xt::view(o, xt::range(i0, i1), xt::all()) = num / den;  // eq:P4
            }
        }
        // State update with the whole chunk: S += F_k,c^T V_c, z += F_k,c^T 1.   eq:2.chunk eq:2.recurrence
        S += xt::linalg::dot(xt::transpose(fk_c), v_c);
        const xt::xtensor<T, 2> z_c = xt::sum(fk_c, {0}, xt::keep_dims);  // (1, R_f)
        z += xt::transpose(z_c);
    }
    if (!causal) {
        // Every query reads the final state.                                       eq:P4
        xt::xtensor<T, 2> num = xt::linalg::dot(fq, S);
        xt::xtensor<T, 2> den = xt::linalg::dot(fq, z);
        o = num / den;
    }
    return o;
}

template <class T>
xt::xtensor<T, 2> linear_attention_recurrent_stable(const ScaledFeatures<T>& q, const ScaledFeatures<T>& k,
                                                    const xt::xtensor<T, 2>& v, bool causal) {
    check_linear_inputs("linear_attention_recurrent_stable", shape_of(q.f), shape_of(k.f), shape_of(v), causal);
    const std::size_t nq = q.f.shape(0), n = k.f.shape(0), rf = q.f.shape(1), dv = v.shape(1);
    const std::size_t offset = n - nq;
    // Queries: xi(q_i) = exp(c_i) f_i and exp(c_i) cancels between numerator
    // and denominator of (P4): use f_i alone.                                       eq:2.stab
    const xt::xtensor<T, 2>& fq = q.f;
    T m = -std::numeric_limits<T>::infinity();  // running maximum of the key constants
    xt::xtensor<T, 2> S = xt::zeros<T>({rf, dv});  // exp(-m) sum_n xi(k_n) v_n^T
    xt::xtensor<T, 1> z = xt::zeros<T>({rf});      // exp(-m) sum_n xi(k_n)
    xt::xtensor<T, 2> o = xt::zeros<T>({nq, dv});
    // the common factor exp(m) of S and z cancels in the ratio              eq:P4
    auto read = [&](std::size_t i) { read_state(fq, i, S, z, o); };
    for (std::size_t j = 0; j < n; ++j) {
        if (k.c(j) > m) {
            // m' = max(m, c_j): rescale the sums by exp(m - m') (0 on the first key).   eq:2.stream
            const T alpha = std::exp(m - k.c(j));
            S *= alpha;
            z *= alpha;
            m = k.c(j);
        }
        const T weight = std::exp(k.c(j) - m);  // <= 1                                eq:2.stream
        for (std::size_t r = 0; r < rf; ++r) {
            const T fr = weight * k.f(j, r);
            z(r) += fr;                                                              // eq:2.recurrence
            for (std::size_t c = 0; c < dv; ++c) S(r, c) += fr * v(j, c);
        }
        if (causal && j >= offset) read(j - offset);
    }
    if (!causal)
        for (std::size_t i = 0; i < nq; ++i) read(i);
    return o;
}

#define IDATTN_INSTANTIATE(T)                                                                                       \
    template xt::xtensor<T, 2> linear_attention_quadratic<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&,    \
                                                             const xt::xtensor<T, 2>&, bool);                       \
    template xt::xtensor<T, 2> linear_attention_recurrent<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&,    \
                                                             const xt::xtensor<T, 2>&, bool);                       \
    template xt::xtensor<T, 2> linear_attention_chunked<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&,      \
                                                           const xt::xtensor<T, 2>&, bool, std::size_t);            \
    template xt::xtensor<T, 2> linear_attention_recurrent_stable<T>(const ScaledFeatures<T>&,                       \
                                                                    const ScaledFeatures<T>&,                       \
                                                                    const xt::xtensor<T, 2>&, bool);

IDATTN_INSTANTIATE(double)
IDATTN_INSTANTIATE(float)
#undef IDATTN_INSTANTIATE

}  // namespace idattn::ref
