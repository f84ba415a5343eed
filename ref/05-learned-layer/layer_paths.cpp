// Chapter 5: the paths of each cell of the cube (chapter 5's contract) and their
// forward over a run of tokens, also the decoding's (chapter 6).
#include "ref/05-learned-layer/layer_paths.hpp"

#include <xtensor/xview.hpp>

#include "core/error.hpp"
#include "ref/05-learned-layer/layer_maps.hpp"

namespace idattn::ref::paths {

Cell cell(LayerVariant v, bool rope) {
    switch (v) {
        case LayerVariant::Full:
        case LayerVariant::NoRope:
            return {PathSpec{"W_q", "conv_q", rope, true, "", ""}, PathSpec{"W_k", "conv_k", rope, true, "g_k", "b_k"},
                    PathSpec{"W_v", "", false, false, "g_v", "b_v"}};
        case LayerVariant::DualKv:
            return {std::nullopt, PathSpec{"W_k", "conv_k", rope, true, "g_k", "b_k"},
                    PathSpec{"W_v", "", false, false, "g_v", "b_v"}};
        case LayerVariant::Single:
            return {PathSpec{"W_q", "conv_q", rope, true, "", ""}, PathSpec{"W_a", "conv_a", rope, false, "g_a", "b_a"},
                    PathSpec{"W_b", "conv_b", false, false, "g_b", "b_b"}};
        case LayerVariant::S4d:
            return {std::nullopt, PathSpec{"W_a", "conv_a", rope, false, "g_a", "b_a"},
                    PathSpec{"W_b", "conv_b", false, false, "g_b", "b_b"}};
        case LayerVariant::Softmax:  // eq:5.softmax: q, k with RoPE, v plain; no convolution, no norm
            return {PathSpec{"W_q", "", rope, false, "", ""}, PathSpec{"W_k", "", rope, false, "", ""},
                    PathSpec{"W_v", "", false, false, "", ""}};
    }
    throw Error("layer: unknown variant");
}

LMat mat(const Arrays& a, const std::string& n) { return LMat(a.at(n)); }

LMat head_cols(const LMat& a, std::size_t h, std::size_t w) {
    return xt::view(a, xt::all(), xt::range(h * w, (h + 1) * w));
}

namespace {

// The short convolution of a run that follows `history` (eq:5.conv): convolve
// [history; u] and keep the last n rows, so the first tokens see the previous run's.
LMat conv_after(const LMat& u, const LMat& conv, const LMat* history) {
    if (!history) return maps::short_conv(u, conv);
    const std::size_t n = u.shape(0), k = history->shape(0);
    const LMat joined = xt::concatenate(xt::xtuple(*history, u), 0);
    return xt::view(maps::short_conv(joined, conv), xt::range(k, k + n), xt::all());
}

}  // namespace

LMat next_history(const LMat* history, const LMat& projected) {
    const std::size_t C = projected.shape(1);
    const LMat before = history ? *history : LMat(xt::zeros<double>({std::size_t{3}, C}));
    const LMat joined = xt::concatenate(xt::xtuple(before, projected), 0);
    return xt::view(joined, xt::range(joined.shape(0) - 3, joined.shape(0)), xt::all());
}

Matrices matrices(const LayerParams& p) {
    Matrices m;
    for (const auto& [n, a] : p.arrays)
        if (a.dimension() == 2) m.emplace(n, LMat(a));
    return m;
}

PathTape path_forward(const PathSpec& s, const Matrices& w, std::size_t H, const LMat& x, RopeOrder order,
                      PathStart start) {
    PathTape tape;
    tape.projected = maps::linear(x, w.at(s.w));
    LMat cur = tape.projected;
    auto push = [&](Stage st, LMat next) {
        tape.stages.push_back(st);
        tape.inputs.push_back(std::move(cur));
        cur = std::move(next);
    };
    if (!s.conv.empty()) push(Stage::Conv, conv_after(cur, w.at(s.conv), start.history));
    const bool rope_first = order == RopeOrder::BeforeFeatureMap;
    if (s.rope && rope_first) push(Stage::Rope, maps::rope(cur, H, false, start.position));
    if (s.xi) push(Stage::Xi, maps::feature_map(cur, H));
    if (s.rope && !rope_first) push(Stage::Rope, maps::rope(cur, H, false, start.position));
    if (!s.gain.empty()) push(Stage::Norm, maps::norm_bias(cur, w.at(s.gain), w.at(s.bias)));
    tape.out = std::move(cur);
    return tape;
}

}  // namespace idattn::ref::paths
