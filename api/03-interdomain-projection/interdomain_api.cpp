#include "api/03-interdomain-projection/interdomain_api.hpp"

#include <algorithm>
#include <type_traits>

#include <xtensor/xview.hpp>

#include "fast/03-interdomain-projection/interdomain.hpp"
#include "api/02-kernel-feature-map/feature_map_api.hpp"
#include "fast/common/device.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "ref/03-interdomain-projection/interdomain.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"
#include "api/common/convert.hpp"

namespace idattn::api {

namespace {

void check_fourier(const std::string& what, Basis b, bool causal) {
    if (ref::is_complex(b) && causal)
        throw Error(what + ": the fourier basis has no causal form here: the Hermitian readout (eq:3.5) is "
                           "non-causal; use --basis legs|gram|dct for causal attention");
}

Impl pick(Impl impl, Basis b, std::size_t M, bool causal, std::size_t R, std::size_t d,
          std::vector<std::string>& notes) {
    return pick_backend(impl, fast::interdomain_unsupported(b, M, causal, R, d), notes);
}

// (P9) on every head, the reference formula in T.
template <class T>
xt::xtensor<T, 4> reference_heads(const xt::xtensor<T, 4>& fq, const xt::xtensor<T, 4>& fk, const xt::xtensor<T, 4>& v,
                                  Basis b, std::size_t M, bool causal) {
    return per_head<T>(fq, fk, v, [&](const auto& qh, const auto& kh, const auto& vh) -> xt::xtensor<T, 2> {
        if (ref::is_complex(b)) return ref::interdomain_attention_hermitian<T>(M, qh, kh, vh);  // eq:3.5
        return ref::interdomain_attention<T>(b, M, qh, kh, vh, causal);                        // eq:P9
    });
}

#if IDATTN_HAVE_CUDA  // resolve_impl never returns Fast in a build without CUDA
xt::xtensor<float, 4> fast_heads(const xt::xtensor<float, 4>& fq, const xt::xtensor<float, 4>& fk,
                                 const xt::xtensor<float, 4>& v, Basis b, std::size_t M, bool causal) {
    if (causal) return fast::interdomain_attention_causal(b, M, fq, fk, v);
    return fast::interdomain_attention(ref::basis_matrix<float>(b, M, fk.shape(2)), fq, fk, v);
}
#endif

// The three inputs in T, run by the chosen backend.
template <class T>
Run run_heads(const xt::xtensor<T, 4>& fq, const xt::xtensor<T, 4>& fk, const xt::xtensor<T, 4>& v, Basis b,
              std::size_t M, bool causal, Impl impl, std::size_t rank, Run run) {
#if IDATTN_HAVE_CUDA
    if constexpr (std::is_same_v<T, float>) {
        if (impl == Impl::Fast) {
            run.out = from_batched(fast_heads(fq, fk, v, b, M, causal), rank);
            run.backend = backend_name(Impl::Fast);
            return run;
        }
    }
#endif
    run.out = from_batched(reference_heads<T>(fq, fk, v, b, M, causal), rank);
    run.backend = backend_name(impl);
    return run;
}

// One output of the projection: real, or complex with a trailing axis of 2.
template <class P>
HostTensor projection_tensor(const xt::xtensor<P, 4>& x, std::size_t rank) {
    if constexpr (std::is_floating_point_v<P>) {
        return from_batched(x, rank);
    } else {
        std::vector<std::size_t> shape(x.shape().begin() + (4 - rank), x.shape().end());
        return complex_tensor<typename P::value_type>(x, shape);
    }
}

// eq:P6 for every head, onto phi (M, N), real or complex (the fourier rows).
template <class T, class P>
ProjectRun project_as(const HostTensor& fk, const HostTensor& v, const xt::xtensor<P, 2>& phi, ProjectRun run) {
    const auto kb = to_batched<T>(fk), vb = to_batched<T>(v);
    const std::size_t B = kb.shape(0), H = kb.shape(1), M = phi.shape(0), R = kb.shape(3), d = vb.shape(3);
    xt::xtensor<P, 4> U(std::array<std::size_t, 4>{B, H, M, R}), G(std::array<std::size_t, 4>{B, H, M, d});
    xt::xtensor<P, 4> eta(std::array<std::size_t, 4>{1, 1, 1, M});
    for (std::size_t bb = 0; bb < B; ++bb)
        for (std::size_t h = 0; h < H; ++h) {
            const xt::xtensor<T, 2> kh = xt::view(kb, bb, h), vh = xt::view(vb, bb, h);
            const auto p = ref::project<T>(phi, kh, vh);  // eq:P6
            xt::view(U, bb, h) = p.U;
            xt::view(G, bb, h) = p.Gamma;
            xt::view(eta, 0, 0, 0) = p.eta;
        }
    run.U = projection_tensor(U, fk.shape.size());
    run.Gamma = projection_tensor(G, fk.shape.size());
    run.eta = projection_tensor(eta, 1);
    return run;
}

template <class T>
ProjectRun project_basis_as(const HostTensor& fk, const HostTensor& v, Basis b, std::size_t M, ProjectRun run) {
    const std::size_t N = fk.shape[fk.shape.size() - 2];
    if (ref::is_complex(b)) return project_as<T>(fk, v, ref::fourier_basis_matrix<T>(M, N), std::move(run));
    return project_as<T>(fk, v, ref::basis_matrix<T>(b, M, N), std::move(run));
}

}  // namespace

HostTensor basis_matrix(Basis b, std::size_t M, std::size_t N) {
    ref::check_basis_size("basis_matrix", b, M, N);
    if (ref::is_complex(b)) return complex_tensor<double>(ref::fourier_basis_matrix<double>(M, N), {M, N});
    const auto phi = ref::basis_matrix<double>(b, M, N);
    HostTensor t;
    t.shape = {M, N};
    t.data.assign(phi.begin(), phi.end());
    return t;
}

ProjectRun interdomain_project(const HostTensor& fk, const HostTensor& v, Basis b, std::size_t M, Impl impl) {
    const std::string what = "interdomain_project";
    require_tensor(what, "key features", fk, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    check_batched(what, {{"key features", &fk}, {"v", &v}});
    const std::size_t N = fk.shape[fk.shape.size() - 2];
    if (v.shape[v.shape.size() - 2] != N)
        throw Error(what + ": v has shape " + shape_str(v.shape) + " but there are N = " + std::to_string(N) +
                    " key features; expected v of shape (..., " + std::to_string(N) + ", d)");
    ref::check_basis_size(what, b, M, N);
    ProjectRun run;
    if (impl == Impl::Fast) {
        run.notes.push_back("the fast backend fuses the projection with the readout and exposes no separate "
                            "projection here; ran the float64 reference instead");
        impl = Impl::Ref;
    }
    note_dtypes(impl, {{"key features", &fk}, {"v", &v}}, run.notes);
    if (impl == Impl::Naive32) {
        run.backend = backend_name(Impl::Naive32);
        return project_basis_as<float>(fk, v, b, M, std::move(run));
    }
    run.backend = backend_name(Impl::Ref);
    return project_basis_as<double>(fk, v, b, M, std::move(run));
}

Run interdomain_attention_features(const HostTensor& fq, const HostTensor& fk, const HostTensor& v, Basis b,
                                   std::size_t M, bool causal, Impl impl) {
    const std::string what = "interdomain_attention";
    require_tensor(what, "query features", fq, {2, 4});
    require_tensor(what, "key features", fk, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    check_batched(what, {{"query features", &fq}, {"key features", &fk}, {"v", &v}});
    ref::check_interdomain_inputs(what, b, M, last2(fq.shape), last2(fk.shape), last2(v.shape), causal);
    check_fourier(what, b, causal);
    Run run;
    impl = pick(impl, b, M, causal, fk.shape.back(), v.shape.back(), run.notes);
    note_dtypes(impl, {{"query features", &fq}, {"key features", &fk}, {"v", &v}}, run.notes);
    if (impl == Impl::Ref)
        return run_heads<double>(to_batched<double>(fq), to_batched<double>(fk), to_batched<double>(v), b, M, causal,
                                 impl, fq.shape.size(), std::move(run));
    return run_heads<float>(to_batched<float>(fq), to_batched<float>(fk), to_batched<float>(v), b, M, causal, impl,
                            fq.shape.size(), std::move(run));
}

Run interdomain_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, ref::FeatureMap map,
                          const HostTensor& w, Basis b, std::size_t M, bool causal, Impl impl) {
    const std::string what = "interdomain_attention";
    require_tensor(what, "q", q, {2, 4});
    require_tensor(what, "k", k, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    ref::check_softmax_inputs(what, q.shape, k.shape, v.shape, causal);
    check_feature_weights(what, map, w, q.shape.back());
    ref::check_feature_inputs(what, map, last2(k.shape), ref::is_random(map) ? w.shape : std::vector<std::size_t>{});
    ref::check_basis_size(what, b, M, k.shape[k.shape.size() - 2]);
    check_fourier(what, b, causal);
    const std::size_t rf = ref::feature_dim(map, ref::is_random(map) ? w.shape[0] : 0, q.shape.back());
    Run run;
    impl = pick(impl, b, M, causal, rf, v.shape.back(), run.notes);
    std::vector<std::pair<std::string, const HostTensor*>> inputs{{"q", &q}, {"k", &k}, {"v", &v}};
    if (ref::is_random(map)) inputs.push_back({"W", &w});
    note_dtypes(impl, inputs, run.notes);
    if (impl == Impl::Ref) {
        auto f = stabilised_head_features<double>(q, k, map, w);  // eq:2.stab
        return run_heads<double>(f.fq, f.fk, to_batched<double>(v), b, M, causal, impl, q.shape.size(), std::move(run));
    }
    // naive32 and fast: the features in float32 on the CPU (the fast path times and checks chapter 3's
    // kernels; chapter 2's fast feature map is verified on its own).
    auto f = stabilised_head_features<float>(q, k, map, w);  // eq:2.stab
    return run_heads<float>(f.fq, f.fk, to_batched<float>(v), b, M, causal, impl, q.shape.size(), std::move(run));
}

Run interdomain_effective_weights(const HostTensor& fq, const HostTensor& fk, Basis b, std::size_t M, bool causal) {
    const std::string what = "interdomain_effective_weights";
    require_tensor(what, "query features", fq, {2});
    require_tensor(what, "key features", fk, {2});
    ref::check_interdomain_inputs(what, b, M, fq.shape, fk.shape, {fk.shape[0], 1}, causal);
    if (ref::is_complex(b))
        throw Error(what + ": the fourier basis is complex; its effective kernel Re(Phi^H Phi) (eq:3.5) is not "
                           "built here; use legs, gram or dct");
    const auto qb = to_batched<double>(fq), kb = to_batched<double>(fk);
    const xt::xtensor<double, 2> qh = xt::view(qb, 0, 0), kh = xt::view(kb, 0, 0);
    const auto wm = ref::effective_weights<double>(b, M, qh, kh, causal);  // eq:3.4
    Run run;
    run.out.shape = {wm.shape(0), wm.shape(1)};
    run.out.data.assign(wm.begin(), wm.end());
    run.backend = backend_name(Impl::Ref);
    return run;
}

}  // namespace idattn::api
