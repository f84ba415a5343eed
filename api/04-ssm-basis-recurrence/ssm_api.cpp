#include "api/04-ssm-basis-recurrence/ssm_api.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include <xtensor/xview.hpp>

#include "fast/04-ssm-basis-recurrence/ssm.hpp"
#include "fast/common/device.hpp"
#include "api/02-kernel-feature-map/feature_map_api.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"
#include "api/common/convert.hpp"

namespace idattn::api {

namespace {

Impl pick(Impl impl, ref::SsmForm form, std::size_t R, std::size_t d, std::vector<std::string>& notes) {
    return pick_backend(impl, fast::ssm_unsupported(form, R, d), notes);
}


template <class T>
xt::xtensor<T, 2> matrix(const HostTensor& t) {
    xt::xtensor<T, 2> out(std::array<std::size_t, 2>{t.shape[0], t.shape[1]});
    std::transform(t.data.begin(), t.data.end(), out.begin(), [](double x) { return static_cast<T>(x); });
    return out;
}

void check_chunk(const std::string& what, ref::SsmForm form, std::size_t chunk) {
    if (form == ref::SsmForm::Chunked && chunk == 0)
        throw Error(what + ": the chunk size K (--chunk) must be at least 1, got 0");
}

// eq:4.readout on every head, the reference formula in T.
template <class T>
xt::xtensor<T, 4> reference_heads(const xt::xtensor<T, 4>& fq, const xt::xtensor<T, 4>& fk, const xt::xtensor<T, 4>& v,
                                  const ref::DiagonalSsm<double>& s, ref::SsmForm form, std::size_t chunk) {
    const auto st = ref::ssm_cast<T>(s);
    return per_head<T>(fq, fk, v, [&](const auto& qh, const auto& kh, const auto& vh) -> xt::xtensor<T, 2> {
        return ref::ssm_attention<T>(form, st, qh, kh, vh, chunk);  // eq:4.readout
    });
}

template <class T>
Run run_heads(const xt::xtensor<T, 4>& fq, const xt::xtensor<T, 4>& fk, const xt::xtensor<T, 4>& v,
              const ref::DiagonalSsm<double>& s, ref::SsmForm form, std::size_t chunk, Impl impl, std::size_t rank,
              Run run) {
#if IDATTN_HAVE_CUDA
    if constexpr (std::is_same_v<T, float>) {
        if (impl == Impl::Fast) {
            // The fused causal readout over the chunked scan (eq:4.5, eq:4.readout); every form has the same states.
            const std::size_t k = form == ref::SsmForm::Chunked ? chunk : std::size_t(fast::kSsmDefaultChunk);
            run.out = from_batched(fast::ssm_attention(ref::ssm_cast<float>(s), fq, fk, v, k), rank);
            run.backend = backend_name(Impl::Fast);
            return run;
        }
    }
#endif
    run.out = from_batched(reference_heads<T>(fq, fk, v, s, form, chunk), rank);
    run.backend = backend_name(impl);
    return run;
}

template <class T>
Run states_as(const HostTensor& z, const ref::DiagonalSsm<double>& s, ref::SsmForm form, std::size_t chunk, Run run,
              Impl impl) {
#if IDATTN_HAVE_CUDA
    if constexpr (std::is_same_v<T, float>) {
        if (impl == Impl::Fast) {
            const auto x = fast::ssm_states(form, ref::ssm_cast<float>(s), matrix<float>(z), chunk);  // eq:4.4 eq:4.5
            run.out = complex_tensor<float>(x, {x.shape(0), x.shape(1), x.shape(2)});
            run.backend = backend_name(Impl::Fast);
            return run;
        }
    }
#endif
    (void)impl;
    const auto x = ref::ssm_states<T>(form, ref::ssm_cast<T>(s), matrix<T>(z), chunk);  // eq:P11 eq:4.3 eq:4.4 eq:4.5
    run.out = complex_tensor<T>(x, {x.shape(0), x.shape(1), x.shape(2)});
    return run;
}

}  // namespace

SsmBasis parse_ssm_basis(const std::string& name) {
    if (name == "s4d") return SsmBasis::S4d;
    if (name == "fourier") return SsmBasis::Fourier;
    throw Error("--basis must be 's4d' (S4D-Inv/Lin with zero-order hold) or 'fourier' (the damped Fourier basis "
                "of eq:4.6), got '" + name + "'");
}

std::string ssm_basis_name(SsmBasis b) { return b == SsmBasis::S4d ? "s4d" : "fourier"; }

namespace {

// The number of states of a spec (S4D: M; Fourier: the period L) and the
// option that set it, for require_memory's messages.
std::size_t spec_states(const SsmSpec& spec) { return spec.basis == SsmBasis::Fourier ? spec.L : spec.M; }
std::string spec_cause(const SsmSpec& spec) {
    return spec.basis == SsmBasis::Fourier ? "L = " + std::to_string(spec.L) + " (the Fourier period)"
                                           : "M = " + std::to_string(spec.M) + " states";
}

// Sub-steps beyond this buy nothing (the bilinear error at 64 sub-steps is
// already at float64 rounding for the sizes of Chapter 4) and would run for hours.
constexpr std::size_t kMaxSubsteps = 1000000;

}  // namespace

ref::DiagonalSsm<double> ssm_parameters(const SsmSpec& spec) {
    require_memory("ssm_parameters", spec_cause(spec), {{"Lambda and Bbar", {2, spec_states(spec)}, 16}});
    if (spec.basis == SsmBasis::Fourier) return ref::damped_fourier(spec.L, spec.alpha);  // eq:4.6
    return ref::s4d(spec.init, spec.M, spec.delta);                                       // eq:P11 eq:4.zoh
}

SsmParamsRun ssm_parameters_tensors(const SsmSpec& spec) {
    const auto s = ssm_parameters(spec);
    const std::size_t M = s.lambda.shape(0);
    return {complex_tensor<double>(s.lambda, {M}), complex_tensor<double>(s.bbar, {M})};
}

Run ssm_impulse_response(const SsmSpec& spec, std::size_t N) {
    if (N == 0) throw Error("ssm_impulse_response: the number of lags N must be at least 1, got 0");
    require_memory("ssm_impulse_response", spec_cause(spec) + " and N = " + std::to_string(N) + " lags",
                   {{"the impulse response", {N, spec_states(spec)}, 16}});
    const auto psi = ref::impulse_response<double>(ssm_parameters(spec), N);  // eq:4.psi
    Run run;
    run.out = complex_tensor<double>(psi, {psi.shape(0), psi.shape(1)});
    run.backend = backend_name(Impl::Ref);
    return run;
}

Run ssm_states(const HostTensor& z, const SsmSpec& spec, ref::SsmForm form, std::size_t chunk, Impl impl) {
    const std::string what = "ssm_states(" + ref::ssm_form_name(form) + ")";
    require_tensor(what, "z", z, {2});
    require_sane_size(what, "z", z.shape);
    check_chunk(what, form, chunk);
    require_memory(what, spec_cause(spec), {{"the states", {z.shape[0], spec_states(spec), z.shape[1]}, 16}});
    const auto s = ssm_parameters(spec);
    Run run;
    impl = pick(impl, form, 0, 0, run.notes);
    note_dtypes(impl, {{"z", &z}}, run.notes);
    if (impl != Impl::Ref) {
        run.backend = backend_name(Impl::Naive32);
        return states_as<float>(z, s, form, chunk, std::move(run), impl);
    }
    run.backend = backend_name(Impl::Ref);
    return states_as<double>(z, s, form, chunk, std::move(run), impl);
}

Run legs_states(const HostTensor& z, std::size_t M, ref::LegsMethod method, std::size_t substeps) {
    const std::string what = "legs_states(" + ref::legs_method_name(method) + ")";
    require_tensor(what, "z", z, {2});
    require_sane_size(what, "z", z.shape);
    const std::size_t m1 = M == std::numeric_limits<std::size_t>::max() ? M : M + 1;
    require_memory(what, "M = " + std::to_string(M) + " states",
                   {{"the (M+1) x (M+1) update matrices", {3, m1, m1}}, {"the states", {z.shape[0], M, z.shape[1]}}});
    if (method != ref::LegsMethod::Exact) {
        if (substeps > kMaxSubsteps)
            throw Error(what + ": substeps = " + std::to_string(substeps) + " sub-steps per token is more than " +
                        std::to_string(kMaxSubsteps) + " (it would run for hours and buy nothing: the " +
                        ref::legs_method_name(method) + " error stops improving long before); use at most " +
                        std::to_string(kMaxSubsteps));
        const long double work = static_cast<long double>(z.shape[0]) * substeps * M * M;
        if (work > 1e12L)
            throw Error(what + ": " + std::to_string(z.shape[0]) + " tokens x substeps = " + std::to_string(substeps) +
                        " x M^2 = " + std::to_string(M) + "^2 is about " + std::to_string(static_cast<double>(work)) +
                        " multiply-adds (hours); use fewer sub-steps, a smaller M, or --legs-method exact");
    }
    Run run;
    note_dtypes(Impl::Ref, {{"z", &z}}, run.notes);
    const auto c = ref::legs_states(method, M, matrix<double>(z), substeps);  // eq:4.1 eq:4.2
    run.out.shape = {c.shape(0), c.shape(1), c.shape(2)};
    run.out.data.assign(c.begin(), c.end());
    run.backend = backend_name(Impl::Ref);
    return run;
}

Run ssm_attention_features(const HostTensor& fq, const HostTensor& fk, const HostTensor& v, const SsmSpec& spec,
                           ref::SsmForm form, std::size_t chunk, Impl impl) {
    const std::string what = "ssm_attention";
    require_tensor(what, "query features", fq, {2, 4});
    require_tensor(what, "key features", fk, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    check_batched(what, {{"query features", &fq}, {"key features", &fk}, {"v", &v}});
    ref::check_ssm_attention_inputs(what, last2(fq.shape), last2(fk.shape), last2(v.shape));
    check_chunk(what, form, chunk);
    const auto s = ssm_parameters(spec);
    Run run;
    impl = pick(impl, form, fk.shape.back(), v.shape.back(), run.notes);
    note_dtypes(impl, {{"query features", &fq}, {"key features", &fk}, {"v", &v}}, run.notes);
    if (impl == Impl::Ref)
        return run_heads<double>(to_batched<double>(fq), to_batched<double>(fk), to_batched<double>(v), s, form, chunk,
                                 impl, fq.shape.size(), std::move(run));
    return run_heads<float>(to_batched<float>(fq), to_batched<float>(fk), to_batched<float>(v), s, form, chunk, impl,
                            fq.shape.size(), std::move(run));
}

Run ssm_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, ref::FeatureMap map,
                  const HostTensor& w, const SsmSpec& spec, ref::SsmForm form, std::size_t chunk, Impl impl) {
    const std::string what = "ssm_attention";
    require_tensor(what, "q", q, {2, 4});
    require_tensor(what, "k", k, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    ref::check_softmax_inputs(what, q.shape, k.shape, v.shape, /*causal=*/true);
    check_feature_weights(what, map, w, q.shape.back());
    ref::check_feature_inputs(what, map, last2(k.shape), ref::is_random(map) ? w.shape : std::vector<std::size_t>{});
    check_chunk(what, form, chunk);
    const auto s = ssm_parameters(spec);
    const std::size_t rf = ref::feature_dim(map, ref::is_random(map) ? w.shape[0] : 0, q.shape.back());
    Run run;
    impl = pick(impl, form, rf, v.shape.back(), run.notes);
    std::vector<std::pair<std::string, const HostTensor*>> inputs{{"q", &q}, {"k", &k}, {"v", &v}};
    if (ref::is_random(map)) inputs.push_back({"W", &w});
    note_dtypes(impl, inputs, run.notes);
    if (impl == Impl::Ref) {
        auto f = stabilised_head_features<double>(q, k, map, w);  // eq:2.stab
        return run_heads<double>(f.fq, f.fk, to_batched<double>(v), s, form, chunk, impl, q.shape.size(), std::move(run));
    }
    auto f = stabilised_head_features<float>(q, k, map, w);  // eq:2.stab
    return run_heads<float>(f.fq, f.fk, to_batched<float>(v), s, form, chunk, impl, q.shape.size(), std::move(run));
}

}  // namespace idattn::api
