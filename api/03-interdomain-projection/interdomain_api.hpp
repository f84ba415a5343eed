// Chapter 3 through the api layer (CLI `idattn project` and `idattn interdomain`,
// Python `idattn.basis_matrix`, `idattn.interdomain_project`,
// `idattn.interdomain_attention`, `idattn.interdomain_attention_features`,
// `idattn.interdomain_effective_weights`).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "ref/03-interdomain-projection/bases.hpp"
#include "api/common/dispatch.hpp"

namespace idattn::api {

using ref::Basis;

// Phi (M, N) of a basis on N tokens: real (legs, gram, dct), float64 (eq:3.1, eq:3.gram,
// eq:3.dct); the complex fourier basis (eq:3.5) as (M, N, 2), real and imaginary part.
HostTensor basis_matrix(Basis b, std::size_t M, std::size_t N);

// The projection (eq:P6) of key features fk (N, R) or (B, H, N, R) and values
// v (N, d) or (B, H, N, d) onto M functions of a basis on the N tokens:
// U (..., M, R), Gamma (..., M, d), eta (M,); for the complex fourier basis
// each with a trailing axis of 2 (real, imaginary). Impl ref or naive32 (fast falls
// back to the reference with a note: the fast backend fuses projection and readout).
struct ProjectRun {
    HostTensor U, Gamma, eta;
    std::string backend;
    std::vector<std::string> notes;
};
ProjectRun interdomain_project(const HostTensor& fk, const HostTensor& v, Basis b, std::size_t M, Impl impl);

// Interdomain attention (eq:P9) on given features: fq (Nq, R), fk (N, R),
// v (N, d), or the same with leading (B, H). Real bases non-causal or causal
// (eq:3.causal); fourier non-causal only, through the Hermitian readout (eq:3.5).
Run interdomain_attention_features(const HostTensor& fq, const HostTensor& fk, const HostTensor& v, Basis b,
                                   std::size_t M, bool causal, Impl impl);

// Interdomain attention (eq:P9) from q, k, v with the feature map `map` and
// draw W of chapter 2 (W shared by every head; empty for taylor). Features are
// stabilised as in `linear` (eq:2.stab): the query's constant and one
// constant for all keys of a sequence cancel in (P9) as they do in (P4).
Run interdomain_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, ref::FeatureMap map,
                          const HostTensor& w, Basis b, std::size_t M, bool causal, Impl impl);

// The unnormalised effective weights W (Nq, N) of eq:3.4 on given features
// fq (Nq, R), fk (N, R) (one head), float64 reference only.
Run interdomain_effective_weights(const HostTensor& fq, const HostTensor& fk, Basis b, std::size_t M, bool causal);

}  // namespace idattn::api
