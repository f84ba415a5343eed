// Helpers for tests that check error messages.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "api/common/host_tensor.hpp"
#include "core/error.hpp"

namespace idattn::test {

inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Calls f and returns the message of the idattn::Error it throws ("" if none).
template <class F>
std::string error_message(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const idattn::Error& e) {
        return e.what();
    }
    return "";
}

// A tensor of `shape` filled with `fill`, for the api's bad-input tests.
inline HostTensor tensor(std::vector<std::size_t> shape, double fill = 0.5) {
    HostTensor t;
    t.shape = std::move(shape);
    std::size_t n = 1;
    for (auto s : t.shape) n *= s;
    t.data.assign(n, fill);
    return t;
}

}  // namespace idattn::test
