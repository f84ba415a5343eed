// Chapter 2, exact reference: the kernel feature map (P3)-(P5). See
// chapters/02-kernel-feature-map.md; every function reads like the chapter:
// literal loops, one formula per line, no tricks beyond the exponent
// stabiliser the chapter derives. Linear attention (P4) on these features is
// in linear_attention.hpp.
//
// A random feature map is a deterministic function of its input *and* of a
// drawn matrix W (one frequency w_r per row). W is always passed in, so that
// the CPU reference, a later GPU kernel, the CLI and Python can share the
// same draw (an .npy file); the draw_* helpers make one from a seed.
//
// Shapes: x (N, d); W (m, d) with m >= 1 random frequencies; features (N, R_f)
// with R_f = feature_dim(map, m, d): 2m for rff (a cosine and a sine per
// frequency), m for positive and orthogonal, 1 + d + d^2 for taylor (which
// takes no W; pass an empty (0, 0) matrix).
//
// Templated on the scalar so that the same literal formula runs in float64
// (the reference) and plainly in float32 (the "naive32" baseline of the
// tolerance rule for the fast kernels to come). Instantiated for double and
// float in the .cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace idattn::ref {

enum class FeatureMap {
    Rff,         // eq:2.1 random Fourier features of the Gaussian factor, times exp(|x|^2 / 2s)
    Positive,    // eq:2.2 positive random features (FAVOR+), iid Gaussian W
    Orthogonal,  // eq:2.3 positive random features with an orthogonal draw of W
    Taylor,      // eq:2.4 deterministic second-order Taylor features (no W)
};

// "rff", "positive", "orthogonal", "taylor" (api::parse_feature_map reads them back).
std::string feature_map_name(FeatureMap map);
bool is_random(FeatureMap map);

// Feature dimension R_f for a map with m random frequencies and head dimension d
// (saturated at the largest size_t rather than wrapping, for the size checks).
std::size_t feature_dim(FeatureMap map, std::size_t m, std::size_t d);

// Throws idattn::Error (prefixed with `what`) unless x has shape (N, d) with
// N, d >= 1 and W has shape (m, d) with m >= 1 (random maps) or is absent,
// i.e. (0, 0) (taylor).
void check_feature_inputs(const std::string& what, FeatureMap map, const std::vector<std::size_t>& x,
                          const std::vector<std::size_t>& w);

// ---- The random draw ---------------------------------------------------------
// m rows w_r ~ N(0, I_d), iid (eq:2.1, eq:2.2). Deterministic in (m, d, seed).
xt::xtensor<double, 2> draw_gaussian(std::size_t m, std::size_t d, std::uint64_t seed);
// m rows in blocks of d: each block the Q of a QR (Gram-Schmidt) of a d x d
// Gaussian matrix, i.e. exactly orthonormal rows, each rescaled by an
// independent chi_d-distributed length (the norm of a fresh N(0, I_d) vector),
// so that every row is marginally N(0, I_d) again (eq:2.3). The last block is
// truncated when d does not divide m.
xt::xtensor<double, 2> draw_orthogonal(std::size_t m, std::size_t d, std::uint64_t seed);
// The draw a map uses: gaussian for rff and positive, orthogonal for
// orthogonal, an empty (0, 0) matrix for taylor. Throws when m = 0 for a
// random map.
xt::xtensor<double, 2> draw_for(FeatureMap map, std::size_t m, std::size_t d, std::uint64_t seed);

// ---- Feature maps ------------------------------------------------------------
// xi(x_n) for every row, written literally (one exp per element); may
// overflow to inf (rff, large |x|) or underflow to 0 (positive, large |x|).
template <class T>
xt::xtensor<T, 2> feature_map(FeatureMap map, const xt::xtensor<T, 2>& x, const xt::xtensor<T, 2>& w);

// The same features split as xi(x_n) = exp(c_n) * f(n, :), with c_n the
// largest exponent of row n, so that f never overflows (eq:2.stab).
template <class T>
struct ScaledFeatures {
    xt::xtensor<T, 2> f;  // (N, R_f), entries bounded by R^(-1/2) (rff, positive) or by the taylor polynomial
    xt::xtensor<T, 1> c;  // (N,), log-scale of each row
};
template <class T>
ScaledFeatures<T> scaled_feature_map(FeatureMap map, const xt::xtensor<T, 2>& x, const xt::xtensor<T, 2>& w);

// Keys with one constant per sequence: exp(c_n - max_n' c_n') f(n, :), the
// features of every key divided by the same exp(max c) (eq:2.stab).
template <class T>
xt::xtensor<T, 2> sequence_stabilised(const ScaledFeatures<T>& keys);

// ---- Kernels -----------------------------------------------------------------
// The exact softmax kernel matrix K(q_i, k_n) = exp(q_i . k_n / sqrt(d)).
template <class T>
xt::xtensor<T, 2> softmax_kernel_matrix(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k);
// Its feature approximation F_q F_k^T (eq:P3).
template <class T>
xt::xtensor<T, 2> feature_kernel_matrix(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk);
// The kernel the taylor map reproduces exactly: 1 + t + t^2/2, t = q.k/sqrt(d) (eq:2.4).
template <class T>
xt::xtensor<T, 2> truncated_softmax_kernel_matrix(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k);

}  // namespace idattn::ref
