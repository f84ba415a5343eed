// Chapter 5 through the api layer (CLI `idattn layer`, `idattn layer-init`;
// Python `idattn.layer_forward`, `idattn.layer_backward`, `idattn.layer_init`).
//
// A parameter set travels as named tensors, exactly the arrays of
// chapter 5's contract plus `heads` (a 0-d integer holding H); the gradients come
// back under the same names plus `x`. Complex parameters (B, C) have a
// trailing axis of 2 (real, imaginary), and so do their gradients. Only the
// float64 reference exists for this chapter so far: inputs of either dtype are
// computed in float64 and the outputs are float64.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "api/common/dispatch.hpp"
#include "ref/05-learned-layer/layer.hpp"

namespace idattn::api {

using TensorMap = std::map<std::string, HostTensor>;

struct LayerSettings {
    ref::LayerVariant variant = ref::LayerVariant::Full;
    std::optional<bool> rope;  // unset: the variant's default (on except for norope and s4d)
    ref::RopeOrder rope_order = ref::RopeOrder::BeforeFeatureMap;
    ref::LayerForm form = ref::LayerForm::Recurrence;
    std::size_t chunk = 16;
    ref::LayerBackward backward = ref::LayerBackward::Stored;
    std::size_t checkpoint = 16;
};
ref::LayerOptions layer_options(const LayerSettings& s);

// The parameter set of a file or dict: `heads` must be there, 0-d, an integer
// >= 1; every other tensor is a parameter array, checked by
// ref::check_layer_params (a missing, extra, misshapen or non-finite array is
// named). `what` prefixes messages.
ref::LayerParams layer_params(const std::string& what, const LayerSettings& s, const TensorMap& params);

// y for x (N, D) or (B, N, D), the same rank as x.
Run layer_forward(const TensorMap& params, const HostTensor& x, const LayerSettings& s);

// dL/dx (named "x") and dL/dp for every parameter array, for the upstream dy
// (the shape of x and y).
struct LayerGradRun {
    TensorMap grads;
    std::string backend;
    std::vector<std::string> notes;
};
LayerGradRun layer_backward(const TensorMap& params, const HostTensor& x, const HostTensor& dy,
                            const LayerSettings& s);

// The paper's initialisation (eq:5.init) as named tensors, `heads` included (int64).
TensorMap layer_init(ref::LayerVariant v, const ref::LayerInitSpec& spec);

}  // namespace idattn::api
