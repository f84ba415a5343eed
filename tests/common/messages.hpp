// Helpers for tests that check error messages.
#pragma once

#include <string>
#include <utility>

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

}  // namespace idattn::test
