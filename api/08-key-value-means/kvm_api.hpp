// Chapter 8 through the api layer (CLI `idattn kvm`, Python `idattn.kvm_attention`):
// Key-Value Means on (N, d) heads or (B, H, N, d) batches, float64 reference.
#pragma once

#include <string>

#include "api/common/dispatch.hpp"
#include "ref/08-key-value-means/kvm.hpp"

namespace idattn::api {

// "fixed:R" (R rows), "sqrt:F" (floor(F sqrt(t)), at least C rows: the paper's KVM sqrt with F = 16),
// "saturate:R" (floor(R t / (R + t))). Anything else is an error listing the forms.
ref::KvmBudget parse_kvm_budget(const std::string& text, std::size_t chunk);

// prefill (a chunk of queries at a time) or decode (one token at a time): the same outputs.
enum class KvmForm { Prefill, Decode };
KvmForm parse_kvm_form(const std::string& name);

// q, k (.., N, dk), v (.., N, dv) of rank 2 or 4; g the merge gates (.., N) or empty (all 1).
Run kvm_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, const HostTensor& g,
                  const ref::KvmOptions& options, KvmForm form);

}  // namespace idattn::api
