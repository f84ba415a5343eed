// Chapter 2 subcommands: `features` (xi(x), eq:P3 with the maps eq:2.1 to eq:2.4) and
// `linear` (linear attention eq:P4 in the three forms of eq:2.5), through the api layer.
#include <cstdint>
#include <string>

#include "api/02-kernel-feature-map/feature_map_api.hpp"
#include "api/common/names.hpp"
#include "api/common/npy.hpp"
#include "cli/cli.hpp"
#include "cli/feature_weights.hpp"
#include "core/error.hpp"

namespace idattn::cli {
namespace {

int run_features(Args& a) {
    const auto map = api::parse_feature_map(a.required("--map"));
    const HostTensor x = a.tensor("--x");
    const HostTensor w = feature_weights(a, map, x.shape.empty() ? 0 : x.shape.back());
    const auto impl = api::parse_impl(a.optional("--impl", "ref"));
    const std::string out = a.output("--out");
    a.finish();
    write_result(a, out, api::feature_map(x, map, w, impl), "features");
    return 0;
}

int run_linear(Args& a) {
    const auto map = api::parse_feature_map(a.optional("--map", "positive"));
    const auto form = api::parse_linear_form(a.optional("--form", "chunked"));
    const std::size_t chunk = a.count("--chunk", "64");
    const HostTensor q = a.tensor("--q"), k = a.tensor("--k"), v = a.tensor("--v");
    const HostTensor w = feature_weights(a, map, q.shape.empty() ? 0 : q.shape.back());
    const bool causal = a.flag("--causal");
    const auto impl = api::parse_impl(a.optional("--impl", "ref"));
    const std::string out = a.output("--out");
    if (form != api::LinearForm::Chunked && a.given("--chunk"))
        a.note("--chunk applies to --form chunked only; ignored");
    a.finish();
    write_result(a, out, api::linear_attention(q, k, v, map, w, form, causal, chunk, impl), "linear");
    return 0;
}

const Option kMapOption{"--map rff|positive|orthogonal|taylor",
                        "feature map: random Fourier (2.1), positive (2.2), positive with an orthogonal draw (2.3), "
                        "second-order Taylor (2.4, deterministic) (required). rff's 2R features are laid out every "
                        "cosine first, then every sine: [cos(w_1.x~) .. cos(w_R.x~), sin(w_1.x~) .. sin(w_R.x~)]"};

const Registrar features{
    {"features", "02-kernel-feature-map", "feature map xi(x) of the softmax kernel (P3): rff, positive, orthogonal, taylor",
     {kMapOption,
      {"--x FILE.npy", "inputs, (N, d) or (B, H, N, d); output (..., N, R_f) (required)"},
      kWOption, kROption, kSeedOption, kSaveWOption, kImplOption, kOutOption},
     "idattn features --map positive --x q.npy --R 256 --seed 1 --save-w w.npy --out fq.npy",
     run_features}};

const Registrar linear{
    {"linear", "02-kernel-feature-map", "linear attention (P4) with a feature map, in quadratic, recurrent or chunked form",
     {{"--q FILE.npy", "queries, (Nq, d) or (B, H, Nq, d) (required)"},
      {"--k FILE.npy", "keys, (N, d) or (B, H, N, d) (required)"},
      {"--v FILE.npy", "values, same shape as k (required)"},
      {"--map rff|positive|orthogonal|taylor", "feature map (default positive)"},
      {"--form quadratic|recurrent|chunked", "which of the three equal forms (2.5) to run (default chunked)"},
      {"--chunk K", "chunk size of the chunked form, >= 1 (default 64)"},
      kWOption, kROption, kSeedOption, kSaveWOption,
      {"--causal", "query i sees keys n <= i + N - Nq"},
      kImplOption, kOutOption},
     "idattn linear --q q.npy --k k.npy --v v.npy --map positive --w w.npy --form chunked --chunk 64 --causal --out o.npy",
     run_linear}};

}  // namespace
}  // namespace idattn::cli
