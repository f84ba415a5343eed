// Chapter 2 through the api layer (CLI `idattn features` and `idattn linear`,
// Python `idattn.feature_map`, `idattn.linear_attention`, `idattn.draw_feature_weights`).
#pragma once

#include <cstdint>
#include <string>

#include "ref/02-kernel-feature-map/feature_map.hpp"
#include "api/common/dispatch.hpp"

namespace idattn::api {

using ref::FeatureMap;

enum class LinearForm { Quadratic, Recurrent, Chunked };

// "quadratic", "recurrent", "chunked"; anything else throws idattn::Error.
LinearForm parse_linear_form(const std::string& name);

// The random draw W of a map, (R, d) float64 (eq:2.1 to eq:2.3); for taylor an
// empty tensor of shape (0, 0). R >= 1 for the random maps.
HostTensor draw_feature_weights(FeatureMap map, std::size_t R, std::size_t d, std::uint64_t seed);

// xi(x) for every row: x (N, d) or (B, H, N, d) -> (..., N, R_f), with W (R, d)
// shared by every head (an empty tensor for taylor). Written literally, so
// it overflows for rff rows with |x|^2 / (2 sqrt d) > 709 (see `linear`,
// which stabilises). eq:P3
Run feature_map(const HostTensor& x, FeatureMap map, const HostTensor& w, Impl impl);

// Linear attention (eq:P4) with features xi of `map` and draw W, in one of
// the three equal forms of eq:2.5; chunk >= 1 is used by the chunked form.
// q (Nq, d) or (B, H, Nq, d); k, v (N, d) or (B, H, N, d). The exponents are
// stabilised (eq:2.stab): per query, and per sequence for the keys of the
// quadratic and chunked forms, by streaming rescaling in the recurrent form.
Run linear_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, FeatureMap map,
                     const HostTensor& w, LinearForm form, bool causal, std::size_t chunk, Impl impl);

// ---- Shared with the chapters that build on feature maps (3, 4) -------------
// Throws idattn::Error (prefixed with `what`) unless W is a draw of shape
// (R, d), R >= 1, for a random map, or absent for taylor.
void check_feature_weights(const std::string& what, FeatureMap map, const HostTensor& w, std::size_t d);

// Stabilised features of q and k on every head (eq:2.stab): queries drop their
// own constant, keys share one constant per sequence; both cancel in any
// attention that divides by the same weights. q (.., Nq, d), k (.., N, d) ->
// fq (B, H, Nq, R_f), fk (B, H, N, R_f). Instantiated for double and float.
template <class T>
struct HeadFeatures {
    xt::xtensor<T, 4> fq;
    xt::xtensor<T, 4> fk;
};
template <class T>
HeadFeatures<T> stabilised_head_features(const HostTensor& q, const HostTensor& k, FeatureMap map,
                                         const HostTensor& w);

}  // namespace idattn::api
