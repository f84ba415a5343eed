// Input validation shared by the references, the fast host wrappers, the CLI
// and the Python module. Each function throws idattn::Error naming the tensor.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "error.hpp"

namespace idattn {

// Largest number of elements a single tensor may have (2^34 doubles = 128 GiB
// would not fit anywhere we run; the limit turns an overflowing size into a
// clear message instead of a bad_alloc or a wrapped integer).
inline constexpr std::size_t kMaxElements = std::size_t{1} << 33;

// Throws unless every element is finite; the message gives the first bad
// index (flat and as a multi-index) and its value.
void require_finite(const std::string& what, const std::string& name, const double* data,
                    const std::vector<std::size_t>& shape);
void require_finite(const std::string& what, const std::string& name, const float* data,
                    const std::vector<std::size_t>& shape);

// Throws unless the product of the shape fits kMaxElements (checked without
// overflow) and, when nonzero_axes is set, no axis is zero.
void require_sane_size(const std::string& what, const std::string& name,
                       const std::vector<std::size_t>& shape);

// Throws unless rank is one of the allowed ranks.
void require_rank(const std::string& what, const std::string& name,
                  const std::vector<std::size_t>& shape, std::initializer_list<std::size_t> ranks);

}  // namespace idattn
