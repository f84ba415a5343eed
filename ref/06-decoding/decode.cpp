// Chapter 6: decoding with the learned layer of chapter 5 - the state a decoder
// carries, a run of tokens from a state (one token: a decode step; runs of K: a
// chunked prefill), and softmax decoding over a KV cache. Literal: the same paths
// and core as chapter 5's forward, started from the state instead of from zero.
#include "ref/06-decoding/decode.hpp"

#include <cmath>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "core/validate.hpp"
#include "ref/05-learned-layer/layer_maps.hpp"
#include "ref/05-learned-layer/layer_paths.hpp"

namespace idattn::ref {

namespace {

using paths::head_cols;

std::vector<const paths::PathSpec*> convolved(const paths::Cell& c) {
    std::vector<const paths::PathSpec*> out;
    for (const paths::PathSpec* s : {c.q ? &*c.q : nullptr, &c.key, &c.val})
        if (s && !s->conv.empty()) out.push_back(s);
    return out;
}

std::size_t width(const LayerDims& k, const paths::Cell& c, const paths::PathSpec* s) {
    return s == &c.val ? k.d : k.R;
}

// Appends rows to a cache (rows, C).
LMat append_rows(const LMat& cache, const LMat& rows) {
    if (cache.shape(0) == 0) return rows;
    return xt::concatenate(xt::xtuple(cache, rows), 0);
}

}  // namespace

DecodeLayer prepare_decode(LayerVariant v, const LayerParams& p, const LayerOptions& opt) {
    const std::string what = "decode";
    if (opt.form == LayerForm::Chunked)
        throw Error(what + ": a decoder runs the recurrence (the explicit readout, or the folded one); the chunked "
                           "form is chapter 5's parallel forward");
    DecodeLayer l{v, opt, check_layer_params(what, v, p, opt.rope), p, paths::matrices(p), {}, {}};
    if (v == LayerVariant::Softmax) return l;
    for (std::size_t h = 0; h < l.dims.H; ++h) {
        l.core.push_back(core_params(p, h));
        if (opt.form == LayerForm::Folded) l.g.push_back(fold_readout(l.core.back().c));  // once per head   eq:6.cost
    }
    return l;
}

DecodeState decode_start(const DecodeLayer& layer) {
    const LayerDims& k = layer.dims;
    DecodeState s;
    s.variant = layer.variant;
    const paths::Cell c = paths::cell(layer.variant, layer.options.rope);
    if (layer.variant == LayerVariant::Softmax) {
        s.k_cache = xt::zeros<double>({std::size_t{0}, k.H * k.R});
        s.v_cache = xt::zeros<double>({std::size_t{0}, k.H * k.d});
        return s;
    }
    for (std::size_t h = 0; h < k.H; ++h) s.X.push_back(CMat(xt::zeros<std::complex<double>>({k.M, k.R + k.d})));
    for (const paths::PathSpec* ps : convolved(c))
        s.history.emplace(ps->w, LMat(xt::zeros<double>({std::size_t{3}, k.H * width(k, c, ps)})));
    return s;
}

// 2 M (R + d) per head for X, 3 H w per convolved path, H (R + d) per cached token     eq:6.state
std::size_t state_floats(const DecodeState& s) {
    std::size_t n = s.k_cache.size() + s.v_cache.size();
    for (const CMat& x : s.X) n += 2 * x.size();  // complex counted as 2
    for (const auto& [name, h] : s.history) n += h.size();
    return n;
}

void check_state(const std::string& what, const DecodeLayer& layer, const DecodeState& s) {
    const LayerVariant v = layer.variant;
    if (s.variant != v)
        throw Error(what + ": the state belongs to the " + layer_variant_name(s.variant) +
                    " variant, not to the " + layer_variant_name(v) + " variant");
    const LayerDims& k = layer.dims;
    auto shape2 = [](const LMat& m) { return std::vector<std::size_t>{m.shape(0), m.shape(1)}; };
    if (v == LayerVariant::Softmax) {
        const std::vector<std::size_t> ek{s.position, k.H * k.R}, ev{s.position, k.H * k.d};
        if (shape2(s.k_cache) != ek || shape2(s.v_cache) != ev)
            throw Error(what + ": the KV cache has shapes " + shape_str(shape2(s.k_cache)) + " and " +
                        shape_str(shape2(s.v_cache)) + " but the state is at position " + std::to_string(s.position) +
                        " and the parameters have H = " + std::to_string(k.H) + ", R = " + std::to_string(k.R) +
                        ", d = " + std::to_string(k.d) + "; expected " + shape_str(ek) + " and " + shape_str(ev));
        return;
    }
    if (s.X.size() != k.H)
        throw Error(what + ": the state has " + std::to_string(s.X.size()) + " heads but the parameters have H = " +
                    std::to_string(k.H));
    for (std::size_t h = 0; h < k.H; ++h)
        if (s.X[h].shape(0) != k.M || s.X[h].shape(1) != k.R + k.d)
            throw Error(what + ": the state X of head " + std::to_string(h) + " has shape " +
                        shape_str({s.X[h].shape(0), s.X[h].shape(1)}) + " but expected (M, R + d) = (" +
                        std::to_string(k.M) + ", " + std::to_string(k.R + k.d) + ")");
    const paths::Cell c = paths::cell(v, false);
    const auto conv = convolved(c);
    if (s.history.size() != conv.size())
        throw Error(what + ": the state holds " + std::to_string(s.history.size()) +
                    " short-convolution histories but the " + layer_variant_name(v) + " variant has " +
                    std::to_string(conv.size()) + " convolved paths");
    for (const paths::PathSpec* ps : conv) {
        auto it = s.history.find(ps->w);
        const std::vector<std::size_t> e{3, k.H * width(k, c, ps)};
        if (it == s.history.end() || shape2(it->second) != e)
            throw Error(what + ": the short-convolution history of the " + ps->w + " path is missing or not of shape " +
                        shape_str(e));
    }
}

LMat layer_continue(const DecodeLayer& layer, DecodeState& state, const LMat& x) {
    const std::string what = "decode";
    const LayerVariant v = layer.variant;
    const LayerOptions& opt = layer.options;
    const LayerDims& k = layer.dims;
    check_state(what, layer, state);
    const std::vector<std::size_t> xs{x.shape(0), x.shape(1)};
    if (xs[0] == 0 || xs[1] != k.D)
        throw Error(what + ": x has shape " + shape_str(xs) + " but expected (n, " + std::to_string(k.D) +
                    ") with n >= 1 tokens (D = " + std::to_string(k.D) + " from W_o)");
    require_finite(what, "x", x.data(), xs);
    const std::size_t n = xs[0], t0 = state.position;
    const paths::Cell c = paths::cell(v, opt.rope);
    // Each path continues from the state's position and short-convolution history     eq:6.state
    auto run = [&](const paths::PathSpec& s) {
        const LMat* hist = s.conv.empty() ? nullptr : &state.history.at(s.w);
        return paths::path_forward(s, layer.matrices, k.H, x, opt.rope_order, {t0, hist});
    };
    const std::optional<paths::PathTape> q = c.q ? std::optional<paths::PathTape>(run(*c.q)) : std::nullopt;
    const paths::PathTape key = run(c.key), val = run(c.val);
    for (const auto& [s, tape] : {std::pair{c.q ? &*c.q : nullptr, q ? &*q : nullptr}, std::pair{&c.key, &key},
                                  std::pair{&c.val, &val}})
        if (s && !s->conv.empty()) state.history.at(s->w) = paths::next_history(&state.history.at(s->w), tape->projected);

    LMat o = xt::zeros<double>({n, k.H * k.d});
    if (v == LayerVariant::Softmax) {
        state.k_cache = append_rows(state.k_cache, key.out);  // the cache grows by n rows     eq:6.cache
        state.v_cache = append_rows(state.v_cache, val.out);
        for (std::size_t h = 0; h < k.H; ++h)
            xt::view(o, xt::all(), xt::range(h * k.d, (h + 1) * k.d)) =
                // the new queries against the whole cache, bottom-right aligned     eq:6.cache
                xt::linalg::dot(maps::causal_softmax(head_cols(q->out, h, k.R), head_cols(state.k_cache, h, k.R)),
                                head_cols(state.v_cache, h, k.d));
    } else {
        for (std::size_t h = 0; h < k.H; ++h) {
            LMat f = xt::zeros<double>({n, k.R});
            if (q) {
                f = head_cols(q->out, h, k.R);
            } else {
                for (std::size_t t = 0; t < n; ++t)
                    for (std::size_t r = 0; r < k.R; ++r) f(t, r) = layer.matrices.at("c_read")(h, r);
            }
            const LMat z = xt::concatenate(xt::xtuple(head_cols(key.out, h, k.R), head_cols(val.out, h, k.d)), 1);
            // X <- Lambda X + B z_t^T, then the readout, token by token from the carried X     eq:6.step
            // explicit C X_t: M^2 (R + d) per token; folded G kappa_t: M (R + d) + M^2     eq:6.cost
            xt::view(o, xt::all(), xt::range(h * k.d, (h + 1) * k.d)) =
                core_forward_from(layer.core[h], f, z, state.X[h], layer.g.empty() ? nullptr : &layer.g[h]);
        }
    }
    state.position += n;
    const LMat og = k.gate ? maps::gate(o, maps::linear(x, layer.matrices.at("W_g"))) : o;  // eq:5.out
    return maps::linear(og, layer.matrices.at("W_o"));
}

xt::xtensor<double, 1> decode_step(const DecodeLayer& layer, DecodeState& state, const xt::xtensor<double, 1>& x) {
    const LMat row = xt::reshape_view(x, {std::size_t{1}, x.size()});
    return xt::view(layer_continue(layer, state, row), 0);  // a run of one token     eq:6.step
}

LMat prefill(const DecodeLayer& layer, DecodeState& state, const LMat& x, std::size_t chunk) {
    if (chunk == 0) throw Error("prefill: the chunk length K must be >= 1, got 0");
    const std::size_t N = x.shape(0);
    LMat y = xt::zeros<double>(x.shape());
    for (std::size_t t0 = 0; t0 < N; t0 += chunk) {  // runs of K tokens, the state carried     eq:6.prefill
        const std::size_t t1 = std::min(N, t0 + chunk);
        xt::view(y, xt::range(t0, t1), xt::all()) =
            layer_continue(layer, state, xt::view(x, xt::range(t0, t1), xt::all()));
    }
    return y;
}

}  // namespace idattn::ref
