// Chapter 8 bindings: Key-Value Means attention (eq:8.window to eq:8.readout) through the api layer.
#include <pybind11/stl.h>

#include "api/08-key-value-means/kvm_api.hpp"
#include "python/py_common.hpp"

namespace idattn::py_bind {

void bind_08_key_value_means(py::module_& m) {
    m.def(
        "kvm_attention",
        [](const py::array& q, const py::array& k, const py::array& v, const py::object& g, std::size_t chunk,
           std::size_t window_chunks, std::size_t sinks, const std::string& budget, std::size_t rope_dims,
           bool state_norm, bool gate_appends, double tau_state, double tau_window, const std::string& form) {
            ref::KvmOptions o;
            o.chunk = chunk;
            o.window_chunks = window_chunks;
            o.sinks = sinks;
            o.budget = api::parse_kvm_budget(budget, chunk);
            o.rope_dims = rope_dims;
            o.state_norm = state_norm;
            o.gate_appends = gate_appends;
            o.tau_state = tau_state;
            o.tau_window = tau_window;
            const HostTensor gt = g.is_none() ? HostTensor{{}, "float64", {}} : from_numpy("g", g.cast<py::array>());
            return run_to_dict(api::kvm_attention(from_numpy("q", q), from_numpy("k", k), from_numpy("v", v), gt, o,
                                                  api::parse_kvm_form(form)));
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g") = py::none(), py::arg("chunk") = 256,
        py::arg("window_chunks") = 2, py::arg("sinks") = 1, py::arg("budget") = "fixed:256", py::arg("rope_dims") = 0,
        py::arg("state_norm") = true, py::arg("gate_appends") = false, py::arg("tau_state") = 1.0,
        py::arg("tau_window") = 1.0, py::arg("form") = "prefill",
        "Key-Value Means attention (chapter 8). Returns {'out', 'backend', 'notes'}.");
}

}  // namespace idattn::py_bind
