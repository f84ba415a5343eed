#include "api/common/names.hpp"

#include "core/error.hpp"

namespace idattn::api {

using namespace ref;

FeatureMap parse_feature_map(const std::string& name) {
    if (name == "rff") return FeatureMap::Rff;
    if (name == "positive") return FeatureMap::Positive;
    if (name == "orthogonal") return FeatureMap::Orthogonal;
    if (name == "taylor") return FeatureMap::Taylor;
    throw Error("--map must be 'rff' (random Fourier features), 'positive' (positive random features), "
                "'orthogonal' (positive features, orthogonal draw) or 'taylor' (second-order Taylor), got '" +
                name + "'");
}

Basis parse_basis(const std::string& name) {
    if (name == "legs") return Basis::LegS;
    if (name == "gram") return Basis::Gram;
    if (name == "dct") return Basis::Dct;
    if (name == "fourier") return Basis::Fourier;
    throw Error("--basis must be 'legs' (scaled Legendre, HiPPO-LegS), 'gram' (discrete Legendre polynomials), "
                "'dct' (DCT-II) or 'fourier' (complex, unitary DFT rows), got '" + name + "'");
}

LegsMethod parse_legs_method(const std::string& name) {
    if (name == "exact") return LegsMethod::Exact;
    if (name == "euler") return LegsMethod::Euler;
    if (name == "bilinear") return LegsMethod::Bilinear;
    throw Error("--legs-method must be 'exact', 'euler' or 'bilinear', got '" + name + "'");
}

S4dInit parse_s4d_init(const std::string& name) {
    if (name == "inv") return S4dInit::Inv;
    if (name == "lin") return S4dInit::Lin;
    throw Error("--init must be 'inv' (S4D-Inv) or 'lin' (S4D-Lin), got '" + name + "'");
}

SsmForm parse_ssm_form(const std::string& name) {
    if (name == "recurrence") return SsmForm::Recurrence;
    if (name == "explicit") return SsmForm::Explicit;
    if (name == "fft") return SsmForm::Fft;
    if (name == "chunked") return SsmForm::Chunked;
    throw Error("--form must be 'recurrence', 'explicit', 'fft' or 'chunked', got '" + name + "'");
}

LayerVariant parse_layer_variant(const std::string& name) {
    // The words are ref's (layer_variant_name), so the two directions cannot drift apart.
    for (const LayerVariant v : {LayerVariant::Full, LayerVariant::NoRope, LayerVariant::DualKv, LayerVariant::Single,
                                 LayerVariant::S4d, LayerVariant::Softmax})
        if (name == layer_variant_name(v)) return v;
    throw Error("unknown layer variant '" + name + "'; expected one of full, norope, dualkv, single, s4d, softmax");
}

LayerForm parse_layer_form(const std::string& name) {
    if (name == "recurrence") return LayerForm::Recurrence;
    if (name == "folded") return LayerForm::Folded;
    if (name == "chunked") return LayerForm::Chunked;
    throw Error("unknown layer form '" + name + "'; expected recurrence, folded or chunked");
}

LayerBackward parse_layer_backward(const std::string& name) {
    if (name == "stored") return LayerBackward::Stored;
    if (name == "lambda-division") return LayerBackward::LambdaDivision;
    throw Error("unknown backward '" + name + "'; expected stored or lambda-division");
}

RopeOrder parse_rope_order(const std::string& name) {
    if (name == "before-xi") return RopeOrder::BeforeFeatureMap;
    if (name == "after-xi") return RopeOrder::AfterFeatureMap;
    throw Error("unknown RoPE order '" + name + "'; expected before-xi (Figure 3: SC, RoPE, xi) or after-xi");
}

LayerForm parse_readout(const std::string& name) {
    if (name == "explicit") return LayerForm::Recurrence;
    if (name == "folded") return LayerForm::Folded;
    throw Error("unknown readout '" + name + "'; expected explicit (C X_t per token) or folded (G = C^H C)");
}

}  // namespace idattn::api
