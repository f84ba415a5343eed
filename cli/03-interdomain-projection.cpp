// Chapter 3 subcommands: `project` (the projections U, Gamma, eta of eq:P6 onto a basis)
// and `interdomain` (interdomain attention eq:P9 from q, k, v with a chapter-2 feature map),
// through the api layer.
#include <cstdint>
#include <iostream>
#include <string>

#include "api/02-kernel-feature-map/feature_map_api.hpp"
#include "api/03-interdomain-projection/interdomain_api.hpp"
#include "api/common/names.hpp"
#include "api/common/npy.hpp"
#include "cli/cli.hpp"
#include "cli/feature_weights.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::cli {
namespace {

int run_project(Args& a) {
    const auto basis = api::parse_basis(a.required("--basis"));
    const std::size_t M = a.required_count("--M");
    const HostTensor fk = a.tensor("--fk"), v = a.tensor("--v");
    const auto impl = api::parse_impl(a.optional("--impl", "ref"));
    const std::string out_u = a.output("--out-u"), out_g = a.output("--out-gamma"), out_e = a.output("--out-eta");
    a.finish();
    const auto run = api::interdomain_project(fk, v, basis, M, impl);
    // Written only after the whole computation succeeded: all three or none.
    a.write_outputs({{out_u, &run.U}, {out_g, &run.Gamma}, {out_e, &run.eta}});
    for (const auto& n : run.notes) std::cerr << "idattn project: note: " << n << "\n";
    std::cerr << "idattn project: backend " << run.backend << "; wrote " << out_u << " (U, " << shape_str(run.U.shape)
              << "), " << out_g << " (Gamma, " << shape_str(run.Gamma.shape) << "), " << out_e << " (eta, "
              << shape_str(run.eta.shape) << "), " << run.U.dtype << "\n";
    return 0;
}

int run_interdomain(Args& a) {
    const auto map = api::parse_feature_map(a.optional("--map", "positive"));
    const auto basis = api::parse_basis(a.required("--basis"));
    const std::size_t M = a.required_count("--M");
    const HostTensor q = a.tensor("--q"), k = a.tensor("--k"), v = a.tensor("--v");
    const HostTensor w = feature_weights(a, map, q.shape.empty() ? 0 : q.shape.back());
    const bool causal = a.flag("--causal");
    const auto impl = api::parse_impl(a.optional("--impl", "ref"));
    const std::string out = a.output("--out");
    a.finish();
    write_result(a, out, api::interdomain_attention(q, k, v, map, w, basis, M, causal, impl), "interdomain");
    return 0;
}

const Option kBasisOption{"--basis legs|gram|dct|fourier",
                          "scaled Legendre (HiPPO-LegS, 3.1), discrete Legendre/Gram polynomials or DCT-II (3.3), "
                          "complex unitary DFT rows (3.5, non-causal only) (required)"};
const Option kProjectBasisOption{"--basis legs|gram|dct|fourier",
                                 "scaled Legendre (HiPPO-LegS, 3.1), discrete Legendre/Gram polynomials or DCT-II "
                                 "(3.3), or the complex unitary DFT rows (3.5), whose U, Gamma and eta are written "
                                 "with a trailing axis of 2 (real, imaginary) (required)"};
const Option kMOption{"--M N",
                      "number of basis functions (interdomain states), >= 1; <= N for the discrete bases (required)"};

const Registrar project{
    {"project", "03-interdomain-projection",
     "projections U, Gamma, eta (P6) of key features and values onto M basis functions",
     {kProjectBasisOption, kMOption,
      {"--fk FILE.npy", "key features, (N, R) or (B, H, N, R) (required)"},
      {"--v FILE.npy", "values, (N, d) or (B, H, N, d) (required)"},
      {"--impl ref|naive32|fast", "float64 reference (default) or the same formula in float32; fast has no separate "
                                  "projection kernel and runs the reference, with a note"},
      {"--out-u FILE.npy", "U = Phi F_k, (..., M, R) (required)"},
      {"--out-gamma FILE.npy", "Gamma = Phi V, (..., M, d) (required)"},
      {"--out-eta FILE.npy", "eta = Phi 1, (M,) (required)"}},
     "idattn project --basis legs --M 32 --fk fk.npy --v v.npy --out-u u.npy --out-gamma gamma.npy --out-eta eta.npy",
     run_project}};

const Registrar interdomain{
    {"interdomain", "03-interdomain-projection",
     "interdomain attention (P9): F_q U^T Gamma / F_q U^T eta with a feature map and a basis",
     {{"--q FILE.npy", "queries, (Nq, d) or (B, H, Nq, d) (required); any Nq, but --causal needs Nq <= N"},
      {"--k FILE.npy", "keys, (N, d) or (B, H, N, d) (required)"},
      {"--v FILE.npy", "values, same shape as k (required)"},
      kFeatureMapOption, kWOption, kROption, kSeedOption, kSaveWOption,
      kBasisOption, kMOption,
      {"--causal", "query i reads the projection of its own prefix (keys n <= i + N - Nq) on the prefix basis"},
      kImplOption, kOutOption},
     "idattn interdomain --q q.npy --k k.npy --v v.npy --map positive --R 64 --basis legs --M 32 --causal --out o.npy",
     run_interdomain}};

}  // namespace
}  // namespace idattn::cli
