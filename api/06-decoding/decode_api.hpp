// Chapter 6 through the api layer (CLI `idattn decode`, Python `idattn.Decoder`):
// a decoder object holding the parameters, the options and the state of
// ref/06-decoding, fed with float32/float64 host tensors.
#pragma once

#include <cstddef>
#include <string>

#include "api/05-learned-layer/layer_api.hpp"
#include "ref/06-decoding/decode.hpp"

namespace idattn::api {

class Decoder {
public:
    // Checks the parameters (as api::layer_forward does) and starts from the empty state.
    Decoder(const TensorMap& params, const LayerSettings& settings);

    // The prompt x (N, D) in runs of `chunk` tokens (eq:6.prefill): y (N, D), float64.
    HostTensor prefill(const HostTensor& x, std::size_t chunk);
    // One token x (D,) -> y (D,), float64 (eq:6.step).
    HostTensor step(const HostTensor& x);

    std::size_t position() const { return state_.position; }
    std::size_t state_floats() const { return ref::state_floats(state_); }
    // The state as named tensors: 'position' (0-d int64); SSM variants 'X' (H, M, R + d, 2) and
    // 'history_<W>' (3, H*w) per convolved path; softmax 'k_cache', 'v_cache'.
    TensorMap state() const;
    // Notes for the dtypes of the inputs seen so far (float32 promoted).
    const std::vector<std::string>& notes() const { return notes_; }

private:
    ref::DecodeLayer layer_;
    ref::DecodeState state_;
    std::vector<std::string> notes_;
};

}  // namespace idattn::api
