// Chapter 1 bindings: softmax attention (eq:P1) through the api layer.
#include <pybind11/stl.h>

#include "api/01-softmax-attention/softmax_attention_api.hpp"
#include "python/py_common.hpp"

namespace idattn::py_bind {

void bind_01_softmax_attention(py::module_& m) {
    m.def(
        "softmax_attention",
        [](const py::array& q, const py::array& k, const py::array& v, bool causal, const std::string& impl) {
            return run_to_dict(api::softmax_attention(from_numpy("q", q), from_numpy("k", k), from_numpy("v", v),
                                                      causal, api::parse_impl(impl)));
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("causal") = false, py::arg("impl") = "ref",
        "Softmax attention (P1). q (Nq, d) or (B, H, Nq, d); k, v (N, d) or (B, H, N, d). "
        "impl: 'ref' (float64), 'naive32' (same formula in float32) or 'fast' (CUDA float32). "
        "Returns {'out', 'backend', 'notes'}.");
    m.def(
        "softmax_attention_online",
        [](const py::array& q, const py::array& k, const py::array& v, bool causal, std::size_t block) {
            return run_to_dict(api::softmax_attention_online(from_numpy("q", q), from_numpy("k", k),
                                                             from_numpy("v", v), causal, block));
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("causal") = false, py::arg("block") = 64,
        "The online-softmax recurrence (eq:1.online) in float64 over key blocks; single head (N, d).");
}

}  // namespace idattn::py_bind
