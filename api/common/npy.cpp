#include "npy.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <type_traits>

#include "../../ref/common/error.hpp"
#include "../../ref/common/validate.hpp"

namespace idattn::npy {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

[[noreturn]] void fail(const std::string& label, const std::string& path, const std::string& why) {
    throw Error("cannot read " + label + " from '" + path + "': " + why);
}

std::string read_all(const std::string& path, const std::string& label) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(label, path, "file does not exist or is not readable");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

Array read(const std::string& path, const std::string& label) {
    const std::string bytes = read_all(path, label);
    if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0)
        fail(label, path, "not a .npy file (missing the \\x93NUMPY magic string)");
    const int major = static_cast<unsigned char>(bytes[6]);
    std::size_t header_len = 0, offset = 0;
    if (major == 1) {
        header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) fail(label, path, "truncated header");
        header_len = 0;
        for (int b = 0; b < 4; ++b)
            header_len |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + b])) << (8 * b);
        offset = 12;
    } else {
        fail(label, path, "unsupported .npy format version " + std::to_string(major));
    }
    if (bytes.size() < offset + header_len) fail(label, path, "truncated header");
    const std::string header = bytes.substr(offset, header_len);
    offset += header_len;

    std::smatch m;
    if (!std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([^']*)'")))
        fail(label, path, "header has no 'descr' entry");
    const std::string descr = m[1];
    std::size_t itemsize = 0;
    Array a;
    if (descr == "<f8" || descr == "f8") {
        a.dtype = "float64";
        itemsize = 8;
    } else if (descr == "<f4" || descr == "f4") {
        a.dtype = "float32";
        itemsize = 4;
    } else {
        fail(label, path, "expected dtype float32 ('<f4') or float64 ('<f8'), found '" + descr +
                              "' (convert with arr.astype(np.float64))");
    }
    if (!std::regex_search(header, m, std::regex("'fortran_order'\\s*:\\s*(True|False)")))
        fail(label, path, "header has no 'fortran_order' entry");
    if (m[1] == "True")
        fail(label, path, "array is in Fortran order; save np.ascontiguousarray(arr) instead");
    if (!std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
        fail(label, path, "header has no 'shape' entry");
    const std::string dims = m[1];
    std::regex num("[0-9]+");
    for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it)
        a.shape.push_back(std::stoull(it->str()));
    if (a.shape.empty()) fail(label, path, "is a 0-dimensional scalar; expected a tensor");
    for (std::size_t ax = 0; ax < a.shape.size(); ++ax)
        if (a.shape[ax] == 0)
            fail(label, path, "has shape " + shape_str(a.shape) + " with an empty axis " + std::to_string(ax));
    require_sane_size("npy", label, a.shape);

    std::size_t n = 1;
    for (auto s : a.shape) n *= s;
    const std::size_t need = n * itemsize, have = bytes.size() - offset;
    if (have < need)
        fail(label, path, "file is truncated: shape " + shape_str(a.shape) + " of " + a.dtype + " needs " +
                              std::to_string(need) + " bytes of data, found " + std::to_string(have));
    if (have > need)
        fail(label, path, "file has " + std::to_string(have - need) + " unexpected trailing bytes after the data");
    a.data.resize(n);
    const char* p = bytes.data() + offset;
    if (itemsize == 8) {
        std::memcpy(a.data.data(), p, need);
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            float f;
            std::memcpy(&f, p + 4 * i, 4);
            a.data[i] = f;
        }
    }
    return a;
}

namespace {

template <class T>
void write_impl(const std::string& path, const T* data, const std::vector<std::size_t>& shape) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    std::string dict = std::string("{'descr': '") + (sizeof(T) == 8 ? "<f8" : "<f4") +
                       "', 'fortran_order': False, 'shape': (";
    std::size_t n = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
        if (i + 1 < shape.size()) dict += ' ';
        n *= shape[i];
    }
    dict += "), }";
    // Pad so that the data starts on a 64-byte boundary, header ends with '\n'.
    std::size_t total = 10 + dict.size() + 1;
    dict += std::string((64 - total % 64) % 64, ' ') + '\n';
    const std::uint16_t hlen = static_cast<std::uint16_t>(dict.size());

    const std::string tmp = path + ".partial";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw Error("cannot write '" + path + "': the folder does not exist or is not writable");
        out.write(kMagic, 6);
        const char ver[2] = {1, 0};
        out.write(ver, 2);
        const char len[2] = {static_cast<char>(hlen & 0xff), static_cast<char>(hlen >> 8)};
        out.write(len, 2);
        out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(T)));
        if (!out) {
            std::remove(tmp.c_str());
            throw Error("cannot write '" + path + "': write failed (disk full?)");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw Error("cannot write '" + path + "': rename of the temporary file failed");
    }
}

}  // namespace

void write(const std::string& path, const double* data, const std::vector<std::size_t>& shape) {
    write_impl(path, data, shape);
}
void write(const std::string& path, const float* data, const std::vector<std::size_t>& shape) {
    write_impl(path, data, shape);
}

}  // namespace idattn::npy
