// Chapter 1, exact reference: attention as kernel regression (P1).
// See chapters/01-softmax-attention.md. Every function reads like the chapter:
// literal, no tricks beyond the row-maximum shift the chapter derives.
//
// Templated on the scalar only so that the *same* literal formula can be
// evaluated in float64 (the reference) and plainly in float32 (the "naive32"
// baseline of the tolerance rule). Instantiated for double and float in the .cpp.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace idattn::ref {

// Throws idattn::Error unless q (.., Nq, d), k (.., N, d), v (.., N, d) have
// ranks 2 or 4 (all the same), equal leading (B, H) axes, equal d, equal N for k
// and v, no empty axis, and, when causal, Nq <= N. `what` prefixes messages.
void check_softmax_inputs(const std::string& what, const std::vector<std::size_t>& q,
                          const std::vector<std::size_t>& k, const std::vector<std::size_t>& v,
                          bool causal);

// eq:P1 with K(q,k) = exp(q.k / sqrt(d)), one head: q (Nq, d), k and v (N, d).
// Causal (eq:1.causal): query i sees key n iff n <= i + (N - Nq), i.e. the
// queries are the last Nq positions of the sequence (n <= i when Nq == N).
template <class T>
xt::xtensor<T, 2> softmax_attention(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k,
                                    const xt::xtensor<T, 2>& v, bool causal);

// The same output through the online-softmax recurrence (eq:1.online) over
// blocks of `block` keys, exactly the order of operations of the fast kernel,
// written as plain loops. Equal to softmax_attention up to rounding.
template <class T>
xt::xtensor<T, 2> online_softmax_attention(const xt::xtensor<T, 2>& q, const xt::xtensor<T, 2>& k,
                                           const xt::xtensor<T, 2>& v, bool causal,
                                           std::size_t block);

// Batched (B, H, N, d): softmax_attention applied to every head.
template <class T>
xt::xtensor<T, 4> softmax_attention(const xt::xtensor<T, 4>& q, const xt::xtensor<T, 4>& k,
                                    const xt::xtensor<T, 4>& v, bool causal);

}  // namespace idattn::ref
