// Minimal, strict reader and writer for NumPy .npy files (format versions 1-3),
// float32 and float64, C order, little-endian.
//
// Written here rather than using xt::load_npy so that every failure (missing
// file, bad magic, wrong dtype, Fortran order, truncated data) becomes an
// idattn::Error naming the file and what was expected, and so that the heavy
// xnpy header stays out of the CLI's translation units.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "host_tensor.hpp"

namespace idattn::npy {

// dtype is "float32" or "float64" as found in the file; values are widened
// to double (exact for float32).
using Array = HostTensor;

// `label` names the array in messages, e.g. "--q (q.npy)".
Array read(const std::string& path, const std::string& label);

// Writes atomically: a temporary file in the same folder, then rename, so a
// failed run never leaves a partial output file behind.
void write(const std::string& path, const double* data, const std::vector<std::size_t>& shape);
void write(const std::string& path, const float* data, const std::vector<std::size_t>& shape);

}  // namespace idattn::npy
