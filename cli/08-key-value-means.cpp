// Chapter 8 subcommand: `kvm` - Key-Value Means attention (eq:8.window to eq:8.readout)
// on .npy files, through the api layer.
#include <string>

#include "api/08-key-value-means/kvm_api.hpp"
#include "cli/cli.hpp"
#include "core/error.hpp"

namespace idattn::cli {
namespace {

int run_kvm(Args& a) {
    const HostTensor q = a.tensor("--q"), k = a.tensor("--k"), v = a.tensor("--v");
    const HostTensor g = a.given("--g") ? a.tensor("--g") : HostTensor{{}, "float64", {}};
    ref::KvmOptions o;
    o.chunk = a.count("--chunk", "256");
    o.window_chunks = a.count("--window-chunks", "2");
    o.sinks = a.count("--sinks", "1");
    o.budget = api::parse_kvm_budget(a.optional("--budget", "fixed:256"), o.chunk);
    o.rope_dims = a.count("--rope-dims", "0");
    o.state_norm = a.on_off("--state-norm").value_or(true);
    o.gate_appends = a.on_off("--gate-appends").value_or(false);
    o.tau_state = a.number("--tau-state", "1");
    o.tau_window = a.number("--tau-window", "1");
    const auto form = api::parse_kvm_form(a.optional("--form", "prefill"));
    const std::string out = a.output("--out");
    a.finish();
    write_result(a, out, api::kvm_attention(q, k, v, g, o, form), "kvm");
    return 0;
}

const Registrar kvm_cmd(
    {"kvm", "08-key-value-means", "Key-Value Means: softmax over [state rows; block window] (eq:8.readout)",
     {{"--q FILE.npy", "queries (N, dk) or (B, H, N, dk) (required)"},
      {"--k FILE.npy", "keys, the shape of q (required)"},
      {"--v FILE.npy", "values (N, dv) or (B, H, N, dv) (required)"},
      {"--g FILE.npy", "merge gates (N,) or (B, H, N), each > 0 (default: all 1)"},
      {"--chunk C", "tokens per chunk (default 256)"},
      {"--window-chunks W", "chunks in the sliding window, L = W C (default 2)"},
      {"--sinks S", "state rows never merged into (default 1; < C)"},
      {"--budget fixed:R|sqrt:F|saturate:R", "the state's size schedule (default fixed:256; eq:8.budget)"},
      {"--rope-dims r", "leading key channels zeroed in memory keys (default 0)"},
      {"--state-norm on|off", "LN_s on memory and state keys (default on)"},
      {"--gate-appends on|off", "gate appended rows as the reference code does (default off: the paper)"},
      {"--tau-state x", "inverse temperature of state keys (default 1)"},
      {"--tau-window x", "inverse temperature of window keys (default 1)"},
      {"--form prefill|decode", "a chunk of queries at a time, or one token at a time (same outputs)"},
      kOutOption},
     "idattn kvm --q q.npy --k k.npy --v v.npy --chunk 64 --budget sqrt:16 --out o.npy",
     run_kvm});

}  // namespace
}  // namespace idattn::cli
