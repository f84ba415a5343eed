// Chapter 5, the paths of the layer (internal to ref/05-learned-layer and the
// decoding of ref/06-decoding): which token-wise maps of layer_maps.hpp turn x
// into the core's inputs for each cell of the ablation cube (chapter 5's contract),
// and their forward over a run of tokens.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ref/05-learned-layer/layer.hpp"

namespace idattn::ref::paths {

// One path from x to a per-head input of the core: x W, then the steps named.
enum class Stage { Conv, Rope, Xi, Norm };
struct PathSpec {
    std::string w;            // projection, e.g. "W_k"
    std::string conv;         // short convolution (eq:5.conv), or empty
    bool rope = false;        // eq:5.rope
    bool xi = false;          // eq:P10
    std::string gain, bias;   // N+b (eq:P12), or empty
};

// The paths of each cell of the cube: query, key-like (k or a) and value-like
// (v or b). No query path: the readout uses c_read.
struct Cell {
    std::optional<PathSpec> q;
    PathSpec key, val;
};
Cell cell(LayerVariant v, bool rope);

// Where a run of tokens starts: the position of its first token (RoPE's t) and
// the short convolution's input of the 3 tokens before it ((3, channels), zero
// before t = 0). A whole sequence starts at {0, zeros}.
struct PathStart {
    std::size_t position = 0;
    const LMat* history = nullptr;  // null: zeros (the start of the sequence)
};

// The forward of one path over x (n, D), keeping the input of every stage for
// the backward, and the projected (pre-convolution) rows for the next run's history.
struct PathTape {
    std::vector<Stage> stages;
    std::vector<LMat> inputs;  // inputs[i] is the input of stages[i]
    LMat out;                  // (n, H*w)
    LMat projected;            // (n, H*w) x W
};
using Matrices = std::map<std::string, LMat>;
// Every 2-D parameter array as an LMat, copied once (a path reads them per run).
Matrices matrices(const LayerParams& p);
PathTape path_forward(const PathSpec& s, const Matrices& w, std::size_t H, const LMat& x, RopeOrder order,
                      PathStart start = {});

// The last 3 rows of [history; projected] (zeros before t = 0): the history of the next run.
LMat next_history(const LMat* history, const LMat& projected);

LMat mat(const Arrays& a, const std::string& n);
LMat head_cols(const LMat& a, std::size_t h, std::size_t w);

}  // namespace idattn::ref::paths
