// Chapter 2 reference: the random draws, the feature maps with their exponent
// stabiliser, and the kernel matrices. Equation labels refer to
// chapters/02-kernel-feature-map.md.
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

#define IDATTN_INSTANTIATE(T)                                                                                       \
    template xt::xtensor<T, 2> feature_map<T>(FeatureMap, const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);      \
    template ScaledFeatures<T> scaled_feature_map<T>(FeatureMap, const xt::xtensor<T, 2>&,                          \
                                                     const xt::xtensor<T, 2>&);                                     \
    template xt::xtensor<T, 2> sequence_stabilised<T>(const ScaledFeatures<T>&);                                    \
    template xt::xtensor<T, 2> softmax_kernel_matrix<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);        \
    template xt::xtensor<T, 2> feature_kernel_matrix<T>(const xt::xtensor<T, 2>&, const xt::xtensor<T, 2>&);        \
    template xt::xtensor<T, 2> truncated_softmax_kernel_matrix<T>(const xt::xtensor<T, 2>&,                         \
                                                                  const xt::xtensor<T, 2>&);

IDATTN_INSTANTIATE(double)
IDATTN_INSTANTIATE(float)
#undef IDATTN_INSTANTIATE

}  // namespace idattn::ref
