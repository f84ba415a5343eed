#include "core/validate.hpp"

#include <cmath>
#include <sstream>

#include <unistd.h>

namespace idattn {

std::string shape_str(const std::vector<std::size_t>& shape) {
    std::ostringstream s;
    s << '(';
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    if (shape.size() == 1) s << ',';
    s << ')';
    return s.str();
}

std::string num_str(double x) {
    std::ostringstream s;
    s.precision(17);
    s << x;
    return s.str();
}

namespace {

std::vector<std::size_t> unravel(std::size_t flat, const std::vector<std::size_t>& shape) {
    std::vector<std::size_t> idx(shape.size());
    for (std::size_t a = shape.size(); a-- > 0;) {
        idx[a] = flat % shape[a];
        flat /= shape[a];
    }
    return idx;
}

std::size_t count(const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    return n;
}

template <class T>
void require_finite_impl(const std::string& what, const std::string& name, const T* data,
                         const std::vector<std::size_t>& shape) {
    const std::size_t n = count(shape);
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(data[i])) {
            std::ostringstream s;
            s << what << ": " << name << " must be finite, but " << name
              << shape_str(unravel(i, shape)) << " = " << data[i] << " (flat index " << i
              << " of a tensor of shape " << shape_str(shape) << ")";
            throw Error(s.str());
        }
    }
}

}  // namespace

void require_finite(const std::string& what, const std::string& name, const double* data,
                    const std::vector<std::size_t>& shape) {
    require_finite_impl(what, name, data, shape);
}
void require_finite(const std::string& what, const std::string& name, const float* data,
                    const std::vector<std::size_t>& shape) {
    require_finite_impl(what, name, data, shape);
}

void require_sane_size(const std::string& what, const std::string& name,
                       const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (std::size_t a = 0; a < shape.size(); ++a) {
        if (shape[a] == 0) {
            throw Error(what + ": " + name + " has shape " + shape_str(shape) + " with axis " +
                        std::to_string(a) + " of length 0; every axis must be at least 1");
        }
        if (n > kMaxElements / shape[a]) {
            throw Error(what + ": " + name + " of shape " + shape_str(shape) +
                        " has more than " + std::to_string(kMaxElements) +
                        " elements and cannot fit in memory");
        }
        n *= shape[a];
    }
}

std::size_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return std::size_t{1} << 40;  // unknown: 1 TiB
    return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page);
}

namespace {

std::string gib(long double bytes) {
    std::ostringstream s;
    s.precision(3);
    s << bytes / (1024.0L * 1024.0L * 1024.0L) << " GiB";
    return s.str();
}

}  // namespace

void require_memory(const std::string& what, const std::string& cause, const std::vector<Alloc>& allocs) {
    long double total = 0;  // bytes; long double: the product of huge counts must not wrap
    std::ostringstream list;
    for (std::size_t i = 0; i < allocs.size(); ++i) {
        long double n = allocs[i].element_bytes;
        for (auto s : allocs[i].shape) n *= static_cast<long double>(s);
        total += n;
        list << (i ? ", " : "") << allocs[i].name << " of shape " << shape_str(allocs[i].shape);
    }
    const std::size_t have = physical_memory_bytes();
    if (total > static_cast<long double>(have))
        throw Error(what + ": " + cause + " needs " + list.str() + ": " + gib(total) +
                    ", more than this machine's memory (" + gib(static_cast<long double>(have)) +
                    "); check the value");
}

void require_rank(const std::string& what, const std::string& name,
                  const std::vector<std::size_t>& shape, std::initializer_list<std::size_t> ranks) {
    for (auto r : ranks)
        if (shape.size() == r) return;
    std::ostringstream s;
    s << what << ": " << name << " must have rank ";
    std::size_t i = 0;
    for (auto r : ranks) s << (i++ ? " or " : "") << r;
    s << ", but has shape " << shape_str(shape) << " (rank " << shape.size() << ")";
    throw Error(s.str());
}

}  // namespace idattn
