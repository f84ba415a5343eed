// Chapter 2, fast (CUDA, float32): the intended API. NOT IMPLEMENTED YET.
//
// This header only declares what the fast kernels of chapter 2 will provide;
// there is no .cu file behind it and nothing calls it (the api layer runs the
// float64 reference and says so when --impl fast is asked for). The
// signatures mirror ref/02-kernel-feature-map/feature_map.hpp in float32 with
// the (B, H, N, d) layout of fast/01-softmax-attention, so that a kernel can
// be checked against the reference with the same drawn W and the tolerance
// rule (naive32 = the reference templates instantiated for float).
//
// Intended design (for whoever writes the kernels):
//  * feature_map: one thread block per tile of rows; W (R, d) in shared memory;
//    the exponent stabiliser (2.stab) applied in registers (row log-scale c).
//  * chunked_linear_attention: the chunked form (2.chunk) - per chunk of K keys
//    an intra-chunk masked product F_q,c F_k,c^T on tensor cores and an
//    inter-chunk read of the state (S, z) of (2.recurrence), with the key
//    constants rescaled as in (2.stream). No N x N matrix, state R_f x (d + 1)
//    per head.
#pragma once

#include <cstddef>

#include <xtensor/xtensor.hpp>

#include "../../ref/02-kernel-feature-map/feature_map.hpp"

namespace idattn::fast {

// Not implemented yet. x (B, H, N, d), w (R, d) -> (B, H, N, R_f); taylor takes w of shape (0, 0).
xt::xtensor<float, 4> feature_map(ref::FeatureMap map, const xt::xtensor<float, 4>& x, const xt::xtensor<float, 2>& w);

// Not implemented yet. q (B, H, Nq, d), k and v (B, H, N, d), w (R, d): linear attention
// (P4) in the chunked form with chunk size `chunk` >= 1 -> (B, H, Nq, d).
xt::xtensor<float, 4> chunked_linear_attention(ref::FeatureMap map, const xt::xtensor<float, 4>& q,
                                               const xt::xtensor<float, 4>& k, const xt::xtensor<float, 4>& v,
                                               const xt::xtensor<float, 2>& w, bool causal, std::size_t chunk);

}  // namespace idattn::fast
