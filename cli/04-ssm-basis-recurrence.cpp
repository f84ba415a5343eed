// Chapter 4 subcommands: `ssm` (the states of a diagonal SSM basis in each of the four
// forms eq:P11, eq:4.3, eq:4.4, eq:4.5, or the HiPPO-LegS states of eq:4.1 / eq:4.2) and
// `ssm-attention` (causal interdomain attention over an S4D or damped Fourier basis,
// eq:4.readout, from q, k, v with a chapter-2 feature map), through the api layer.
//
// Complex output: api/common/npy writes float32/float64 only, so the complex states are
// written as real arrays with a trailing axis of 2 (real part, imaginary part).
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <iostream>
#include <string>

#include "api/04-ssm-basis-recurrence/ssm_api.hpp"
#include "api/common/names.hpp"
#include "api/common/npy.hpp"
#include "cli/cli.hpp"
#include "cli/feature_weights.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::cli {
namespace {

// The basis options shared by both subcommands; options of the other basis are refused.
api::SsmSpec ssm_spec(Args& a) {
    api::SsmSpec s;
    s.basis = api::parse_ssm_basis(a.optional("--basis", "s4d"));
    const std::string init = a.optional("--init", ""), M = a.optional("--M", ""), delta = a.optional("--delta", "");
    const std::string L = a.optional("--L", ""), alpha = a.optional("--alpha", "");
    if (s.basis == api::SsmBasis::S4d) {
        if (!L.empty() || !alpha.empty())
            throw Error(a.command() + ": --L and --alpha belong to --basis fourier; the s4d basis takes --init, --M, --delta");
        s.init = api::parse_s4d_init(init.empty() ? "inv" : init);
        s.M = parse_count(a.command(), "--M", M.empty() ? "64" : M);
        s.delta = parse_number(a.command(), "--delta", delta.empty() ? "0.01" : delta);
    } else {
        if (!init.empty() || !M.empty() || !delta.empty())
            throw Error(a.command() + ": --init, --M and --delta belong to --basis s4d; the fourier basis takes --L "
                                      "(= M) and --alpha");
        s.L = parse_count(a.command(), "--L", L.empty() ? "64" : L);
        s.alpha = parse_number(a.command(), "--alpha", alpha.empty() ? "0" : alpha);
    }
    return s;
}

// --chunk applies to --form chunked only: said once on stderr when given with another form.
void note_unused_chunk(Args& a, ref::SsmForm form) {
    if (form != ref::SsmForm::Chunked && a.given("--chunk"))
        a.note("--chunk applies to --form chunked only; ignored for --form " + ref::ssm_form_name(form));
}

int run_ssm(Args& a) {
    const std::string basis = a.optional("--basis", "s4d");
    if (basis != "s4d" && basis != "fourier" && basis != "legs")
        throw Error(a.command() + ": --basis must be 's4d' (S4D with zero-order hold), 'fourier' (the damped Fourier "
                                  "basis of eq:4.6) or 'legs' (HiPPO-LegS), got '" + basis + "'");
    const HostTensor z = a.tensor("--z");
    const std::string out = a.output("--out");
    if (basis == "legs") {
        a.refuse_if_given({"--form", "--chunk", "--init", "--delta", "--L", "--alpha"},
                          "--basis legs takes --M, --legs-method and --substeps");
        const auto method = api::parse_legs_method(a.optional("--legs-method", "exact"));
        const std::size_t M = a.required_count("--M");
        const std::size_t substeps = a.count("--substeps", "1");
        if (method == ref::LegsMethod::Exact && a.given("--substeps"))
            a.note("--substeps applies to --legs-method euler and bilinear only; ignored for the exact update");
        const std::string impl = a.optional("--impl", "ref");
        if (impl != "ref")
            throw Error(a.command() + ": the LegS states are computed by the float64 reference only; --impl must be "
                                      "'ref', got '" + impl + "'");
        a.finish();
        write_result(a, out, api::legs_states(z, M, method, substeps), "ssm");
        return 0;
    }
    a.refuse_if_given({"--legs-method", "--substeps"}, "they belong to --basis legs");
    const api::SsmSpec spec = ssm_spec(a);
    const auto form = api::parse_ssm_form(a.optional("--form", "recurrence"));
    const std::size_t chunk = a.count("--chunk", "64");
    const auto impl = api::parse_impl(a.optional("--impl", "ref"));
    note_unused_chunk(a, form);
    a.finish();
    write_result(a, out, api::ssm_states(z, spec, form, chunk, impl), "ssm");
    return 0;
}

int run_ssm_attention(Args& a) {
    const auto map = api::parse_feature_map(a.optional("--map", "positive"));
    const HostTensor q = a.tensor("--q"), k = a.tensor("--k"), v = a.tensor("--v");
    const HostTensor w = feature_weights(a, map, q.shape.empty() ? 0 : q.shape.back());
    const api::SsmSpec spec = ssm_spec(a);
    const auto form = api::parse_ssm_form(a.optional("--form", "recurrence"));
    const std::size_t chunk = a.count("--chunk", "64");
    const auto impl = api::parse_impl(a.optional("--impl", "ref"));
    const std::string out = a.output("--out");
    note_unused_chunk(a, form);
    a.finish();
    write_result(a, out, api::ssm_attention(q, k, v, map, w, spec, form, chunk, impl), "ssm-attention");
    return 0;
}

const Option kS4dOptions[] = {
    {"--init inv|lin", "s4d: S4D-Inv (4.s4d-inv, default) or S4D-Lin (4.s4d-lin) initialisation of A"},
    {"--M N", "s4d: number of complex states, >= 1 (default 64)"},
    {"--delta X", "s4d: the step Delta > 0 (default 0.01; the paper draws log Delta ~ U(log 1e-3, log 1e-1))"},
    {"--L N", "fourier: the period L = number of states, >= 1 (default 64)"},
    {"--alpha X", "fourier: the damping alpha >= 0 (default 0)"},
};
const Option kFormOption{"--form recurrence|explicit|fft|chunked",
                         "how the states are computed (P11, 4.3, 4.4, 4.5); all four agree to rounding "
                         "(default recurrence)"};
const Option kChunkOption{"--chunk K", "chunk size of --form chunked, >= 1 (default 64)"};

const Registrar ssm{
    {"ssm", "04-ssm-basis-recurrence",
     "the states of an SSM basis after every token: S4D / damped Fourier (P11) in four forms, or HiPPO-LegS (4.1, 4.2)",
     {{"--z FILE.npy", "input, (N, C): C channels share one recurrence (required)"},
      {"--basis s4d|fourier|legs",
       "s4d: diagonal complex S4D with zero-order hold (P11, 4.zoh; default); fourier: the damped Fourier basis "
       "(4.6); legs: the HiPPO-LegS states c(t) (P2), real. Chapter 3's projection (project --basis legs) "
       "is u = sqrt(t) c(t) at t = n + 1 (eq:4.1): multiply entry [n] by sqrt(n + 1) to compare"},
      kS4dOptions[0],
      {"--M N", "s4d: number of complex states, >= 1 (default 64); legs: number of Legendre functions (required)"},
      kS4dOptions[2], kS4dOptions[3], kS4dOptions[4], kFormOption, kChunkOption,
      {"--legs-method exact|euler|bilinear", "legs: the exact update (4.1, default) or forward Euler / bilinear in "
                                        "tau = log t (4.2)"},
      {"--substeps S", "legs: sub-steps per token of euler and bilinear, >= 1 (default 1)"},
      {"--impl ref|naive32|fast",
       "s4d/fourier: float64 reference (default), the same formula in float32, or the CUDA chunked scan / cuFFT "
       "(falls back to the reference with a note without a device or for --form explicit); legs: ref only"},
      {"--out FILE.npy",
       "output, written atomically. s4d/fourier: complex states as REAL and IMAGINARY parts on a trailing axis of "
       "2, shape (N, M, C, 2) (.npy has no complex dtype here), float64 (float32 for naive32/fast); legs: "
       "(N, M, C) float64; entry [n] is the state after token n"}},
     "idattn ssm --z z.npy --basis s4d --init inv --M 64 --delta 0.01 --form chunked --chunk 64 --out x.npy",
     run_ssm}};

const Registrar ssm_attention{
    {"ssm-attention", "04-ssm-basis-recurrence",
     "causal interdomain attention over an S4D or damped Fourier basis (4.readout) from q, k, v with a feature map",
     {{"--q FILE.npy", "queries, (Nq, d) or (B, H, Nq, d); query i sits at position i + N - Nq (required)"},
      {"--k FILE.npy", "keys, (N, d) or (B, H, N, d) (required)"},
      {"--v FILE.npy", "values, same shape as k (required)"},
      kFeatureMapOption, kWOption, kROption, kSeedOption, kSaveWOption,
      {"--basis s4d|fourier", "S4D with zero-order hold (P11, default) or the damped Fourier basis (4.6)"},
      kS4dOptions[0], kS4dOptions[1], kS4dOptions[2], kS4dOptions[3], kS4dOptions[4], kFormOption, kChunkOption,
      kImplOption, kOutOption},
     "idattn ssm-attention --q q.npy --k k.npy --v v.npy --map positive --R 64 --basis s4d --M 64 --delta 0.01 "
     "--out o.npy",
     run_ssm_attention}};

}  // namespace
}  // namespace idattn::cli
