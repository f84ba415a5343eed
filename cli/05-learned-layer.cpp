// Chapter 5 subcommands: `layer` (the learned layer's forward, eq:P10 to eq:5.out, in the
// forms eq:5.ssm, eq:5.fold, eq:5.1, and with --dy its backward, eq:5.adjoint, with stored
// states or eq:5.lambda-div) and `layer-init` (the paper's initialisation, eq:5.init),
// through the api layer. Parameters and gradients travel as .npz files (api/common/npz).
#include <iostream>
#include <string>

#include "api/05-learned-layer/layer_api.hpp"
#include "api/common/names.hpp"
#include "cli/cli.hpp"
#include "core/error.hpp"

namespace idattn::cli {
namespace {

int run_layer(Args& a) {
    api::LayerSettings s;
    s.variant = api::parse_layer_variant(a.required("--variant"));
    s.rope = a.on_off("--rope");
    s.rope_order = api::parse_rope_order(a.optional("--rope-order", "before-xi"));
    s.form = api::parse_layer_form(a.optional("--form", "recurrence"));
    s.chunk = a.count("--chunk", "16");
    const api::TensorMap params = a.arrays("--params");
    const HostTensor x = a.tensor("--x");
    const std::string out = a.output("--out");
    const bool backward = a.given("--dy") || a.given("--grads-out");
    if (s.form != ref::LayerForm::Chunked && a.given("--chunk"))
        a.note("--chunk applies to --form chunked only; ignored for --form " + ref::layer_form_name(s.form));
    if (!backward) {
        a.refuse_if_given({"--backward", "--checkpoint"}, "they choose the backward, which needs --dy and --grads-out");
        a.finish();
        write_result(a, out, api::layer_forward(params, x, s), "layer");
        return 0;
    }
    const HostTensor dy = a.tensor("--dy");
    const std::string grads_out = a.output("--grads-out");
    s.backward = api::parse_layer_backward(a.optional("--backward", "stored"));
    s.checkpoint = a.count("--checkpoint", "16");
    if (s.backward == ref::LayerBackward::Stored && a.given("--checkpoint"))
        a.note("--checkpoint applies to --backward lambda-division only; ignored for the stored-states backward");
    a.finish();
    const api::Run y = api::layer_forward(params, x, s);
    const api::LayerGradRun g = api::layer_backward(params, x, dy, s);
    a.also_write_npz(grads_out, g.grads);
    write_result(a, out, y, "layer");
    std::cerr << "idattn layer: wrote " << grads_out << " (dL/dx and dL/dp for " << g.grads.size() - 1
              << " parameter arrays, float64; backward " << ref::layer_backward_name(s.backward) << ")\n";
    return 0;
}

int run_layer_init(Args& a) {
    const ref::LayerVariant v = api::parse_layer_variant(a.required("--variant"));
    ref::LayerInitSpec spec;
    spec.D = a.required_count("--d-model");
    spec.H = a.required_count("--heads");
    spec.R = a.required_count("--R");
    spec.d = a.required_count("--d-head");
    if (v == ref::LayerVariant::Softmax)
        a.refuse_if_given({"--M"}, "the softmax variant has no SSM state");
    else
        spec.M = a.required_count("--M");
    spec.seed = a.count("--seed", "0");
    spec.gate = a.on_off("--gate").value_or(false);
    spec.rope = a.on_off("--rope").value_or(ref::layer_default_rope(v));
    const std::string out = a.output("--out");
    a.finish();
    const api::TensorMap p = api::layer_init(v, spec);
    a.also_write_npz(out, p);
    a.write_outputs({});
    std::cerr << "idattn layer-init: wrote " << out << " (" << p.size() - 1 << " arrays and 'heads', variant "
              << ref::layer_variant_name(v) << ", seed " << spec.seed << ")\n";
    return 0;
}

const Option kVariant{"--variant full|norope|dualkv|single|s4d|softmax",
                      "the cell of Figure 3's ablation cube, or the softmax baseline (required)"};
const Option kRope{"--rope on|off", "RoPE on the query and key paths (default: on, except for norope and s4d)"};

const Registrar layer_cmd({"layer", "05-learned-layer",
                           "the learned layer y = layer(x) (eq:P10 to eq:5.out), and with --dy its gradients",
                           {kVariant,
                            {"--params FILE.npz", "the parameters (chapter 5's names and 'heads'), e.g. "
                                                  "from layer-init (required)"},
                            {"--x FILE.npy", "x (N, D) or (B, N, D) (required)"},
                            kOutOption,
                            {"--dy FILE.npy", "dL/dy (the shape of x): run the backward too"},
                            {"--grads-out FILE.npz", "the gradients: 'x' and one array per parameter name "
                                                     "(with --dy)"},
                            {"--backward stored|lambda-division", "keep every state (default), or checkpoints "
                                                                  "and division by Lambda (eq:5.lambda-div)"},
                            {"--checkpoint K", "tokens per checkpoint segment of lambda-division (default 16)"},
                            {"--form recurrence|folded|chunked", "the forward's form: eq:5.ssm (default), "
                                                                 "eq:5.fold or eq:5.1"},
                            {"--chunk K", "tokens per chunk of --form chunked (default 16)"},
                            kRope,
                            {"--rope-order before-xi|after-xi", "RoPE before the feature map (Figure 3, "
                                                                "default) or after it"}},
                           "idattn layer --variant full --params p.npz --x x.npy --out y.npy --dy dy.npy "
                           "--grads-out g.npz",
                           run_layer});

const Registrar layer_init_cmd({"layer-init", "05-learned-layer",
                                "the paper's initialisation of the learned layer (eq:5.init) as an .npz",
                                {kVariant,
                                 {"--d-model D", "model width (required)"},
                                 {"--heads H", "number of heads (required)"},
                                 {"--R R", "key-feature width per head (required; even with RoPE on)"},
                                 {"--d-head d", "value width per head (required)"},
                                 {"--M M", "complex modes per head (required, except for softmax)"},
                                 {"--seed S", "seed of the draws (default 0)"},
                                 {"--gate on|off", "add the output gate W_g (default off)"},
                                 kRope,
                                 {"--out FILE.npz", "output file, written atomically (required)"}},
                                "idattn layer-init --variant full --d-model 64 --heads 4 --R 16 --d-head 16 --M 16 "
                                "--seed 0 --out p.npz",
                                run_layer_init});

}  // namespace
}  // namespace idattn::cli
