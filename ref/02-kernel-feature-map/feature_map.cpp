// Chapter 2 reference. Equation labels refer to chapters/02-kernel-feature-map.md.
#include "ref/02-kernel-feature-map/feature_map.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::ref {

FeatureMap parse_feature_map(const std::string& name) {
    if (name == "rff") return FeatureMap::Rff;
    if (name == "positive") return FeatureMap::Positive;
    if (name == "orthogonal") return FeatureMap::Orthogonal;
    if (name == "taylor") return FeatureMap::Taylor;
    throw Error("--map must be 'rff' (random Fourier features), 'positive' (positive random features), "
                "'orthogonal' (positive features, orthogonal draw) or 'taylor' (second-order Taylor), got '" +
                name + "'");
}

std::string feature_map_name(FeatureMap map) {
    switch (map) {
        case FeatureMap::Rff: return "rff";
        case FeatureMap::Positive: return "positive";
        case FeatureMap::Orthogonal: return "orthogonal";
        case FeatureMap::Taylor: return "taylor";
    }
    return "?";
}

bool is_random(FeatureMap map) { return map != FeatureMap::Taylor; }

std::size_t feature_dim(FeatureMap map, std::size_t m, std::size_t d) {
    // Saturated at the largest size_t: an absurd size must not wrap before it is refused.
    const std::size_t big = std::numeric_limits<std::size_t>::max();
    switch (map) {
        case FeatureMap::Rff: return m > big / 2 ? big : 2 * m;
        case FeatureMap::Positive:
        case FeatureMap::Orthogonal: return m;
        case FeatureMap::Taylor: return d > (std::size_t{1} << 31) ? big : 1 + d + d * d;
    }
    return 0;
}

void check_feature_inputs(const std::string& what, FeatureMap map, const std::vector<std::size_t>& x,
                          const std::vector<std::size_t>& w) {
    require_rank(what, "x", x, {2});
    require_sane_size(what, "x", x);
    const std::size_t d = x[1];
    if (!is_random(map)) {
        std::size_t n = 1;
        for (auto s : w) n *= s;
        if (!w.empty() && n != 0)
            throw Error(what + ": the taylor map is deterministic and takes no W, but W has shape " + shape_str(w));
    } else {
        require_rank(what, "W", w, {2});
        if (w[0] == 0)
            throw Error(what + ": W has shape " + shape_str(w) +
                        ": the number of random frequencies R must be at least 1");
        require_sane_size(what, "W", w);
        if (w[1] != d)
            throw Error(what + ": W has shape " + shape_str(w) + " but x has head dimension d = " + std::to_string(d) +
                        "; expected W of shape (R, " + std::to_string(d) + ")");
    }
    const std::size_t m = is_random(map) ? w[0] : 0;
    require_memory(what, is_random(map) ? "R = " + std::to_string(m) + " random frequencies" : "d = " + std::to_string(d),
                   {{"the feature matrix", {x[0], feature_dim(map, m, d)}}});
    require_sane_size(what, "the feature matrix", {x[0], feature_dim(map, m, d)});
}

// ---- The random draw ---------------------------------------------------------

xt::xtensor<double, 2> draw_gaussian(std::size_t m, std::size_t d, std::uint64_t seed) {
    if (m == 0 || d == 0)
        throw Error("draw_gaussian: R (random frequencies) and d must be at least 1, got R = " + std::to_string(m) +
                    ", d = " + std::to_string(d));
    std::mt19937_64 eng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    xt::xtensor<double, 2> w({m, d});
    for (auto& e : w) e = nd(eng);  // w_r ~ N(0, I_d)                          eq:2.2 eq:P5
    return w;
}

xt::xtensor<double, 2> draw_orthogonal(std::size_t m, std::size_t d, std::uint64_t seed) {
    if (m == 0 || d == 0)
        throw Error("draw_orthogonal: R (random frequencies) and d must be at least 1, got R = " +
                    std::to_string(m) + ", d = " + std::to_string(d));
    std::mt19937_64 eng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    xt::xtensor<double, 2> w({m, d});
    for (std::size_t b0 = 0; b0 < m; b0 += d) {
        // A d x d Gaussian block, orthonormalised row by row (Gram-Schmidt =
        // the Q of a QR decomposition with positive diagonal: Haar-distributed).  eq:2.3
        xt::xtensor<double, 2> g({d, d});
        for (auto& e : g) e = nd(eng);
        for (std::size_t r = 0; r < d; ++r) {
            for (int pass = 0; pass < 2; ++pass)  // re-orthogonalise once: exact to rounding
                for (std::size_t p = 0; p < r; ++p) {
                    double dot = 0;
                    for (std::size_t c = 0; c < d; ++c) dot += g(r, c) * g(p, c);
                    for (std::size_t c = 0; c < d; ++c) g(r, c) -= dot * g(p, c);
                }
            double norm = 0;
            for (std::size_t c = 0; c < d; ++c) norm += g(r, c) * g(r, c);
            norm = std::sqrt(norm);
            for (std::size_t c = 0; c < d; ++c) g(r, c) /= norm;
        }
        // Each orthonormal row times an independent chi_d length: marginally N(0, I_d).  eq:2.3
        for (std::size_t r = 0; r < d; ++r) {
            double len2 = 0;
            for (std::size_t c = 0; c < d; ++c) {
                const double h = nd(eng);
                len2 += h * h;
            }
            if (b0 + r < m)
                for (std::size_t c = 0; c < d; ++c) w(b0 + r, c) = std::sqrt(len2) * g(r, c);
        }
    }
    return w;
}

xt::xtensor<double, 2> draw_for(FeatureMap map, std::size_t m, std::size_t d, std::uint64_t seed) {
    switch (map) {
        case FeatureMap::Rff:
        case FeatureMap::Positive: return draw_gaussian(m, d, seed);
        case FeatureMap::Orthogonal: return draw_orthogonal(m, d, seed);
        case FeatureMap::Taylor: break;
    }
    return xt::xtensor<double, 2>(std::array<std::size_t, 2>{0, 0});
}

// ---- Feature maps ------------------------------------------------------------

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

// The exponents of row x: for rff the one scalar |x|^2 / (2 s); for the
// positive maps e_r = w_r . x~ - |x~|^2 / 2 with x~ = x / sqrt(s); s = sqrt(d).
template <class T>
T squared_norm(const xt::xtensor<T, 2>& x, std::size_t n) {
    T a = 0;
    for (std::size_t c = 0; c < x.shape(1); ++c) a += x(n, c) * x(n, c);
    return a;
}

template <class T>
T projection(const xt::xtensor<T, 2>& x, std::size_t n, const xt::xtensor<T, 2>& w, std::size_t r, T inv_root_s) {
    T a = 0;
    for (std::size_t c = 0; c < x.shape(1); ++c) a += w(r, c) * x(n, c);
    return a * inv_root_s;  // w_r . x~,  x~ = x / sqrt(s) = x / d^(1/4)
}

}  // namespace

template <class T>
ScaledFeatures<T> scaled_feature_map(FeatureMap map, const xt::xtensor<T, 2>& x, const xt::xtensor<T, 2>& w) {
    check_feature_inputs("feature_map", map, shape_of(x), shape_of(w));
    const std::size_t n = x.shape(0), d = x.shape(1);
    const std::size_t m = is_random(map) ? w.shape(0) : 0;
    const T s = std::sqrt(T(d));                      // s = sqrt(d), K(q,k) = exp(q.k / s)
    const T inv_root_s = T(1) / std::sqrt(s);         // 1 / d^(1/4)
    const T inv_root_m = m ? T(1) / std::sqrt(T(m)) : T(0);  // R^(-1/2)
    ScaledFeatures<T> out{xt::xtensor<T, 2>(std::array<std::size_t, 2>{n, feature_dim(map, m, d)}), xt::xtensor<T, 1>(std::array<std::size_t, 1>{n})};
    for (std::size_t i = 0; i < n; ++i) {
        switch (map) {
            case FeatureMap::Rff: {
                // xi(x) = exp(|x|^2 / 2s) R^(-1/2) [cos(w_r . x~), sin(w_r . x~)]_r      eq:2.1 eq:P5
                // The magnitude exp(|x|^2 / 2s) is the row's log-scale c.             eq:2.stab
                out.c(i) = squared_norm(x, i) / (T(2) * s);
                for (std::size_t r = 0; r < m; ++r) {
                    const T a = projection(x, i, w, r, inv_root_s);
                    out.f(i, r) = inv_root_m * std::cos(a);
                    out.f(i, m + r) = inv_root_m * std::sin(a);
                }
                break;
            }
            case FeatureMap::Positive:
            case FeatureMap::Orthogonal: {
                // xi(x)_r = R^(-1/2) exp(w_r . x~ - |x~|^2 / 2)                     eq:2.2 eq:2.3
                // minus the row's largest exponent c = max_r e_r, so max f = R^(-1/2).  eq:2.stab
                const T half_sq = squared_norm(x, i) * inv_root_s * inv_root_s / T(2);  // |x~|^2 / 2
                T c = -std::numeric_limits<T>::infinity();
                std::vector<T> e(m);
                for (std::size_t r = 0; r < m; ++r) {
                    e[r] = projection(x, i, w, r, inv_root_s) - half_sq;
                    c = std::max(c, e[r]);
                }
                out.c(i) = c;
                for (std::size_t r = 0; r < m; ++r) out.f(i, r) = inv_root_m * std::exp(e[r] - c);
                break;
            }
            case FeatureMap::Taylor: {
                // xi(x) = [1, x / sqrt(s), vec(x x^T) / (s sqrt 2)]: xi(q).xi(k) = 1 + t + t^2/2.  eq:2.4
                out.c(i) = 0;
                out.f(i, 0) = 1;
                const T inv_sqrt_s = T(1) / std::sqrt(s);
                const T inv_s_sqrt2 = T(1) / (s * std::sqrt(T(2)));
                for (std::size_t a = 0; a < d; ++a) out.f(i, 1 + a) = x(i, a) * inv_sqrt_s;
                for (std::size_t a = 0; a < d; ++a)
                    for (std::size_t b = 0; b < d; ++b) out.f(i, 1 + d + a * d + b) = x(i, a) * x(i, b) * inv_s_sqrt2;
                break;
            }
        }
    }
    return out;
}

template <class T>
xt::xtensor<T, 2> feature_map(FeatureMap map, const xt::xtensor<T, 2>& x, const xt::xtensor<T, 2>& w) {
    check_feature_inputs("feature_map", map, shape_of(x), shape_of(w));
    const std::size_t n = x.shape(0), d = x.shape(1);
    const std::size_t m = is_random(map) ? w.shape(0) : 0;
    if (map == FeatureMap::Taylor) return scaled_feature_map(map, x, w).f;  // c = 0: nothing to undo
    const T s = std::sqrt(T(d));
    const T inv_root_s = T(1) / std::sqrt(s);
    const T inv_root_m = T(1) / std::sqrt(T(m));
    xt::xtensor<T, 2> f({n, feature_dim(map, m, d)});
    for (std::size_t i = 0; i < n; ++i) {
        const T sq = squared_norm(x, i);
        for (std::size_t r = 0; r < m; ++r) {
            const T a = projection(x, i, w, r, inv_root_s);
            if (map == FeatureMap::Rff) {
                // The Gaussian-factor split exp(q.k/s) = exp(|q|^2/2s) exp(|k|^2/2s) exp(-|q-k|^2/2s),
                // with RFF (Bochner, eq:P5) for the last factor.                          eq:2.gauss-split eq:2.1
                const T mag = std::exp(sq / (T(2) * s));
                f(i, r) = mag * inv_root_m * std::cos(a);
                f(i, m + r) = mag * inv_root_m * std::sin(a);
            } else {
                f(i, r) = inv_root_m * std::exp(a - sq / (T(2) * s));  // eq:2.2: |x~|^2 = |x|^2 / s
            }
        }
    }
    return f;
}

template <class T>
xt::xtensor<T, 2> sequence_stabilised(const ScaledFeatures<T>& keys) {
    // One constant for every key of the sequence: c* = max_n c_n.               eq:2.stab
    const T c_max = xt::amax(keys.c)();
    xt::xtensor<T, 2> f = keys.f;
    for (std::size_t n = 0; n < f.shape(0); ++n) xt::view(f, n, xt::all()) *= std::exp(keys.c(n) - c_max);
    return f;
}

// ---- Kernels -----------------------------------------------------------------

template <class T>
xt::xtensor<T, 2> softmax_kernel_matrix(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k) {
    if (q.shape(1) != k.shape(1))
        throw Error("softmax_kernel_matrix: k has shape " + shape_str(shape_of(k)) + " but q has d = " +
                    std::to_string(q.shape(1)));
    xt::xtensor<T, 2> s = xt::linalg::dot(q, xt::transpose(k));
    return xt::exp(s / std::sqrt(T(q.shape(1))));  // K(q,k) = exp(q.k / sqrt d)  eq:P1
}

template <class T>
xt::xtensor<T, 2> feature_kernel_matrix(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk) {
    if (fq.shape(1) != fk.shape(1))
        throw Error("feature_kernel_matrix: key features have shape " + shape_str(shape_of(fk)) +
                    " but query features have R_f = " + std::to_string(fq.shape(1)));
    return xt::linalg::dot(fq, xt::transpose(fk));  // K(q_i, k_n) ~ xi(q_i)^T xi(k_n)   eq:P3
}

template <class T>
xt::xtensor<T, 2> truncated_softmax_kernel_matrix(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k) {
    xt::xtensor<T, 2> t = xt::linalg::dot(q, xt::transpose(k));
    t /= std::sqrt(T(q.shape(1)));
    return T(1) + t + t * t / T(2);  // 1 + t + t^2 / 2                              eq:2.4
}

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
    template xt::xtensor<T, 2> feature_map<T>(FeatureMap, const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);      \
    template ScaledFeatures<T> scaled_feature_map<T>(FeatureMap, const xt::xtensor<T, 2>&,                          \
                                                     const xt::xtensor<T, 2>&);                                     \
    template xt::xtensor<T, 2> sequence_stabilised<T>(const ScaledFeatures<T>&);                                    \
    template xt::xtensor<T, 2> softmax_kernel_matrix<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);        \
    template xt::xtensor<T, 2> feature_kernel_matrix<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);        \
    template xt::xtensor<T, 2> truncated_softmax_kernel_matrix<T>(const xt::xtensor<T, 2>&,                         \
                                                                  const xt::xtensor<T, 2>&);                        \
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
