// Chapter 1 reference. Equation labels refer to chapters/01-softmax-attention.md.
#include "ref/01-softmax-attention/softmax_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::ref {

void check_softmax_inputs(const std::string& what, const std::vector<std::size_t>& q,
                          const std::vector<std::size_t>& k, const std::vector<std::size_t>& v,
                          bool causal) {
    require_rank(what, "q", q, {2, 4});
    require_rank(what, "k", k, {2, 4});
    require_rank(what, "v", v, {2, 4});
    require_sane_size(what, "q", q);
    require_sane_size(what, "k", k);
    require_sane_size(what, "v", v);
    const std::size_t r = q.size();
    if (k.size() != r || v.size() != r)
        throw Error(what + ": q, k and v must have the same rank, but q has shape " + shape_str(q) +
                    ", k " + shape_str(k) + ", v " + shape_str(v));
    if (r == 4 && (k[0] != q[0] || k[1] != q[1] || v[0] != q[0] || v[1] != q[1]))
        throw Error(what + ": q, k and v must share the (B, H) axes, but q has shape " + shape_str(q) +
                    ", k " + shape_str(k) + ", v " + shape_str(v));
    const std::size_t d = q[r - 1], n = k[r - 2], nq = q[r - 2];
    if (k[r - 1] != d)
        throw Error(what + ": k has shape " + shape_str(k) + " but q has head dimension d = " +
                    std::to_string(d) + "; expected k of shape (..., N, " + std::to_string(d) + ")");
    if (v[r - 2] != n || v[r - 1] != d)
        throw Error(what + ": v has shape " + shape_str(v) + "; expected (..., " + std::to_string(n) +
                    ", " + std::to_string(d) + ") to match k " + shape_str(k));
    if (causal && nq > n)
        throw Error(what + ": causal attention needs Nq <= N (queries are the last Nq of N positions), "
                    "but q has Nq = " + std::to_string(nq) + " and k has N = " + std::to_string(n));
}

template <class T>
xt::xtensor<T, 2> softmax_attention(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k,
                                    const xt::xtensor<T, 2>& v, bool causal) {
    check_softmax_inputs("softmax_attention", {q.shape().begin(), q.shape().end()},
                         {k.shape().begin(), k.shape().end()}, {v.shape().begin(), v.shape().end()},
                         causal);
    const std::size_t nq = q.shape(0), n = k.shape(0), d = q.shape(1);
    const std::size_t offset = n - nq;  // query i sits at sequence position i + offset
    const T inv_sqrt_d = T(1) / std::sqrt(T(d));

    // Logits of the softmax kernel: log K(q_i, k_n) = q_i . k_n / sqrt(d).       eq:P1
    xt::xtensor<T, 2> s = xt::linalg::dot(q, xt::transpose(k));
    s *= inv_sqrt_d;

    // Causal mask: K(q_i, k_n) = 0 for keys after the query, log K = -inf.      eq:1.causal
    // Both forms, causal and not, come through this one function.              eq:1.2
    if (causal)
        for (std::size_t i = 0; i < nq; ++i)
            for (std::size_t j = i + offset + 1; j < n; ++j) s(i, j) = -std::numeric_limits<T>::infinity();

    // Subtract each row's maximum: it cancels between numerator and
    // denominator and keeps every exponent <= 0, so logits of any size give
    // finite outputs.                                                            eq:1.shift eq:1.3
    xt::xtensor<T, 2> row_max = xt::amax(s, {1}, xt::keep_dims);
    xt::xtensor<T, 2> w = xt::exp(s - row_max);

    // Nadaraya-Watson: o_i = sum_n w_in v_n / sum_n w_in.                        eq:P1 eq:1.normalise
    xt::xtensor<T, 2> num = xt::linalg::dot(w, v);
    xt::xtensor<T, 2> den = xt::sum(w, {1}, xt::keep_dims);
    return num / den;
}

template <class T>
xt::xtensor<T, 2> online_softmax_attention(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k,
                                           const xt::xtensor<T, 2>& v, bool causal,
                                           std::size_t block) {
    check_softmax_inputs("online_softmax_attention", {q.shape().begin(), q.shape().end()},
                         {k.shape().begin(), k.shape().end()}, {v.shape().begin(), v.shape().end()},
                         causal);
    if (block == 0) throw Error("online_softmax_attention: block must be at least 1, got 0");
    const std::size_t nq = q.shape(0), n = k.shape(0), d = q.shape(1);
    const std::size_t offset = n - nq;
    const T inv_sqrt_d = T(1) / std::sqrt(T(d));
    const T neg_inf = -std::numeric_limits<T>::infinity();

    xt::xtensor<T, 2> o = xt::zeros<T>({nq, d});
    for (std::size_t i = 0; i < nq; ++i) {
        const std::size_t visible = causal ? i + offset + 1 : n;  // eq:1.causal
        T m = neg_inf;  // running maximum m_i^(j)
        T l = 0;        // running sum l_i^(j) = sum exp(s - m)
        std::vector<T> acc(d, T(0));  // running numerator, scaled by exp(-m)
        for (std::size_t j0 = 0; j0 < visible; j0 += block) {
            const std::size_t j1 = std::min(visible, j0 + block);
            std::vector<T> s(j1 - j0);
            T block_max = neg_inf;
            for (std::size_t j = j0; j < j1; ++j) {
                T dot = 0;
                for (std::size_t c = 0; c < d; ++c) dot += q(i, c) * k(j, c);
                s[j - j0] = dot * inv_sqrt_d;  // eq:P1 (logit)
                block_max = std::max(block_max, s[j - j0]);
            }
            // eq:1.online: m' = max(m, max_j s_j); rescale l and acc by exp(m - m').
            const T m_new = std::max(m, block_max);
            const T alpha = std::exp(m - m_new);  // exp(-inf) = 0 on the first block
            l *= alpha;
            for (auto& a : acc) a *= alpha;
            for (std::size_t j = j0; j < j1; ++j) {
                const T p = std::exp(s[j - j0] - m_new);  // eq:1.shift (by the running max)
                l += p;
                for (std::size_t c = 0; c < d; ++c) acc[c] += p * v(j, c);
            }
            m = m_new;
        }
        for (std::size_t c = 0; c < d; ++c) o(i, c) = acc[c] / l;  // eq:1.normalise
    }
    return o;
}

template <class T>
xt::xtensor<T, 4> softmax_attention(const xt::xtensor<T, 4>& q, const xt::xtensor<T, 4>& k,
                                    const xt::xtensor<T, 4>& v, bool causal) {
    check_softmax_inputs("softmax_attention", {q.shape().begin(), q.shape().end()},
                         {k.shape().begin(), k.shape().end()}, {v.shape().begin(), v.shape().end()},
                         causal);
    xt::xtensor<T, 4> o = xt::zeros<T>(q.shape());
    for (std::size_t b = 0; b < q.shape(0); ++b)
        for (std::size_t h = 0; h < q.shape(1); ++h) {
            xt::xtensor<T, 2> qh = xt::view(q, b, h), kh = xt::view(k, b, h), vh = xt::view(v, b, h);
            xt::view(o, b, h) = softmax_attention<T>(qh, kh, vh, causal);
        }
    return o;
}

template xt::xtensor<double, 2> softmax_attention<double>(const xt::xtensor<double, 2>&, const xt::xtensor<double, 2>&,
                                                          const xt::xtensor<double, 2>&, bool);
template xt::xtensor<float, 2> softmax_attention<float>(const xt::xtensor<float, 2>&, const xt::xtensor<float, 2>&,
                                                        const xt::xtensor<float, 2>&, bool);
template xt::xtensor<double, 2> online_softmax_attention<double>(const xt::xtensor<double, 2>&,
                                                                 const xt::xtensor<double, 2>&,
                                                                 const xt::xtensor<double, 2>&, bool, std::size_t);
template xt::xtensor<float, 2> online_softmax_attention<float>(const xt::xtensor<float, 2>&,
                                                               const xt::xtensor<float, 2>&,
                                                               const xt::xtensor<float, 2>&, bool, std::size_t);
template xt::xtensor<double, 4> softmax_attention<double>(const xt::xtensor<double, 4>&, const xt::xtensor<double, 4>&,
                                                          const xt::xtensor<double, 4>&, bool);
template xt::xtensor<float, 4> softmax_attention<float>(const xt::xtensor<float, 4>&, const xt::xtensor<float, 4>&,
                                                        const xt::xtensor<float, 4>&, bool);

}  // namespace idattn::ref
