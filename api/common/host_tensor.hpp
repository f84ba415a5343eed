// The backend-neutral tensor the CLI and the Python module hand to the api
// layer: a shape, the dtype it arrived in, and the values widened to double.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace idattn {

struct HostTensor {
    std::vector<std::size_t> shape;
    std::string dtype = "float64";  // "float32"/"float64" (.npz: also "int64"/"int32"): as supplied / returned
    std::vector<double> data;       // row-major values
};

}  // namespace idattn
