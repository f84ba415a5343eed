#include "api/08-key-value-means/kvm_api.hpp"

#include <cmath>

#include "api/common/convert.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::api {

ref::KvmBudget parse_kvm_budget(const std::string& text, std::size_t chunk) {
    const auto colon = text.find(':');
    const std::string kind = text.substr(0, colon), value = colon == std::string::npos ? "" : text.substr(colon + 1);
    char* end = nullptr;
    const double x = value.empty() ? NAN : std::strtod(value.c_str(), &end);
    const bool number = !value.empty() && end == value.c_str() + value.size() && std::isfinite(x) && x > 0;
    const std::string forms = "expected fixed:R, sqrt:F or saturate:R with R, F > 0 (e.g. fixed:256, sqrt:16, "
                              "saturate:1024)";
    if (!number || (kind != "fixed" && kind != "sqrt" && kind != "saturate"))
        throw Error("kvm: the budget '" + text + "' is not one of the forms; " + forms);
    if (kind == "sqrt") return {ref::KvmBudgetKind::PowerLaw, chunk, x, 0.5};
    if (x != std::floor(x) || x > 1e15) throw Error("kvm: the budget '" + text + "' needs a whole number of rows");
    return {kind == "fixed" ? ref::KvmBudgetKind::Fixed : ref::KvmBudgetKind::Saturate, std::size_t(x)};
}

KvmForm parse_kvm_form(const std::string& name) {
    if (name == "prefill") return KvmForm::Prefill;
    if (name == "decode") return KvmForm::Decode;
    throw Error("kvm: unknown form '" + name + "'; expected prefill or decode");
}

Run kvm_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v, const HostTensor& g,
                  const ref::KvmOptions& options, KvmForm form) {
    const std::string what = "kvm";
    require_tensor(what, "q", q, {2, 4});
    require_tensor(what, "k", k, {2, 4});
    require_tensor(what, "v", v, {2, 4});
    check_batched(what, {{"q", &q}, {"k", &k}, {"v", &v}});
    const auto qb = to_batched<double>(q), kb = to_batched<double>(k), vb = to_batched<double>(v);
    const std::size_t B = qb.shape(0), H = qb.shape(1), N = qb.shape(2);
    if (!g.data.empty()) {
        require_tensor(what, "g", g, {1, 3});
        const std::vector<std::size_t> expect = q.shape.size() == 2 ? std::vector<std::size_t>{N}
                                                                     : std::vector<std::size_t>{B, H, N};
        if (g.shape != expect)
            throw Error(what + ": the merge gates g have shape " + shape_str(g.shape) + " but expected " +
                        shape_str(expect) + ", one per token and head");
    }
    Run run;
    note_dtypes(Impl::Ref, {{"q", &q}, {"k", &k}, {"v", &v}}, run.notes);
    std::size_t head = 0;
    const auto out = per_head<double>(qb, kb, vb, [&](const auto& qh, const auto& kh, const auto& vh) {
        std::vector<double> gh;
        if (!g.data.empty()) gh.assign(g.data.begin() + head * N, g.data.begin() + (head + 1) * N);
        ++head;
        return form == KvmForm::Prefill ? ref::kvm_attention(qh, kh, vh, gh, options)
                                        : ref::kvm_decode(qh, kh, vh, gh, options);
    });
    run.out = from_batched(out, q.shape.size());
    run.backend = backend_name(Impl::Ref);
    return require_finite_output(what, std::move(run), {{"q", &q}, {"k", &k}, {"v", &v}});
}

}  // namespace idattn::api
