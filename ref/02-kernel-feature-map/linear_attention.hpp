// Chapter 2, exact reference: linear attention (P4) on the features of
// feature_map.hpp, in the three forms of eq:2.5 (quadratic, recurrent,
// chunked) and the streaming-stable recurrence (eq:2.stream). See
// chapters/02-kernel-feature-map.md; literal loops, like the chapter.
//
// Templated on the scalar like feature_map.hpp (float64 reference, float32
// naive32 baseline); instantiated for double and float in the .cpp.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "ref/02-kernel-feature-map/feature_map.hpp"

namespace idattn::ref {

// ---- Linear attention (eq:P4) in the three forms of eq:2.5 -------------------
// fq (Nq, R_f) query features, fk (N, R_f) key features, v (N, dv). Causal:
// query i sits at position i + N - Nq and sees keys n <= i + N - Nq (the
// alignment of chapter 1, eq:1.causal); needs Nq <= N.
void check_linear_inputs(const std::string& what, const std::vector<std::size_t>& fq,
                         const std::vector<std::size_t>& fk, const std::vector<std::size_t>& v, bool causal);

// Masked quadratic form: o = rownorm(mask(F_q F_k^T)) V.
template <class T>
xt::xtensor<T, 2> linear_attention_quadratic(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                             const xt::xtensor<T, 2>& v, bool causal);
// Recurrent form: S_n = S_{n-1} + xi(k_n) v_n^T, z_n = z_{n-1} + xi(k_n),
// o_i = S^T xi(q_i) / z . xi(q_i) read at the query's position (eq:2.recurrence).
template <class T>
xt::xtensor<T, 2> linear_attention_recurrent(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                             const xt::xtensor<T, 2>& v, bool causal);
// Chunked form, chunks of `chunk` >= 1 key positions: the state (S, z) of all
// earlier chunks plus a masked quadratic product inside the chunk (eq:2.chunk).
template <class T>
xt::xtensor<T, 2> linear_attention_chunked(const xt::xtensor<T, 2>& fq, const xt::xtensor<T, 2>& fk,
                                           const xt::xtensor<T, 2>& v, bool causal, std::size_t chunk);
// The recurrent form on scaled features with the streaming-safe stabiliser
// (eq:2.stream): the query's constant is dropped (it cancels), the key sums are
// kept relative to the running maximum m of the key constants and rescaled by
// exp(m - m') when it grows. Finite whenever the inputs are.
template <class T>
xt::xtensor<T, 2> linear_attention_recurrent_stable(const ScaledFeatures<T>& q, const ScaledFeatures<T>& k,
                                                    const xt::xtensor<T, 2>& v, bool causal);

}  // namespace idattn::ref
