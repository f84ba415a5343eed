// The pybind11 module `_idattn`: the api layer on numpy arrays. Wrapped by
// python/idattn.py, which the notebooks and the main job import.
// Chapter bindings live in python/NN-name.cpp and register themselves through
// a function listed in kChapters below (one line per chapter).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "api/common/compare.hpp"
#include "api/common/dispatch.hpp"
#include "python/py_common.hpp"
#include "core/error.hpp"

namespace py = pybind11;

namespace idattn::py_bind {

HostTensor optional_w(const py::object& w) {
    if (w.is_none()) return HostTensor{{0, 0}, "float64", {}};
    return from_numpy("W", w.cast<py::array>());
}

HostTensor from_numpy(const std::string& name, const py::array& a) {
    const auto dt = a.dtype();
    HostTensor t;
    if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8))
        throw Error(name + " must be a float32 or float64 array, got dtype " + py::cast<std::string>(py::str(static_cast<const py::handle&>(dt))));
    t.dtype = dt.itemsize() == 4 ? "float32" : "float64";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) t.shape.push_back(static_cast<std::size_t>(a.shape(i)));
    auto c = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
    t.data.assign(c.data(), c.data() + c.size());
    return t;
}

py::array to_numpy(const HostTensor& t) {
    std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    if (t.dtype == "float32") {
        py::array_t<float> out(shape);
        std::copy(t.data.begin(), t.data.end(), out.mutable_data());
        return std::move(out);
    }
    py::array_t<double> out(shape);
    std::copy(t.data.begin(), t.data.end(), out.mutable_data());
    return std::move(out);
}

api::TensorMap params_from(const py::dict& d) {
    api::TensorMap m;
    for (const auto& [key, value] : d) {
        const std::string name = py::cast<std::string>(py::str(key));
        if (name == "heads") {
            const py::array a = py::array::ensure(value);
            if (!a || a.ndim() != 0 || (a.dtype().kind() != 'i' && a.dtype().kind() != 'u'))
                throw Error("layer: 'heads' must be an int (or a 0-d integer array) holding H");
            HostTensor h;
            h.dtype = "int64";
            h.data = {py::cast<double>(a.attr("item")())};
            m.emplace(name, h);
            continue;
        }
        m.emplace(name, from_numpy("'" + name + "'", py::array::ensure(value)));
    }
    return m;
}

py::dict tensors_to_dict(const api::TensorMap& m) {
    py::dict d;
    for (const auto& [name, t] : m) {
        if (t.dtype == "int64" && t.shape.empty())
            d[py::str(name)] = py::int_(static_cast<long long>(t.data[0]));
        else
            d[py::str(name)] = to_numpy(t);
    }
    return d;
}

py::dict run_to_dict(const api::Run& run) {
    py::dict d;
    d["out"] = to_numpy(run.out);
    d["backend"] = run.backend;
    d["notes"] = run.notes;
    return d;
}

}  // namespace idattn::py_bind

namespace {

py::dict comparison_to_dict(const idattn::Comparison& c) {
    py::dict d;
    d["rel_rms"] = c.rel_rms;
    d["baseline_rel_rms"] = c.baseline_rel_rms;
    d["threshold"] = c.threshold;
    d["fraction_used"] = c.fraction_used;
    d["max_abs"] = c.max_abs;
    d["worst_index"] = c.worst_multi_index;
    d["non_finite"] = c.non_finite;
    d["pass"] = c.pass;
    d["report"] = c.report();
    return d;
}

}  // namespace

PYBIND11_MODULE(_idattn, m) {
    using namespace idattn::py_bind;
    m.doc() = "Interdomain Attention: references and fast kernels (see python/idattn.py)";
    py::register_exception<idattn::Error>(m, "IdattnError", PyExc_ValueError);

    m.def("device_status", [] {
        const auto st = idattn::api::device_info();
        py::dict d;
        d["available"] = st.available;
        d["detail"] = st.detail;
        d["built_with_cuda"] = st.built_with_cuda;
        return d;
    });

    m.def(
        "compare",
        [](const py::array& reference, const py::array& candidate, const py::object& baseline, const py::object& tol) {
            const auto r = from_numpy("reference", reference), c = from_numpy("candidate", candidate);
            if (!baseline.is_none() && !tol.is_none())
                throw idattn::Error("compare: give either baseline= (the project's rule) or tol= (a fixed tolerance), "
                                    "not both");
            if (!baseline.is_none()) {
                const auto b = from_numpy("baseline", baseline.cast<py::array>());
                idattn::check_comparison(r.shape, r.data.data(), c.shape, &b.shape);
                return comparison_to_dict(idattn::compare_to_reference(r.data.data(), c.data.data(), b.data.data(), r.shape));
            }
            if (!tol.is_none()) {
                // The CLI's wording and rules: a number, or text parsed whole ("1e-3").
                double t = 0;
                if (py::isinstance<py::str>(tol)) t = idattn::parse_tolerance(tol.cast<std::string>());
                else if (py::isinstance<py::float_>(tol) || py::isinstance<py::int_>(tol)) t = tol.cast<double>();
                else throw idattn::Error("compare: tol must be a finite number >= 0, got a " +
                                         std::string(py::str(tol.get_type().attr("__name__"))));
                idattn::check_tolerance(t);
                idattn::check_comparison(r.shape, r.data.data(), c.shape, nullptr);
                return comparison_to_dict(idattn::compare_with_tolerance(r.data.data(), c.data.data(), r.shape, t));
            }
            throw idattn::Error("compare: give baseline= (naive float32 output) or tol=");
        },
        py::arg("reference"), py::arg("candidate"), py::arg("baseline") = py::none(), py::arg("tol") = py::none(),
        "The project's tolerance rule: err <= 2 err(baseline) + 4 float32 ulps, or err <= tol.");

    for (auto bind : kChapters) bind(m);
}
