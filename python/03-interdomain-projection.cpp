// Chapter 3 bindings: the bases (eq:3.1, eq:3.gram, eq:3.dct), the projections (eq:P6),
// interdomain attention (eq:P9, eq:3.causal, eq:3.5) and the effective weights (eq:3.4),
// through the api layer.
#include <pybind11/stl.h>

#include "api/03-interdomain-projection/interdomain_api.hpp"
#include "api/common/names.hpp"
#include "python/py_common.hpp"

namespace idattn::py_bind {

void bind_03_interdomain_projection(py::module_& m) {
    m.def(
        "basis_matrix",
        [](const std::string& basis, std::size_t M, std::size_t N) {
            return to_numpy(api::basis_matrix(api::parse_basis(basis), M, N));
        },
        py::arg("basis"), py::arg("M"), py::arg("N"),
        "Phi (M, N) of a real basis on N tokens: 'legs' (interval integrals of the scaled Legendre functions, "
        "eq:3.1), 'gram' (discrete Legendre polynomials) or 'dct' (DCT-II).");
    m.def(
        "interdomain_project",
        [](const py::array& fk, const py::array& v, const std::string& basis, std::size_t M, const std::string& impl) {
            const auto run = api::interdomain_project(from_numpy("key features", fk), from_numpy("v", v),
                                                      api::parse_basis(basis), M, api::parse_impl(impl));
            py::dict d;
            d["U"] = to_numpy(run.U);
            d["Gamma"] = to_numpy(run.Gamma);
            d["eta"] = to_numpy(run.eta);
            d["backend"] = run.backend;
            d["notes"] = run.notes;
            return d;
        },
        py::arg("fk"), py::arg("v"), py::arg("basis"), py::arg("M"), py::arg("impl") = "ref",
        "The projections (eq:P6) U = Phi F_k, Gamma = Phi V, eta = Phi 1 of key features fk (..., N, R) and values "
        "v (..., N, d). Returns {'U', 'Gamma', 'eta', 'backend', 'notes'}.");
    m.def(
        "interdomain_attention_features",
        [](const py::array& fq, const py::array& fk, const py::array& v, const std::string& basis, std::size_t M,
           bool causal, const std::string& impl) {
            return run_to_dict(api::interdomain_attention_features(from_numpy("query features", fq),
                                                                   from_numpy("key features", fk), from_numpy("v", v),
                                                                   api::parse_basis(basis), M, causal,
                                                                   api::parse_impl(impl)));
        },
        py::arg("fq"), py::arg("fk"), py::arg("v"), py::arg("basis"), py::arg("M"), py::arg("causal") = false,
        py::arg("impl") = "ref",
        "Interdomain attention (eq:P9) on given features F_q (..., Nq, R), F_k (..., N, R) and values. "
        "'fourier' uses the Hermitian readout (eq:3.5, non-causal). Returns {'out', 'backend', 'notes'}.");
    m.def(
        "interdomain_attention",
        [](const py::array& q, const py::array& k, const py::array& v, const std::string& map, const py::object& w,
           const std::string& basis, std::size_t M, bool causal, const std::string& impl) {
            return run_to_dict(api::interdomain_attention(from_numpy("q", q), from_numpy("k", k), from_numpy("v", v),
                                                          api::parse_feature_map(map), optional_w(w),
                                                          api::parse_basis(basis), M, causal, api::parse_impl(impl)));
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("map"), py::arg("w") = py::none(), py::arg("basis") = "legs",
        py::arg("M") = 32, py::arg("causal") = false, py::arg("impl") = "ref",
        "Interdomain attention (eq:P9) from q, k, v with the chapter-2 feature map `map` and draw `w`. "
        "Returns {'out', 'backend', 'notes'}.");
    m.def(
        "interdomain_effective_weights",
        [](const py::array& fq, const py::array& fk, const std::string& basis, std::size_t M, bool causal) {
            return run_to_dict(api::interdomain_effective_weights(from_numpy("query features", fq),
                                                                  from_numpy("key features", fk),
                                                                  api::parse_basis(basis), M, causal));
        },
        py::arg("fq"), py::arg("fk"), py::arg("basis"), py::arg("M"), py::arg("causal") = false,
        "The unnormalised effective weights W = (F_q F_k^T) P (Nq, N) of eq:3.4, one head, float64.");
}

}  // namespace idattn::py_bind
