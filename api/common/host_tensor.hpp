// The backend-neutral tensor the CLI and the Python module hand to the api
// layer: a shape, the dtype it arrived in, and the values widened to double.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace idattn {

struct HostTensor {
    std::vector<std::size_t> shape;
    std::string dtype = "float64";  // "float32" or "float64": what the user supplied / receives
    std::vector<double> data;       // row-major values
};

}  // namespace idattn
