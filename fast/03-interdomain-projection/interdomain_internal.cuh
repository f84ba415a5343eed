// Chapter 3, fast backend: host-side helpers shared by the .cu files of this
// folder (not part of the public interface, which is interdomain.hpp): the
// size limits and shape checks of the entry points.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "fast/03-interdomain-projection/interdomain.hpp"
#include "core/error.hpp"

namespace idattn::fast::interdomain_detail {

// gridDim.y is limited to 65535: more (batch, head) pairs take several launches.
constexpr std::int64_t kMaxGridY = 65535;

inline std::vector<std::size_t> shape_of(const xt::xtensor<float, 4>& t) {
    return std::vector<std::size_t>(t.shape().begin(), t.shape().end());
}

// The kernels index rows with int (plus a tile size): keep well below INT_MAX.
constexpr std::int64_t kMaxLength = INT_MAX / 8;

inline void check_sizes(const std::string& what, std::int64_t bh, std::int64_t nq, std::int64_t n, std::int64_t m,
                        std::int64_t r, std::int64_t d) {
    if (bh < 1 || nq < 1 || n < 1 || m < 1 || r < 1 || d < 1)
        throw Error(what + ": every size must be at least 1, got bh = " + std::to_string(bh) + ", nq = " +
                    std::to_string(nq) + ", n = " + std::to_string(n) + ", M = " + std::to_string(m) + ", R = " +
                    std::to_string(r) + ", d = " + std::to_string(d));
    if (r > kInterdomainMaxDim || d > kInterdomainMaxDim)
        throw Error(what + ": feature dimension R = " + std::to_string(r) + " and value dimension d = " +
                    std::to_string(d) + " must both be <= " + std::to_string(kInterdomainMaxDim) +
                    " (the kernels' limit)");
    if (nq > kMaxLength || n > kMaxLength || m > kMaxLength)
        throw Error(what + ": sizes nq = " + std::to_string(nq) + ", n = " + std::to_string(n) + ", M = " +
                    std::to_string(m) + " exceed the kernels' limit of " + std::to_string(kMaxLength));
}

// Shapes of the host entry points: fq (B, H, Nq, R), fk (B, H, N, R), v (B, H, N, d).
inline void check_host_shapes(const std::string& what, const std::vector<std::size_t>& qs,
                              const std::vector<std::size_t>& ks, const std::vector<std::size_t>& vs) {
    for (const auto& [name, shape] : {std::pair<const char*, const std::vector<std::size_t>&>{"fq", qs},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"fk", ks},
                                      std::pair<const char*, const std::vector<std::size_t>&>{"v", vs}}) {
        for (std::size_t a = 0; a < shape.size(); ++a)
            if (shape[a] == 0)
                throw Error(what + ": " + name + " has shape " + shape_str(shape) + " with axis " + std::to_string(a) +
                            " of length 0; every axis must be at least 1");
    }
    if (ks[0] != qs[0] || ks[1] != qs[1] || ks[3] != qs[3])
        throw Error(what + ": fk has shape " + shape_str(ks) + " but fq has shape " + shape_str(qs) +
                    "; expected fk of shape (B, H, N, R) = (" + std::to_string(qs[0]) + ", " + std::to_string(qs[1]) +
                    ", N, " + std::to_string(qs[3]) + ")");
    if (vs[0] != ks[0] || vs[1] != ks[1] || vs[2] != ks[2])
        throw Error(what + ": v has shape " + shape_str(vs) + " but fk has shape " + shape_str(ks) +
                    "; expected v of shape (B, H, N, d) = (" + std::to_string(ks[0]) + ", " + std::to_string(ks[1]) +
                    ", " + std::to_string(ks[2]) + ", d)");
    if (qs[3] > static_cast<std::size_t>(kInterdomainMaxDim) || vs[3] > static_cast<std::size_t>(kInterdomainMaxDim))
        throw Error(what + ": fq has shape " + shape_str(qs) + " and v has shape " + shape_str(vs) +
                    "; the fast kernels support R <= " + std::to_string(kInterdomainMaxDim) + " and d <= " +
                    std::to_string(kInterdomainMaxDim));
}

}  // namespace idattn::fast::interdomain_detail
