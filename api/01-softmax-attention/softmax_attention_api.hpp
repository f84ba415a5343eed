// Chapter 1 through the api layer (CLI `idattn softmax`, Python `idattn.softmax_attention`).
#pragma once

#include "api/common/dispatch.hpp"

namespace idattn::api {

// q (Nq, d) or (B, H, Nq, d); k, v (N, d) or (B, H, N, d). eq:P1
Run softmax_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, bool causal, Impl impl);

// The float64 online-softmax recurrence (eq:1.online) over key blocks of
// `block`; single head (N, d) only. Reference backend only.
Run softmax_attention_online(const HostTensor& q, const HostTensor& k, const HostTensor& v, bool causal,
                             std::size_t block);

}  // namespace idattn::api
