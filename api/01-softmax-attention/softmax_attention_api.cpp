#include "api/01-softmax-attention/softmax_attention_api.hpp"

#include "fast/01-softmax-attention/softmax_attention.hpp"
#include "fast/common/device.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "core/error.hpp"
#include "api/common/convert.hpp"

#include <xtensor/xview.hpp>

namespace idattn::api {

Run softmax_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, bool causal, Impl impl) {
    const std::string what = "softmax_attention";
    require_tensor(what, "q", q, {2, 4});
    require_tensor(what, "k", k, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    ref::check_softmax_inputs(what, q.shape, k.shape, v.shape, causal);

    Run run;
    impl = pick_backend(impl, fast::softmax_unsupported(q.shape.back()), run.notes);
    note_dtypes(impl, {{"q", &q}, {"k", &k}, {"v", &v}}, run.notes);

#if IDATTN_HAVE_CUDA  // resolve_impl never returns Fast in a build without CUDA
    if (impl == Impl::Fast) {
        const auto o = fast::softmax_attention(to_batched<float>(q), to_batched<float>(k), to_batched<float>(v), causal);
        run.out = from_batched(o, q.shape.size());
        run.backend = backend_name(Impl::Fast);
        return require_finite_output(what, std::move(run), {{"q", &q}, {"k", &k}, {"v", &v}});
    }
#endif
    if (impl == Impl::Naive32) {
        const auto o = ref::softmax_attention<float>(to_batched<float>(q), to_batched<float>(k),
                                                     to_batched<float>(v), causal);
        run.out = from_batched(o, q.shape.size());
        run.backend = backend_name(Impl::Naive32);
        return require_finite_output(what, std::move(run), {{"q", &q}, {"k", &k}, {"v", &v}});
    }
    {
        const auto o = ref::softmax_attention<double>(to_batched<double>(q), to_batched<double>(k),
                                                      to_batched<double>(v), causal);
        run.out = from_batched(o, q.shape.size());
        run.backend = backend_name(Impl::Ref);
    }
    return require_finite_output(what, std::move(run), {{"q", &q}, {"k", &k}, {"v", &v}});
}

Run softmax_attention_online(const HostTensor& q, const HostTensor& k, const HostTensor& v, bool causal,
                             std::size_t block) {
    const std::string what = "softmax_attention_online";
    require_tensor(what, "q", q, {2});
    require_tensor(what, "k", k, {2});
    require_tensor(what, "v", v, {2});
    ref::check_softmax_inputs(what, q.shape, k.shape, v.shape, causal);
    if (block == 0) throw Error(what + ": block must be at least 1, got 0");
    const auto o = ref::online_softmax_attention<double>(xt::view(to_batched<double>(q), 0, 0),
                                                         xt::view(to_batched<double>(k), 0, 0),
                                                         xt::view(to_batched<double>(v), 0, 0), causal, block);
    Run run;
    run.out.shape = {o.shape(0), o.shape(1)};
    run.out.data.assign(o.begin(), o.end());
    run.backend = "ref (float64 online recurrence, CPU)";
    return require_finite_output(what, std::move(run), {{"q", &q}, {"k", &k}, {"v", &v}});
}

}  // namespace idattn::api
