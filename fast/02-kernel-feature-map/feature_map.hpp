// Chapter 2, fast backend (CUDA, float32): the kernel feature map (eq:P3,
// eq:2.1 to eq:2.4) and chunked linear attention (eq:P4 in the form eq:2.chunk).
// Host-side interface, includable without the CUDA toolkit. The kernels and
// their design notes are in feature_map.cu (the feature map) and
// linear_attention_chunked.cu (chunked linear attention).
//
// Status: verified on a GPU (NVIDIA H100 and H200, sm_90, 2026-11-26): every test
// of tests/NN-*/fast_*.cpp passes there; compute-sanitizer memcheck, racecheck and
// synccheck are clean on the cases listed in bench/results/README.md. Not run on
// sm_80 (compiled only).
//
// The signatures mirror ref/02-kernel-feature-map/feature_map.hpp in float32
// with the (B, H, N, d) layout of fast/01-softmax-attention, so that a kernel
// is checked against the reference on the very same drawn W with the
// tolerance rule (naive32 = the reference templates instantiated for float).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <xtensor/xtensor.hpp>

#include "ref/02-kernel-feature-map/feature_map.hpp"

namespace idattn::fast {

// Largest head dimension d of v the chunked linear-attention kernel supports
// (the feature-map kernel takes any d).
inline constexpr std::int64_t kLinearMaxHeadDim = 128;

// Why the chunked linear-attention kernel cannot run queries of head dimension
// d and values of dv ("" when it can).
inline std::string linear_unsupported(std::size_t d, std::size_t dv) {
    if (dv != d || dv > static_cast<std::size_t>(kLinearMaxHeadDim))
        return "the fast linear-attention kernel needs v of head dimension d = " + std::to_string(d) + " <= " +
               std::to_string(kLinearMaxHeadDim) + ", got " + std::to_string(dv);
    return "";
}

// ---- Device entry points ------------------------------------------------------
// All pointers are device pointers to contiguous row-major float32. `stream` is
// a cudaStream_t (void* so that this header needs no CUDA headers). Violated
// preconditions throw idattn::Error before anything is launched; launch errors
// throw idattn::Error too.

// Features of `rows` rows x (rows, d) with the draw w (m, d) (m = 0 and w =
// nullptr for taylor) into f (rows, R_f), R_f = ref::feature_dim(map, m, d).
// scaled = true: the split xi(x_n) = exp(c_n) f_n of ref::scaled_feature_map
// (eq:2.stab), c (rows) receives the log-scales (c may be nullptr when they are
// not needed). scaled = false: the literal xi of ref::feature_map (c unused;
// overflows/underflows exactly where the reference formula does).
void feature_map_device(ref::FeatureMap map, const float* x, const float* w, float* f, float* c, std::int64_t rows,
                        std::int64_t d, std::int64_t m, bool scaled, void* stream = nullptr);

// Device workspace (bytes) that chunked_linear_attention_device needs for these sizes.
std::size_t chunked_linear_attention_workspace_bytes(ref::FeatureMap map, std::int64_t bh, std::int64_t nq,
                                                     std::int64_t n, std::int64_t d, std::int64_t m,
                                                     std::int64_t chunk);

// Linear attention (eq:P4) in the chunked form (eq:2.chunk) with the features of
// `map`: q (bh, nq, d), k and v (bh, n, d), w (m, d) shared by every head
// (nullptr, m = 0 for taylor), o (bh, nq, d). Stabilised like the api layer's
// chunked form (eq:2.stab): the query's own constant is dropped, the keys share
// one constant per sequence (per head), c* = max_n c_n. causal: key n is
// visible to query i iff n <= i + n_keys - nq (needs nq <= n). chunk >= 1 key
// positions per chunk (chunk >= n is the quadratic form). d <= kLinearMaxHeadDim.
// `workspace` holds at least chunked_linear_attention_workspace_bytes(...) bytes,
// 16-byte aligned; nullptr allocates (and frees) it inside the call.
void chunked_linear_attention_device(ref::FeatureMap map, const float* q, const float* k, const float* v,
                                     const float* w, float* o, std::int64_t bh, std::int64_t nq, std::int64_t n,
                                     std::int64_t d, std::int64_t m, bool causal, std::int64_t chunk,
                                     void* workspace = nullptr, void* stream = nullptr);

// ---- Host convenience ---------------------------------------------------------
// Copy (B, H, N, d) tensors to the device, NaN-poison the outputs, run the
// kernels, copy back. Inputs are validated (idattn::Error naming the tensor,
// the expected and the actual shape); w is (R, d), or (0, 0) for taylor.

// Scaled features and row log-scales, like ref::scaled_feature_map per head (eq:2.stab).
struct ScaledFeatures32 {
    xt::xtensor<float, 4> f;  // (B, H, N, R_f)
    xt::xtensor<float, 3> c;  // (B, H, N)
};
ScaledFeatures32 scaled_feature_map(ref::FeatureMap map, const xt::xtensor<float, 4>& x,
                                    const xt::xtensor<float, 2>& w);

// The literal features xi(x) (eq:P3), like ref::feature_map per head: (B, H, N, R_f).
xt::xtensor<float, 4> feature_map(ref::FeatureMap map, const xt::xtensor<float, 4>& x, const xt::xtensor<float, 2>& w);

// q (B, H, Nq, d), k and v (B, H, N, d), w (R, d): linear attention (eq:P4) in
// the chunked form with chunk size `chunk` >= 1 -> (B, H, Nq, d).
xt::xtensor<float, 4> chunked_linear_attention(ref::FeatureMap map, const xt::xtensor<float, 4>& q,
                                               const xt::xtensor<float, 4>& k, const xt::xtensor<float, 4>& v,
                                               const xt::xtensor<float, 2>& w, bool causal, std::size_t chunk);

}  // namespace idattn::fast
