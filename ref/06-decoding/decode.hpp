// Chapter 6, exact reference: decoding. The learned layer of chapter 5 run one
// token at a time (or a chunk of tokens at a time) from a state that a decoder
// carries between tokens. See chapters/06-decoding.md.
//
// The state (eq:6.state). For the SSM variants it is fixed in size: per head the
// complex state X (M, R + d), the last 3 projected rows of every convolved path
// (the short convolution's window) and the position (RoPE's t). For the softmax
// baseline it is the KV cache, which grows by one row per token (eq:6.cache).
//
// One function does the work: layer_continue runs the layer over a run of n
// tokens from a state and leaves the state after them. A decode step is a run of
// one token (eq:6.step); prefill is a sequence of runs of K tokens (eq:6.prefill);
// a whole sequence from the empty state is chapter 5's layer_forward.
//
// A decoder checks and prepares the parameters once (DecodeLayer: the matrices,
// Lambda, B, C and G = C^H C of every head), not at every token: a step then does
// only the step's work, which is what the benchmarks measure.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "ref/05-learned-layer/layer.hpp"
#include "ref/05-learned-layer/layer_paths.hpp"

namespace idattn::ref {

struct DecodeState {
    LayerVariant variant = LayerVariant::Full;
    std::size_t position = 0;             // tokens seen so far
    std::vector<CMat> X;                  // SSM variants: per head, X (M, R + d)       eq:6.state
    std::map<std::string, LMat> history;  // per convolved path (its W's name): (3, H*w) eq:6.state
    LMat k_cache, v_cache;                // softmax: (position, H*R) rotated keys, (position, H*d) values   eq:6.cache
};

// The parameters checked (check_layer_params) and prepared for decoding. opt.rope
// and opt.rope_order as for the layer; opt.form recurrence (the explicit readout
// C X_t) or folded (G = C^H C, eq:6.cost); chunked is refused.
struct DecodeLayer {
    LayerVariant variant = LayerVariant::Full;
    LayerOptions options;
    LayerDims dims;
    LayerParams params;
    paths::Matrices matrices;     // every 2-D array
    std::vector<CoreParams> core;  // per head (SSM variants)
    std::vector<CMat> g;           // per head G = C^H C (folded readout only)
};
DecodeLayer prepare_decode(LayerVariant v, const LayerParams& p, const LayerOptions& opt);

// The empty state: position 0, X = 0, zero history, empty cache.
DecodeState decode_start(const DecodeLayer& layer);

// How many floats the state holds (complex counted as 2): fixed for the SSM
// variants, 2 * position * ... for the softmax cache.
std::size_t state_floats(const DecodeState& s);

// Throws idattn::Error, prefixed with `what`, unless the state belongs to this
// variant and these parameters: every X (M, R + d) for H heads, every history
// (3, H*w) of a convolved path, caches (position, H*R) and (position, H*d).
void check_state(const std::string& what, const DecodeLayer& layer, const DecodeState& s);

// The layer over x (n, D), continuing from `state` and leaving it after the n
// tokens: y (n, D).
LMat layer_continue(const DecodeLayer& layer, DecodeState& state, const LMat& x);

// One token x_t (D,) -> y_t (D,)     eq:6.step
xt::xtensor<double, 1> decode_step(const DecodeLayer& layer, DecodeState& state, const xt::xtensor<double, 1>& x);

// The prompt x (N, D) in runs of `chunk` tokens (the last may be shorter): y (N, D);
// the state is left after the prompt. Peak memory is that of one chunk's
// activations plus the state, whatever N     eq:6.prefill
LMat prefill(const DecodeLayer& layer, DecodeState& state, const LMat& x, std::size_t chunk);

}  // namespace idattn::ref
