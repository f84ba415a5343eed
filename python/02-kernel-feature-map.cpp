// Chapter 2 bindings: feature maps (eq:P3, eq:2.1 to eq:2.4), their random draws, and
// linear attention (eq:P4) in the three forms of eq:2.5, through the api layer.
#include <pybind11/stl.h>

#include "api/02-kernel-feature-map/feature_map_api.hpp"
#include "api/common/names.hpp"
#include "python/py_common.hpp"

namespace idattn::py_bind {

void bind_02_kernel_feature_map(py::module_& m) {
    m.def(
        "draw_feature_weights",
        [](const std::string& map, std::size_t R, std::size_t d, std::uint64_t seed) {
            return to_numpy(api::draw_feature_weights(api::parse_feature_map(map), R, d, seed));
        },
        py::arg("map"), py::arg("R"), py::arg("d"), py::arg("seed") = 0,
        "The random draw W (R, d) of a feature map: iid N(0, I) rows for 'rff' and 'positive', orthogonal "
        "blocks with chi lengths for 'orthogonal', an empty (0, 0) array for 'taylor'.");
    m.def(
        "feature_map",
        [](const py::array& x, const std::string& map, const py::object& w, const std::string& impl) {
            return run_to_dict(api::feature_map(from_numpy("x", x), api::parse_feature_map(map), optional_w(w),
                                                api::parse_impl(impl)));
        },
        py::arg("x"), py::arg("map"), py::arg("w") = py::none(), py::arg("impl") = "ref",
        "Features xi(x) (eq:P3): x (N, d) or (B, H, N, d) -> (..., N, R_f). W (R, d) from draw_feature_weights "
        "(None for 'taylor'). Returns {'out', 'backend', 'notes'}.");
    m.def(
        "linear_attention",
        [](const py::array& q, const py::array& k, const py::array& v, const std::string& map, const py::object& w,
           const std::string& form, bool causal, std::size_t chunk, const std::string& impl) {
            return run_to_dict(api::linear_attention(from_numpy("q", q), from_numpy("k", k), from_numpy("v", v),
                                                     api::parse_feature_map(map), optional_w(w),
                                                     api::parse_linear_form(form), causal, chunk,
                                                     api::parse_impl(impl)));
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("map"), py::arg("w") = py::none(),
        py::arg("form") = "chunked", py::arg("causal") = false, py::arg("chunk") = 64, py::arg("impl") = "ref",
        "Linear attention (eq:P4) with the features of `map` and draw `w`; form 'quadratic', 'recurrent' or "
        "'chunked' (eq:2.5). Returns {'out', 'backend', 'notes'}.");
}

}  // namespace idattn::py_bind
