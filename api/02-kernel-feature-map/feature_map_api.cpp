#include "api/02-kernel-feature-map/feature_map_api.hpp"

#include <xtensor/xview.hpp>

#include "fast/02-kernel-feature-map/feature_map.hpp"
#include "fast/common/device.hpp"
#include "ref/01-softmax-attention/softmax_attention.hpp"
#include "ref/02-kernel-feature-map/linear_attention.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"
#include "api/common/convert.hpp"

namespace idattn::api {

namespace {

template <class T>
xt::xtensor<T, 2> w_matrix(FeatureMap map, const HostTensor& w) {
    // taylor takes no W: an empty (0, 0) matrix
    if (!ref::is_random(map)) return xt::xtensor<T, 2>(std::array<std::size_t, 2>{0, 0});
    xt::xtensor<T, 2> out(std::array<std::size_t, 2>{w.shape[0], w.shape[1]});
    std::transform(w.data.begin(), w.data.end(), out.begin(), [](double x) { return static_cast<T>(x); });
    return out;
}

template <class T>
HostTensor features_as(const HostTensor& x, FeatureMap map, const HostTensor& w) {
    const auto xb = to_batched<T>(x);
    const auto wm = w_matrix<T>(map, w);
    const std::size_t B = xb.shape(0), H = xb.shape(1), N = xb.shape(2), d = xb.shape(3);
    const std::size_t rf = ref::feature_dim(map, ref::is_random(map) ? w.shape[0] : 0, d);
    xt::xtensor<T, 4> out(std::array<std::size_t, 4>{B, H, N, rf});
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t h = 0; h < H; ++h) {
            const xt::xtensor<T, 2> xh = xt::view(xb, b, h);
            xt::view(out, b, h) = ref::feature_map<T>(map, xh, wm);  // eq:P3
        }
    return from_batched(out, x.shape.size());
}

template <class T>
HostTensor linear_as(const HostTensor& q, const HostTensor& k, const HostTensor& v, FeatureMap map,
                     const HostTensor& w, LinearForm form, bool causal, std::size_t chunk) {
    const auto qb = to_batched<T>(q), kb = to_batched<T>(k), vb = to_batched<T>(v);
    const auto wm = w_matrix<T>(map, w);
    const auto out = per_head<T>(qb, kb, vb, [&](const auto& qh, const auto& kh, const auto& vh) -> xt::xtensor<T, 2> {
        // Stabilised features (eq:2.stab): queries drop their own constant.
        const auto fq = ref::scaled_feature_map<T>(map, qh, wm);
        const auto fk = ref::scaled_feature_map<T>(map, kh, wm);
        switch (form) {  // the three forms of eq:2.5
            case LinearForm::Quadratic:
                return ref::linear_attention_quadratic<T>(fq.f, ref::sequence_stabilised(fk), vh, causal);
            case LinearForm::Recurrent:
                return ref::linear_attention_recurrent_stable<T>(fq, fk, vh, causal);
            case LinearForm::Chunked:
                break;
        }
        return ref::linear_attention_chunked<T>(fq.f, ref::sequence_stabilised(fk), vh, causal, chunk);
    });
    return from_batched(out, q.shape.size());
}

}  // namespace

LinearForm parse_linear_form(const std::string& name) {
    if (name == "quadratic") return LinearForm::Quadratic;
    if (name == "recurrent") return LinearForm::Recurrent;
    if (name == "chunked") return LinearForm::Chunked;
    throw Error("--form must be 'quadratic' (masked F_q F_k^T V), 'recurrent' (the state S, z) or "
                "'chunked' (state between chunks, quadratic inside), got '" + name + "'");
}

HostTensor draw_feature_weights(FeatureMap map, std::size_t R, std::size_t d, std::uint64_t seed) {
    if (ref::is_random(map) && R == 0)
        throw Error("draw_feature_weights: the number of random frequencies R must be at least 1, got 0");
    if (d == 0) throw Error("draw_feature_weights: the head dimension d must be at least 1, got 0");
    require_memory("draw_feature_weights", "R = " + std::to_string(R) + " random frequencies",
                   {{"the draw W", {R, d}}});
    const auto w = ref::draw_for(map, R, d, seed);
    HostTensor t;
    t.shape = {w.shape(0), w.shape(1)};
    t.data.assign(w.begin(), w.end());
    return t;
}

namespace {

// The literal positive features exp(w.x - |x|^2/2) / ... (eq:P3) underflow to
// exactly 0 for every frequency once |x| is large (norm 50 at d = 64): finite,
// but they carry nothing. Said once, with the count, instead of silently
// (the stabilised features of eq:2.stab, which linear, interdomain and
// ssm-attention use, do not underflow).
Run note_underflow(Run run) {
    const auto& o = run.out;
    if (o.shape.size() < 2) return run;
    const std::size_t rf = o.shape.back(), rows = rf ? o.data.size() / rf : 0;
    std::size_t zero_rows = 0, first = 0;
    for (std::size_t r = 0; r < rows; ++r) {
        bool all_zero = true;
        for (std::size_t c = 0; c < rf && all_zero; ++c) all_zero = o.data[r * rf + c] == 0.0;
        if (all_zero && zero_rows++ == 0) first = r;
    }
    if (zero_rows)
        run.notes.push_back(std::to_string(zero_rows) + " of " + std::to_string(rows) +
                            " rows have every feature exactly 0 (underflow of the literal features at large |x|; "
                            "first: row " + std::to_string(first) + "); the stabilised features (eq:2.stab) used by "
                            "linear, interdomain and ssm-attention do not underflow");
    return run;
}

}  // namespace

Run feature_map(const HostTensor& x, FeatureMap map, const HostTensor& w, Impl impl) {
    const std::string what = "feature_map";
    require_tensor(what, "x", x, {2, 4});
    check_feature_weights(what, map, w, x.shape.back());
    ref::check_feature_inputs(what, map, {x.shape[x.shape.size() - 2], x.shape.back()},
                              ref::is_random(map) ? w.shape : std::vector<std::size_t>{});
    Run run;
    impl = resolve_impl(impl, run.notes);  // Fast without a device: Ref, with a note
    std::vector<std::pair<std::string, const HostTensor*>> inputs{{"x", &x}};
    if (ref::is_random(map)) inputs.push_back({"W", &w});
    note_dtypes(impl, inputs, run.notes);
#if IDATTN_HAVE_CUDA  // resolve_impl never returns Fast in a build without CUDA
    if (impl == Impl::Fast) {
        // The fused feature-map kernel, literal features xi(x) like the reference (eq:P3).
        const auto o = fast::feature_map(map, to_batched<float>(x), w_matrix<float>(map, w));
        run.out = from_batched(o, x.shape.size());
        run.backend = backend_name(Impl::Fast);
        return note_underflow(require_finite_output(what, std::move(run), {{"x", &x}, {"W", &w}}));
    }
#endif
    if (impl == Impl::Naive32) {
        run.out = features_as<float>(x, map, w);
        run.backend = backend_name(Impl::Naive32);
    } else {
        run.out = features_as<double>(x, map, w);
        run.backend = backend_name(Impl::Ref);
    }
    return note_underflow(require_finite_output(what, std::move(run), {{"x", &x}, {"W", &w}}));
}

Run linear_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, FeatureMap map,
                     const HostTensor& w, LinearForm form, bool causal, std::size_t chunk, Impl impl) {
    const std::string what = "linear_attention";
    require_tensor(what, "q", q, {2, 4});
    require_tensor(what, "k", k, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    ref::check_softmax_inputs(what, q.shape, k.shape, v.shape, causal);
    check_feature_weights(what, map, w, q.shape.back());
    ref::check_feature_inputs(what, map, {k.shape[k.shape.size() - 2], k.shape.back()},
                              ref::is_random(map) ? w.shape : std::vector<std::size_t>{});
    if (chunk == 0) throw Error(what + ": the chunk size must be at least 1, got 0");
    Run run;
    impl = pick_backend(impl, fast::linear_unsupported(q.shape.back(), v.shape.back()), run.notes);
    std::vector<std::pair<std::string, const HostTensor*>> inputs{{"q", &q}, {"k", &k}, {"v", &v}};
    if (ref::is_random(map)) inputs.push_back({"W", &w});
    note_dtypes(impl, inputs, run.notes);
#if IDATTN_HAVE_CUDA  // resolve_impl never returns Fast in a build without CUDA
    if (impl == Impl::Fast) {
        // The fast backend runs the chunked form (eq:2.chunk) with the chunked and
        // quadratic forms' stabiliser (eq:2.stab). All three forms of eq:2.5 are
        // equal up to rounding: chunk >= N is the quadratic form; the recurrent
        // form runs chunked too (its streaming constant, eq:2.stream, differs from
        // the per-sequence one only by rounding when both are finite).
        const std::size_t n = k.shape[k.shape.size() - 2];
        std::size_t fast_chunk = chunk;
        if (form == LinearForm::Quadratic) {
            fast_chunk = n;
        } else if (form == LinearForm::Recurrent) {
            run.notes.push_back("the fast backend evaluates the recurrent form as the chunked form (eq:2.chunk, "
                                "chunk " + std::to_string(chunk) + "), equal up to rounding");
        }
        const auto o = fast::chunked_linear_attention(map, to_batched<float>(q), to_batched<float>(k),
                                                      to_batched<float>(v), w_matrix<float>(map, w), causal,
                                                      fast_chunk);
        run.out = from_batched(o, q.shape.size());
        run.backend = backend_name(Impl::Fast);
        return require_finite_output(what, std::move(run), {{"q", &q}, {"k", &k}, {"v", &v}, {"W", &w}});
    }
#endif
    if (impl == Impl::Naive32) {
        run.out = linear_as<float>(q, k, v, map, w, form, causal, chunk);
        run.backend = backend_name(Impl::Naive32);
    } else {
        run.out = linear_as<double>(q, k, v, map, w, form, causal, chunk);
        run.backend = backend_name(Impl::Ref);
    }
    return require_finite_output(what, std::move(run), {{"q", &q}, {"k", &k}, {"v", &v}, {"W", &w}});
}

void check_feature_weights(const std::string& what, FeatureMap map, const HostTensor& w, std::size_t d) {
    // eq:2.1 to eq:2.4 need W of shape (R, d); taylor none.
    if (ref::is_random(map) && w.shape.empty())
        throw Error(what + ": the " + ref::feature_map_name(map) + " map needs a random draw W of shape (R, " +
                    std::to_string(d) + "); none was given");
    ref::check_feature_inputs(what, map, {1, d}, w.shape);
    if (ref::is_random(map)) require_tensor(what, "W", w, {2});
}

template <class T>
HeadFeatures<T> stabilised_head_features(const HostTensor& q, const HostTensor& k, FeatureMap map,
                                         const HostTensor& w) {
    const auto qb = to_batched<T>(q), kb = to_batched<T>(k);
    const auto wm = w_matrix<T>(map, w);
    const std::size_t B = qb.shape(0), H = qb.shape(1), d = qb.shape(3);
    const std::size_t rf = ref::feature_dim(map, ref::is_random(map) ? w.shape[0] : 0, d);
    HeadFeatures<T> f;
    f.fq = xt::xtensor<T, 4>(std::array<std::size_t, 4>{B, H, qb.shape(2), rf});
    f.fk = xt::xtensor<T, 4>(std::array<std::size_t, 4>{B, H, kb.shape(2), rf});
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t h = 0; h < H; ++h) {
            const xt::xtensor<T, 2> qh = xt::view(qb, b, h), kh = xt::view(kb, b, h);
            xt::view(f.fq, b, h) = ref::scaled_feature_map<T>(map, qh, wm).f;                         // eq:2.stab
            xt::view(f.fk, b, h) = ref::sequence_stabilised(ref::scaled_feature_map<T>(map, kh, wm));  // eq:2.stab
        }
    return f;
}

template HeadFeatures<double> stabilised_head_features<double>(const HostTensor&, const HostTensor&, FeatureMap,
                                                               const HostTensor&);
template HeadFeatures<float> stabilised_head_features<float>(const HostTensor&, const HostTensor&, FeatureMap,
                                                             const HostTensor&);

}  // namespace idattn::api
