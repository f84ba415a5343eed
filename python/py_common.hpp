// Shared by python/module.cpp and the per-chapter binding files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "api/common/dispatch.hpp"
#include "api/common/host_tensor.hpp"

namespace idattn::py_bind {

namespace py = pybind11;

// numpy float32/float64 -> HostTensor (dtype remembered); other dtypes are an error naming `name`.
HostTensor from_numpy(const std::string& name, const py::array& a);

// The random draw W of a feature map, or None: an empty (0, 0) tensor (the
// deterministic taylor map, or a draw the api refuses by name).
HostTensor optional_w(const py::object& w);
py::array to_numpy(const HostTensor& t);
// {"out": ndarray, "backend": str, "notes": [str]}
py::dict run_to_dict(const api::Run& run);

// One binder per chapter, defined in python/NN-name.cpp.
void bind_01_softmax_attention(py::module_& m);
void bind_02_kernel_feature_map(py::module_& m);
void bind_03_interdomain_projection(py::module_& m);
void bind_04_ssm_basis_recurrence(py::module_& m);
void bind_05_learned_layer(py::module_& m);

inline constexpr void (*kChapters[])(py::module_&) = {
    &bind_01_softmax_attention,
    &bind_02_kernel_feature_map,
    &bind_03_interdomain_projection,
    &bind_04_ssm_basis_recurrence,
    &bind_05_learned_layer,
};

}  // namespace idattn::py_bind
