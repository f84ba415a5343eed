// Chapter 6 bindings: a decoder object over the state of eq:6.state - prefill in
// chunks (eq:6.prefill), decode steps (eq:6.step), the softmax KV cache
// (eq:6.cache) - through the api layer.
#include <pybind11/stl.h>

#include "api/06-decoding/decode_api.hpp"
#include "api/common/names.hpp"
#include "python/py_common.hpp"

namespace idattn::py_bind {

void bind_06_decoding(py::module_& m) {
    py::class_<api::Decoder>(m, "Decoder",
                             "A decoder for the layer of chapter 5: prefill(x, chunk) then step(x_t) (eq:6.step), "
                             "from a state of fixed size (eq:6.state) or the softmax KV cache (eq:6.cache).")
        .def(py::init([](const py::dict& params, const std::string& variant, const py::object& rope,
                         const std::string& rope_order, const std::string& readout) {
                 api::LayerSettings s = layer_settings(variant, rope, rope_order, "recurrence", 16, "stored", 16);
                 s.form = api::parse_readout(readout);
                 return api::Decoder(params_from(params), s);
             }),
             py::arg("params"), py::arg("variant"), py::arg("rope") = py::none(), py::arg("rope_order") = "before-xi",
             py::arg("readout") = "explicit")
        .def("prefill", [](api::Decoder& d, const py::array& x, std::size_t chunk) {
                 return to_numpy(d.prefill(from_numpy("x", x), chunk));
             },
             py::arg("x"), py::arg("chunk") = 64, "The prompt x (N, D) in runs of `chunk` tokens (eq:6.prefill): y (N, D).")
        .def("step", [](api::Decoder& d, const py::array& x) { return to_numpy(d.step(from_numpy("x", x))); },
             py::arg("x"), "One token x (D,) -> y (D,) (eq:6.step).")
        .def_property_readonly("position", &api::Decoder::position)
        .def_property_readonly("state_floats", &api::Decoder::state_floats)
        .def("state", [](const api::Decoder& d) { return tensors_to_dict(d.state()); },
             "The state as a dict: 'position'; 'X' (H, M, R + d, 2) and 'history_<W>', or 'k_cache', 'v_cache'.")
        .def_property_readonly("notes", &api::Decoder::notes);
}

}  // namespace idattn::py_bind
