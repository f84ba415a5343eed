// Chapter 5 bindings: the learned layer's forward (eq:P10 to eq:5.out, in the forms
// eq:5.ssm, eq:5.fold, eq:5.1), its backward (eq:5.adjoint, with stored states or
// eq:5.lambda-div) and the initialisation (eq:5.init), through the api layer.
// Parameters and gradients are dicts of numpy arrays with the names of
// chapter 5's contract; `heads` is an int (or a 0-d integer array).
#include <pybind11/stl.h>

#include "api/05-learned-layer/layer_api.hpp"
#include "api/common/names.hpp"
#include "core/error.hpp"
#include "python/py_common.hpp"

namespace idattn::py_bind {

api::LayerSettings layer_settings(const std::string& variant, const py::object& rope, const std::string& rope_order,
                                  const std::string& form, std::size_t chunk, const std::string& backward,
                                  std::size_t checkpoint) {
    api::LayerSettings s;
    s.variant = api::parse_layer_variant(variant);
    if (!rope.is_none()) s.rope = rope.cast<bool>();
    s.rope_order = api::parse_rope_order(rope_order);
    s.form = api::parse_layer_form(form);
    s.chunk = chunk;
    s.backward = api::parse_layer_backward(backward);
    s.checkpoint = checkpoint;
    return s;
}

void bind_05_learned_layer(py::module_& m) {
    m.def(
        "layer_forward",
        [](const py::dict& params, const py::array& x, const std::string& variant, const py::object& rope,
           const std::string& rope_order, const std::string& form, std::size_t chunk) {
            return run_to_dict(api::layer_forward(params_from(params), from_numpy("x", x),
                                                  layer_settings(variant, rope, rope_order, form, chunk, "stored", 16)));
        },
        py::arg("params"), py::arg("x"), py::arg("variant"), py::arg("rope") = py::none(),
        py::arg("rope_order") = "before-xi", py::arg("form") = "recurrence", py::arg("chunk") = 16,
        "The learned layer y (.., N, D) for x (N, D) or (B, N, D) (eq:P10 to eq:5.out). Returns {'out', 'backend', "
        "'notes'}.");
    m.def(
        "layer_backward",
        [](const py::dict& params, const py::array& x, const py::array& dy, const std::string& variant,
           const py::object& rope, const std::string& rope_order, const std::string& backward,
           std::size_t checkpoint) {
            const api::LayerGradRun run =
                api::layer_backward(params_from(params), from_numpy("x", x), from_numpy("dy", dy),
                                    layer_settings(variant, rope, rope_order, "recurrence", 16, backward, checkpoint));
            py::dict d;
            d["grads"] = tensors_to_dict(run.grads);
            d["backend"] = run.backend;
            d["notes"] = run.notes;
            return d;
        },
        py::arg("params"), py::arg("x"), py::arg("dy"), py::arg("variant"), py::arg("rope") = py::none(),
        py::arg("rope_order") = "before-xi", py::arg("backward") = "stored", py::arg("checkpoint") = 16,
        "dL/dx ('x') and dL/dp for every parameter array, for dy = dL/dy (eq:5.adjoint; backward 'stored' or "
        "'lambda-division' with checkpoints every `checkpoint` tokens, eq:5.lambda-div). Returns {'grads', "
        "'backend', 'notes'}.");
    m.def(
        "layer_init",
        [](const std::string& variant, std::size_t D, std::size_t H, std::size_t R, std::size_t d, std::size_t M,
           std::uint64_t seed, bool gate, const py::object& rope) {
            const ref::LayerVariant v = api::parse_layer_variant(variant);
            const bool r = rope.is_none() ? ref::layer_default_rope(v) : rope.cast<bool>();
            return tensors_to_dict(api::layer_init(v, {D, H, R, d, M, seed, gate, r}));
        },
        py::arg("variant"), py::arg("D"), py::arg("H"), py::arg("R"), py::arg("d"), py::arg("M"),
        py::arg("seed") = 0, py::arg("gate") = false, py::arg("rope") = py::none(),
        "The paper's initialisation (eq:5.init): a dict of float64 arrays and 'heads' (int).");
}

}  // namespace idattn::py_bind
