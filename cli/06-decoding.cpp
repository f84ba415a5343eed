// Chapter 6 subcommand: `decode` - prefill a prompt in chunks (eq:6.prefill), then
// decode token by token (eq:6.step) from the fixed-size state (eq:6.state), or over
// the KV cache of the softmax baseline (eq:6.cache), through the api layer.
#include <iostream>
#include <string>

#include "api/06-decoding/decode_api.hpp"
#include "api/common/names.hpp"
#include "cli/cli.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::cli {
namespace {

int run_decode(Args& a) {
    api::LayerSettings s;
    s.variant = api::parse_layer_variant(a.required("--variant"));
    s.rope = a.on_off("--rope");
    s.rope_order = api::parse_rope_order(a.optional("--rope-order", "before-xi"));
    s.form = api::parse_readout(a.optional("--readout", "explicit"));
    const api::TensorMap params = a.arrays("--params");
    const HostTensor prompt = a.tensor("--x");
    const std::size_t steps = a.count("--steps", "0");
    const std::size_t chunk = a.count("--chunk", "64");
    const bool fed = a.given("--feed");
    const HostTensor feed = fed ? a.tensor("--feed") : HostTensor{};
    const std::string out = a.output("--out");
    const std::string state_out = a.optional_output("--state-out");
    a.finish();
    if (fed && (feed.shape.size() != 2 || feed.shape[0] != steps))
        throw Error(a.command() + ": --feed has shape " + shape_str(feed.shape) + " but --steps is " +
                    std::to_string(steps) + "; expected (" + std::to_string(steps) + ", D), one input per step");
    api::Decoder dec(params, s);
    const HostTensor y0 = dec.prefill(prompt, chunk);
    const std::size_t D = y0.shape[1], N = y0.shape[0];
    // The outputs of every step are kept: (N + steps, D) doubles, checked before the first step.
    if (steps > kMaxElements)
        throw Error(a.command() + ": --steps = " + std::to_string(steps) + " is more tokens than any output can hold");
    require_memory(a.command(), "--steps = " + std::to_string(steps), {{"the outputs y", {N + steps, D}, 8}});
    HostTensor y;
    y.shape = {N + steps, D};
    y.data = y0.data;
    HostTensor next;  // the input of the next step: --feed's row, or the last output fed back
    next.shape = {D};
    next.data.assign(y0.data.end() - D, y0.data.end());
    for (std::size_t i = 0; i < steps; ++i) {
        if (fed) next.data.assign(feed.data.begin() + i * D, feed.data.begin() + (i + 1) * D);
        next = dec.step(next);
        y.data.insert(y.data.end(), next.data.begin(), next.data.end());
    }
    if (!state_out.empty()) a.also_write_npz(state_out, dec.state());
    a.write_outputs({{out, &y}});
    for (const auto& n : dec.notes()) std::cerr << "idattn decode: note: " << n << "\n";
    std::cerr << "idattn decode: backend ref (float64, CPU); prefilled " << N << " tokens in chunks of " << chunk
              << ", decoded " << steps << (fed ? " fed" : " fed-back") << " steps; state " << dec.state_floats()
              << " floats at position " << dec.position() << "; wrote " << out << " (float64, shape "
              << shape_str(y.shape) << ")" << (state_out.empty() ? "" : " and " + state_out) << "\n";
    return 0;
}

const Registrar decode_cmd(
    {"decode", "06-decoding", "prefill a prompt in chunks, then decode token by token from the state (eq:6.step)",
     {{"--variant full|norope|dualkv|single|s4d|softmax", "the cell of chapter 5's cube, or softmax (required)"},
      {"--params FILE.npz", "the layer's parameters, e.g. from layer-init (required)"},
      {"--x FILE.npy", "the prompt (N, D), N >= 1 (required)"},
      {"--steps n", "tokens to decode after the prompt (default 0)"},
      {"--feed FILE.npy", "the inputs of the n steps (n, D); without it each step's output is the next input"},
      {"--chunk K", "prefill the prompt K tokens at a time (default 64; eq:6.prefill)"},
      {"--readout explicit|folded", "C X_t per token (default) or G = C^H C (eq:6.cost)"},
      {"--rope on|off", "RoPE (default: on, except for norope and s4d)"},
      {"--rope-order before-xi|after-xi", "as for layer"},
      {"--out FILE.npy", "the outputs of the prompt and of every step, (N + n, D), written atomically (required)"},
      {"--state-out FILE.npz", "the final state: position, X (H, M, R + d, 2) and the convolution windows, or the "
                               "softmax KV cache"}},
     "idattn decode --variant full --params p.npz --x prompt.npy --steps 16 --out y.npy --state-out s.npz",
     run_decode});

}  // namespace
}  // namespace idattn::cli
