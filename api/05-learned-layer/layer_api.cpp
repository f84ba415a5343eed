#include "api/05-learned-layer/layer_api.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::api {

namespace {

xt::xarray<double> to_array(const HostTensor& t) {
    xt::xarray<double> a = xt::zeros<double>(t.shape);
    std::copy(t.data.begin(), t.data.end(), a.begin());
    return a;
}

HostTensor to_tensor(const xt::xarray<double>& a) {
    HostTensor t;
    t.shape.assign(a.shape().begin(), a.shape().end());
    t.data.assign(a.begin(), a.end());
    return t;
}

// x (N, D) or (B, N, D) as (B, N, D).
xt::xtensor<double, 3> batched(const HostTensor& t) {
    const std::size_t B = t.shape.size() == 3 ? t.shape[0] : 1;
    xt::xtensor<double, 3> x = xt::zeros<double>({B, t.shape[t.shape.size() - 2], t.shape.back()});
    std::copy(t.data.begin(), t.data.end(), x.begin());
    return x;
}

HostTensor unbatched(const xt::xtensor<double, 3>& y, std::size_t rank) {
    HostTensor t;
    t.shape.assign(y.shape().begin() + (3 - rank), y.shape().end());
    t.data.assign(y.begin(), y.end());
    return t;
}

// x (N, D) or (B, N, D) with D = the model width of W_o, checked on the shape the user gave.
void check_x(const std::string& what, const ref::LayerParams& p, const HostTensor& x) {
    const std::size_t D = p.arrays.at("W_o").shape(1);
    if (x.shape.back() != D || x.shape.front() == 0 || x.shape[x.shape.size() - 2] == 0)
        throw Error(what + ": x has shape " + shape_str(x.shape) + " but expected (N, " + std::to_string(D) +
                    ") or (B, N, " + std::to_string(D) + ") with B, N >= 1 (D = " + std::to_string(D) + " from W_o)");
}

std::vector<std::pair<std::string, const HostTensor*>> named(const TensorMap& params) {
    std::vector<std::pair<std::string, const HostTensor*>> v;
    for (const auto& [n, t] : params)
        if (n != "heads") v.push_back({"'" + n + "'", &t});
    return v;
}

}  // namespace

ref::LayerOptions layer_options(const LayerSettings& s) {
    ref::LayerOptions o;
    o.rope = s.rope.value_or(ref::layer_default_rope(s.variant));
    o.rope_order = s.rope_order;
    o.form = s.form;
    o.chunk = s.chunk;
    o.backward = s.backward;
    o.checkpoint = s.checkpoint;
    return o;
}

ref::LayerParams layer_params(const std::string& what, const LayerSettings& s, const TensorMap& params) {
    ref::LayerParams p;
    auto heads = params.find("heads");
    if (heads == params.end())
        throw Error(what + ": the parameters have no 'heads' (a 0-d integer array holding the number of heads H)");
    const HostTensor& h = heads->second;
    if (!h.shape.empty() || h.data.size() != 1)
        throw Error(what + ": 'heads' has shape " + shape_str(h.shape) + "; expected a 0-d integer array holding H");
    const double hv = h.data[0];
    if (!(hv >= 1) || hv != std::floor(hv) || hv > double(kMaxElements))
        throw Error(what + ": 'heads' must be an integer >= 1, got " + num_str(hv));
    p.heads = static_cast<std::size_t>(hv);
    for (const auto& [n, t] : params) {
        if (n == "heads") continue;
        if (t.dtype != "float32" && t.dtype != "float64")
            throw Error(what + ": '" + n + "' has dtype " + t.dtype + "; parameter arrays are float32 or float64");
        require_sane_size(what, "'" + n + "'", t.shape);
        p.arrays.emplace(n, to_array(t));
    }
    ref::check_layer_params(what, s.variant, p, layer_options(s).rope);
    return p;
}

Run layer_forward(const TensorMap& params, const HostTensor& x, const LayerSettings& s) {
    const std::string what = "layer";
    require_tensor(what, "x", x, {2, 3});
    const ref::LayerParams p = layer_params(what, s, params);
    check_x(what, p, x);
    Run run;
    auto inputs = named(params);
    inputs.push_back({"x", &x});
    note_dtypes(Impl::Ref, inputs, run.notes);
    run.out = unbatched(ref::layer_forward(s.variant, p, batched(x), layer_options(s)), x.shape.size());
    run.backend = backend_name(Impl::Ref);
    return require_finite_output(what, std::move(run), inputs);
}

LayerGradRun layer_backward(const TensorMap& params, const HostTensor& x, const HostTensor& dy,
                            const LayerSettings& s) {
    const std::string what = "layer backward";
    require_tensor(what, "x", x, {2, 3});
    require_tensor(what, "dy", dy, {2, 3});
    if (dy.shape != x.shape)
        throw Error(what + ": dy has shape " + shape_str(dy.shape) + " but x has shape " + shape_str(x.shape) +
                    "; expected dy of the shape of x (and y)");
    const ref::LayerParams p = layer_params(what, s, params);
    check_x(what, p, x);
    LayerGradRun run;
    auto inputs = named(params);
    inputs.push_back({"x", &x});
    inputs.push_back({"dy", &dy});
    note_dtypes(Impl::Ref, inputs, run.notes);
    const ref::LayerGrads g = ref::layer_backward(s.variant, p, batched(x), batched(dy), layer_options(s));
    run.grads.emplace("x", unbatched(g.dx, x.shape.size()));
    for (const auto& [n, a] : g.params) run.grads.emplace(n, to_tensor(a));
    for (const auto& [n, t] : run.grads) {
        Run one;
        one.out = t;
        require_finite_output(what + " (the gradient of '" + n + "')", std::move(one), inputs);
    }
    run.backend = backend_name(Impl::Ref);
    return run;
}

TensorMap layer_init(ref::LayerVariant v, const ref::LayerInitSpec& spec) {
    const ref::LayerParams p = ref::layer_init(v, spec);
    TensorMap out;
    HostTensor heads;
    heads.dtype = "int64";
    heads.data = {double(p.heads)};
    out.emplace("heads", heads);
    for (const auto& [n, a] : p.arrays) out.emplace(n, to_tensor(a));
    return out;
}

}  // namespace idattn::api
