// Shared by python/module.cpp and the per-chapter binding files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <map>
#include <string>

#include "api/05-learned-layer/layer_api.hpp"
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
// A dict of numpy arrays (and 'heads': an int or 0-d integer array) <-> named tensors;
// 0-d int64 tensors come back as Python ints.
std::map<std::string, HostTensor> params_from(const py::dict& d);
py::dict tensors_to_dict(const std::map<std::string, HostTensor>& m);
// Chapter 5's settings from the Python arguments (rope None: the variant's default).
api::LayerSettings layer_settings(const std::string& variant, const py::object& rope, const std::string& rope_order,
                                  const std::string& form, std::size_t chunk, const std::string& backward,
                                  std::size_t checkpoint);

// One binder per chapter, defined in python/NN-name.cpp.
void bind_01_softmax_attention(py::module_& m);
void bind_02_kernel_feature_map(py::module_& m);
void bind_03_interdomain_projection(py::module_& m);
void bind_04_ssm_basis_recurrence(py::module_& m);
void bind_05_learned_layer(py::module_& m);
void bind_06_decoding(py::module_& m);
void bind_08_key_value_means(py::module_& m);

inline constexpr void (*kChapters[])(py::module_&) = {
    &bind_01_softmax_attention,
    &bind_02_kernel_feature_map,
    &bind_03_interdomain_projection,
    &bind_04_ssm_basis_recurrence,
    &bind_05_learned_layer,
    &bind_06_decoding,
    &bind_08_key_value_means,
};

}  // namespace idattn::py_bind
