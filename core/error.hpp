// The one exception type of the project.
//
// Every check on user input throws idattn::Error with a message that names the
// tensor (or file), what was expected and what was found, e.g.
//   "softmax_attention: k has shape (64, 32) but q has d = 64; expected k of shape (N, 64)".
// The CLI prints the message and exits non-zero; the Python module turns it
// into ValueError. Nothing in the project fails silently.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace idattn {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// "(2, 4, 128, 64)" - the shape notation of every message.
std::string shape_str(const std::vector<std::size_t>& shape);

// A value as it appears in messages: 17 significant digits, "inf", "nan".
std::string num_str(double x);

}  // namespace idattn
