// Input validation shared by the references, the fast host wrappers, the CLI
// and the Python module. Each function throws idattn::Error naming the tensor.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/error.hpp"

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

// One tensor a step is about to allocate.
struct Alloc {
    std::string name;                 // e.g. "the basis matrix Phi"
    std::vector<std::size_t> shape;
    std::size_t element_bytes = 8;    // 8: double, 16: complex<double>
};

// The machine's physical memory in bytes (sysconf), the ceiling of require_memory.
std::size_t physical_memory_bytes();

// Checked before a step allocates, so that a count typed wrong (--R 1e9,
// --M 2^62) is a clear message, not a crash, a hang or an allocator's text:
// throws unless every size is computed without overflow and the tensors
// together fit in this machine's physical memory. `cause` names the option or
// argument responsible and its value, e.g. "M = 4611686018427387904"; the
// message gives each tensor's shape and the bytes needed.
void require_memory(const std::string& what, const std::string& cause, const std::vector<Alloc>& allocs);

// Throws unless rank is one of the allowed ranks.
void require_rank(const std::string& what, const std::string& name,
                  const std::vector<std::size_t>& shape, std::initializer_list<std::size_t> ranks);

}  // namespace idattn
