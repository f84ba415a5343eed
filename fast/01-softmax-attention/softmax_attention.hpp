// Chapter 1, fast backend: tiled online-softmax attention forward (float32).
// Host-side interface, includable without the CUDA toolkit. The kernel and
// its design notes are in softmax_attention.cu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <xtensor/xtensor.hpp>

namespace idattn::fast {

// Largest head dimension the kernel supports.
inline constexpr std::int64_t kSoftmaxMaxHeadDim = 128;

// Why the kernel cannot run a problem of head dimension d ("" when it can).
inline std::string softmax_unsupported(std::size_t d) {
    if (d > static_cast<std::size_t>(kSoftmaxMaxHeadDim))
        return "the fast softmax kernel supports d <= " + std::to_string(kSoftmaxMaxHeadDim) + ", got d = " +
               std::to_string(d);
    return "";
}

// (P1) on the device, eq:P1 / eq:1.online. All pointers are device pointers to
// contiguous row-major float32: q (bh, nq, d), k and v (bh, n, d), o (bh, nq, d).
// causal: key j is visible to query i iff j <= i + (n - nq) (bottom-right
// aligned; requires nq <= n). Scale 1/sqrt(d). Launch errors throw idattn::Error.
// `stream` is a cudaStream_t (void* so that this header needs no CUDA headers).
void softmax_attention_device(const float* q, const float* k, const float* v, float* o,
                              std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t d,
                              bool causal, void* stream = nullptr);

// Host convenience: copies (B, H, N, d) tensors to the device, poisons the
// output buffer with NaN, runs the kernel, copies back. Inputs must already be
// validated (idattn::ref::check_softmax_inputs); a violated precondition
// still throws idattn::Error rather than launching.
xt::xtensor<float, 4> softmax_attention(const xt::xtensor<float, 4>& q, const xt::xtensor<float, 4>& k,
                                        const xt::xtensor<float, 4>& v, bool causal);

}  // namespace idattn::fast
