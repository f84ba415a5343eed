#include "api/common/dispatch.hpp"

#include <cmath>
#include <limits>
#include <sstream>

#include "fast/common/device.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::api {

Impl parse_impl(const std::string& name) {
    if (name == "ref") return Impl::Ref;
    if (name == "naive32") return Impl::Naive32;
    if (name == "fast") return Impl::Fast;
    throw Error("--impl must be 'ref' (float64 CPU reference), 'naive32' (the reference formula in float32) "
                "or 'fast' (float32 CUDA), got '" + name + "'");
}

DeviceInfo device_info() {
    const auto st = fast::device_status();
    return {fast::built_with_cuda(), st.available, st.detail};
}

Impl pick_backend(Impl requested, const std::string& fast_unsupported, std::vector<std::string>& notes) {
    if (requested == Impl::Fast && !fast_unsupported.empty()) {
        notes.push_back(fast_unsupported + "; ran the float64 reference instead");
        return Impl::Ref;
    }
    return resolve_impl(requested, notes);
}

Impl resolve_impl(Impl requested, std::vector<std::string>& notes) {
    if (requested != Impl::Fast) return requested;
    const auto st = fast::device_status();
    if (st.available) return Impl::Fast;
    notes.push_back("fast backend requested but unavailable (" + st.detail +
                    "); ran the float64 reference instead");
    return Impl::Ref;
}

void note_dtypes(Impl impl, const std::vector<std::pair<std::string, const HostTensor*>>& inputs,
                 std::vector<std::string>& notes) {
    std::string f32, f64;
    for (const auto& [name, t] : inputs) {
        std::string& list = t->dtype == "float32" ? f32 : f64;
        list += (list.empty() ? "" : ", ") + name;
    }
    if (impl == Impl::Ref && !f32.empty())
        notes.push_back("inputs " + f32 + " are float32: promoted exactly to float64; the reference computes and writes float64");
    if (impl != Impl::Ref)  // float32 evaluation: every input must fit float32's range
        for (const auto& [name, t] : inputs)
            for (std::size_t i = 0; i < t->data.size(); ++i)
                if (std::fabs(t->data[i]) > static_cast<double>(std::numeric_limits<float>::max())) {
                    std::ostringstream s;
                    s << name << " element " << i << " = " << t->data[i] << " is beyond float32's range ("
                      << std::numeric_limits<float>::max() << "), and the "
                      << (impl == Impl::Fast ? "fast backend" : "naive32 evaluation")
                      << " computes in float32; use --impl ref (float64) or rescale the input";
                    throw Error(s.str());
                }
    if (impl != Impl::Ref && !f64.empty())
        notes.push_back("inputs " + f64 + " are float64: rounded to float32; the " +
                        std::string(impl == Impl::Fast ? "fast backend" : "naive32 evaluation") +
                        " computes and writes float32");
}

void require_tensor(const std::string& what, const std::string& name, const HostTensor& t,
                    std::initializer_list<std::size_t> ranks) {
    require_rank(what, name, t.shape, ranks);
    require_sane_size(what, name, t.shape);
    std::size_t n = 1;
    for (auto s : t.shape) n *= s;
    if (t.data.size() != n)
        throw Error(what + ": " + name + " has shape " + shape_str(t.shape) + " (" + std::to_string(n) +
                    " elements) but holds " + std::to_string(t.data.size()) + " values");
    require_finite(what, name, t.data.data(), t.shape);
}

std::string backend_name(Impl impl) {
    switch (impl) {
        case Impl::Fast: return "fast (float32, " + fast::device_status().detail + ")";
        case Impl::Naive32: return "naive32 (the reference formula in float32, CPU)";
        case Impl::Ref: break;
    }
    return "ref (float64, CPU)";
}

void check_batched(const std::string& what, const std::vector<std::pair<std::string, const HostTensor*>>& ts) {
    const auto& [name0, t0] = ts.front();
    for (const auto& [name, t] : ts) {
        if (t->shape.size() != t0->shape.size())
            throw Error(what + ": " + name0 + " and " + name + " must have the same rank, but " + name0 + " has shape " +
                        shape_str(t0->shape) + " and " + name + " " + shape_str(t->shape));
        if (t->shape.size() == 4 && (t->shape[0] != t0->shape[0] || t->shape[1] != t0->shape[1]))
            throw Error(what + ": " + name0 + " and " + name + " must share the (B, H) axes, but " + name0 +
                        " has shape " + shape_str(t0->shape) + " and " + name + " " + shape_str(t->shape));
    }
}

std::vector<std::size_t> last2(const std::vector<std::size_t>& shape) {
    return {shape[shape.size() - 2], shape[shape.size() - 1]};
}

Run require_finite_output(const std::string& what, Run run,
                          const std::vector<std::pair<std::string, const HostTensor*>>& inputs) {
    const auto& o = run.out;
    for (std::size_t i = 0; i < o.data.size(); ++i) {
        if (std::isfinite(o.data[i])) continue;
        std::ostringstream s;
        s << what << ": the output is not finite (element " << i << " of shape " << shape_str(o.shape) << " is "
          << o.data[i] << ") although every input is: an intermediate overflowed in the " << run.backend
          << " computation";
        std::string name;
        double biggest = 0;
        for (const auto& [n, t] : inputs)
            for (double x : t->data)
                if (std::fabs(x) > biggest) {
                    biggest = std::fabs(x);
                    name = n;
                }
        if (!name.empty()) s << "; the largest input magnitude is " << biggest << " in " << name;
        s << ". Rescale the inputs so that q.k/sqrt(d) and |x|^2 stay within the floating-point range (about "
             "1.8e308 in float64, 3.4e38 in float32)";
        throw Error(s.str());
    }
    return run;
}

}  // namespace idattn::api
