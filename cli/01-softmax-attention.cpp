// Chapter 1 subcommands: `softmax` (eq:P1 through the api layer).
#include "api/01-softmax-attention/softmax_attention_api.hpp"
#include "cli/cli.hpp"

namespace idattn::cli {
namespace {

int run_softmax(Args& a) {
    const HostTensor q = a.tensor("--q"), k = a.tensor("--k"), v = a.tensor("--v");
    const bool causal = a.flag("--causal");
    const auto impl = api::parse_impl(a.optional("--impl", "ref"));
    const std::string out = a.output("--out");
    a.finish();
    write_result(a, out, api::softmax_attention(q, k, v, causal, impl), "softmax");
    return 0;
}

const Registrar softmax{
    {"softmax", "01-softmax-attention", "softmax attention (P1): o_i = sum_n K(q_i,k_n) v_n / sum_n K(q_i,k_n)",
     {{"--q FILE.npy", "queries, (Nq, d) or (B, H, Nq, d) (required); any Nq, but --causal needs Nq <= N"},
      {"--k FILE.npy", "keys, (N, d) or (B, H, N, d) (required)"},
      {"--v FILE.npy", "values, same shape as k (required)"},
      {"--causal", "query i sees keys n <= i + N - Nq (queries are the last Nq positions)"},
      kImplOption,
      kOutOption},
     "idattn softmax --q q.npy --k k.npy --v v.npy --causal --out o.npy",
     run_softmax}};

}  // namespace
}  // namespace idattn::cli
