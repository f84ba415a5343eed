#include "api/06-decoding/decode_api.hpp"

#include <algorithm>

namespace idattn::api {

Decoder::Decoder(const TensorMap& params, const LayerSettings& settings)
    : layer_(ref::prepare_decode(settings.variant, layer_params("decode", settings, params), layer_options(settings))),
      state_(ref::decode_start(layer_)) {}

HostTensor Decoder::prefill(const HostTensor& x, std::size_t chunk) {
    require_tensor("decode", "x", x, {2});
    if (notes_.empty()) note_dtypes(Impl::Ref, {{"x", &x}}, notes_);  // said once per decoder
    ref::LMat xm = xt::zeros<double>({x.shape[0], x.shape[1]});
    std::copy(x.data.begin(), x.data.end(), xm.begin());
    const ref::LMat y = ref::prefill(layer_, state_, xm, chunk);
    HostTensor out;
    out.shape = {y.shape(0), y.shape(1)};
    out.data.assign(y.begin(), y.end());
    return out;
}

HostTensor Decoder::step(const HostTensor& x) {
    require_tensor("decode", "x", x, {1});
    if (notes_.empty()) note_dtypes(Impl::Ref, {{"x", &x}}, notes_);  // said once per decoder
    xt::xtensor<double, 1> xv = xt::zeros<double>({x.shape[0]});
    std::copy(x.data.begin(), x.data.end(), xv.begin());
    const auto y = ref::decode_step(layer_, state_, xv);
    HostTensor out;
    out.shape = {y.size()};
    out.data.assign(y.begin(), y.end());
    return out;
}

TensorMap Decoder::state() const {
    TensorMap m;
    HostTensor pos;
    pos.dtype = "int64";
    pos.data = {double(state_.position)};
    m.emplace("position", pos);
    auto real = [](const ref::LMat& a) {
        HostTensor t;
        t.shape = {a.shape(0), a.shape(1)};
        t.data.assign(a.begin(), a.end());
        return t;
    };
    if (layer_.variant == ref::LayerVariant::Softmax) {
        m.emplace("k_cache", real(state_.k_cache));
        m.emplace("v_cache", real(state_.v_cache));
        return m;
    }
    HostTensor X;
    X.shape = {state_.X.size(), state_.X[0].shape(0), state_.X[0].shape(1), 2};
    for (const auto& x : state_.X)
        for (const auto& c : x) {
            X.data.push_back(c.real());
            X.data.push_back(c.imag());
        }
    m.emplace("X", X);
    for (const auto& [name, h] : state_.history) m.emplace("history_" + name, real(h));
    return m;
}

}  // namespace idattn::api
