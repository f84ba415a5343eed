#include "api/common/npy_format.hpp"

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/common/npy.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::npy::format {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::int64_t kMaxExactInteger = std::int64_t{1} << 53;  // doubles hold every integer up to 2^53

// ---- the header: a Python dict literal ---------------------------------------
// numpy writes {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), } but
// any Python literal of that dict is valid (double quotes, other spacing, keys
// in another order, extra keys). Values kept: strings, True/False, tuples of
// raw items; anything else (a list, as in a structured dtype) is kept as text.
struct Value {
    enum Kind { Str, Bool, Tuple, Other } kind = Other;
    std::string text;                // Str: the string; Other: the raw text
    bool flag = false;               // Bool
    std::vector<std::string> items;  // Tuple: the raw items, trimmed
};

class HeaderParser {
public:
    HeaderParser(const std::string& s, const std::string& label, const std::string& path)
        : s_(s), label_(label), path_(path) {}

    std::map<std::string, Value> dict() {
        skip_ws();
        expect('{');
        std::map<std::string, Value> out;
        for (;;) {
            skip_ws();
            if (peek() == '}') break;
            const std::string key = string_literal();
            skip_ws();
            expect(':');
            skip_ws();
            out[key] = value();
            skip_ws();
            if (peek() == ',') {
                ++i_;
                continue;
            }
            if (peek() == '}') break;
            bad("expected ',' or '}' after the value of '" + key + "'");
        }
        ++i_;
        skip_ws();
        if (i_ != s_.size()) bad("unexpected text after the closing '}'");
        return out;
    }

private:
    const std::string& s_;
    const std::string& label_;
    const std::string& path_;
    std::size_t i_ = 0;

    [[noreturn]] void bad(const std::string& why) {
        fail(label_, path_, "malformed header (" + why + " at character " + std::to_string(i_) + "): " + s_);
    }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    void skip_ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    void expect(char c) {
        if (peek() != c) bad(std::string("expected '") + c + "'");
        ++i_;
    }
    std::string string_literal() {
        const char q = peek();
        if (q != '\'' && q != '"') bad("expected a quoted string");
        ++i_;
        std::string out;
        while (i_ < s_.size() && s_[i_] != q) {
            if (s_[i_] == '\\') bad("escape sequences are not supported");
            out += s_[i_++];
        }
        if (i_ >= s_.size()) bad("unterminated string");
        ++i_;
        return out;
    }
    Value value() {
        Value v;
        const char c = peek();
        if (c == '\'' || c == '"') {
            v.kind = Value::Str;
            v.text = string_literal();
        } else if (s_.compare(i_, 4, "True") == 0) {
            v.kind = Value::Bool;
            v.flag = true;
            i_ += 4;
        } else if (s_.compare(i_, 5, "False") == 0) {
            v.kind = Value::Bool;
            i_ += 5;
        } else if (c == '(') {
            v.kind = Value::Tuple;
            ++i_;
            std::string item;
            for (;;) {
                if (i_ >= s_.size()) bad("unterminated tuple");
                const char d = s_[i_++];
                if (d == '(' || d == '[' || d == '{') bad("nested values in a tuple");
                if (d == ',' || d == ')') {
                    const auto b = item.find_first_not_of(" \t\n\r"), e = item.find_last_not_of(" \t\n\r");
                    const std::string t = b == std::string::npos ? "" : item.substr(b, e - b + 1);
                    if (!t.empty()) v.items.push_back(t);
                    else if (d == ',') bad("empty tuple item");
                    item.clear();
                    if (d == ')') break;
                } else {
                    item += d;
                }
            }
        } else {  // anything else up to the next top-level ',' or '}': kept as text
            int depth = 0;
            const std::size_t start = i_;
            while (i_ < s_.size()) {
                const char d = s_[i_];
                if (d == '(' || d == '[' || d == '{') ++depth;
                if (d == ')' || d == ']' || d == '}') {
                    if (depth == 0) break;
                    --depth;
                }
                if (d == ',' && depth == 0) break;
                ++i_;
            }
            v.text = s_.substr(start, i_ - start);
        }
        return v;
    }
};

// One dimension of 'shape': a non-negative decimal integer that fits size_t.
std::size_t dimension(const std::string& item, std::size_t axis, const std::string& label, const std::string& path) {
    const std::string where = "shape entry " + std::to_string(axis) + " is '" + item + "'";
    if (item[0] == '-') fail(label, path, where + ": a negative dimension");
    for (char c : item)
        if (c < '0' || c > '9') fail(label, path, where + ": not a non-negative integer");
    if (item.size() > 19) fail(label, path, where + ": far too large to fit in memory");
    return static_cast<std::size_t>(std::stoull(item));  // <= 19 digits: fits in 64 bits
}

// The dtypes a reader takes: descr without its byte-order mark ('<', '=' or none).
struct Dtype {
    const char* code;
    const char* name;
    std::size_t itemsize;
    bool integer;
};
constexpr Dtype kDtypes[] = {
    {"f8", "float64", 8, false}, {"f4", "float32", 4, false}, {"i8", "int64", 8, true}, {"i4", "int32", 4, true}};

std::string expected_dtypes(Accept accept) {
    return accept.integers ? "float32 ('<f4'), float64 ('<f8'), int64 ('<i8') or int32 ('<i4')"
                           : "float32 ('<f4') or float64 ('<f8')";
}

// Why a descr is refused, with what to do about it.
std::string refused_dtype(const std::string& descr, Accept accept) {
    std::string hint = " (convert with arr.astype(np.float64))";
    if (!descr.empty() && descr[0] == '>') hint = " (big-endian; convert with arr.astype(arr.dtype.newbyteorder('<')))";
    if (descr == "|O" || descr == "O")
        hint = " (an object array: pickled Python objects are never loaded; save a numeric array)";
    return "expected dtype " + expected_dtypes(accept) + ", found '" + descr + "'" + hint;
}

// C order of `values` stored in Fortran order (the first axis varies fastest).
std::vector<double> from_fortran_order(const std::vector<double>& values, const std::vector<std::size_t>& shape) {
    const std::size_t rank = shape.size(), n = values.size();
    std::vector<double> out(n);
    std::vector<std::size_t> idx(rank, 0);
    for (std::size_t c = 0; c < n; ++c) {  // c walks C order; idx is its multi-index
        std::size_t f = 0, stride = 1;
        for (std::size_t ax = 0; ax < rank; ++ax) {
            f += idx[ax] * stride;
            stride *= shape[ax];
        }
        out[c] = values[f];
        for (std::size_t ax = rank; ax-- > 0;) {
            if (++idx[ax] < shape[ax]) break;
            idx[ax] = 0;
        }
    }
    return out;
}

template <class T>
T load(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

}  // namespace

[[noreturn]] void fail(const std::string& label, const std::string& path, const std::string& why) {
    throw Error("cannot read " + label + " from '" + path + "': " + why);
}

Layout read_layout(std::uintmax_t size, const ReadAt& read_at, const std::string& label, const std::string& path,
                   Accept accept) {
    const std::string pre = read_at(0, static_cast<std::size_t>(std::min<std::uintmax_t>(size, 12)));
    if (size < 10 || pre.compare(0, 6, kMagic, 6) != 0)
        fail(label, path, "not a .npy file (missing the \\x93NUMPY magic string)");
    const int major = static_cast<unsigned char>(pre[6]);
    std::size_t header_len = 0, offset = 0;
    if (major == 1) {
        header_len = static_cast<unsigned char>(pre[8]) | (static_cast<unsigned char>(pre[9]) << 8);
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) fail(label, path, "truncated header");
        for (int b = 0; b < 4; ++b)
            header_len |= static_cast<std::size_t>(static_cast<unsigned char>(pre[8 + b])) << (8 * b);
        offset = 12;
    } else {
        fail(label, path, "unsupported .npy format version " + std::to_string(major));
    }
    if (size < offset + header_len) fail(label, path, "truncated header");
    const std::string header = read_at(offset, header_len);
    offset += header_len;

    const auto dict = HeaderParser(header, label, path).dict();
    const auto entry = [&](const std::string& key, Value::Kind kind, const char* what) -> const Value& {
        const auto it = dict.find(key);
        if (it == dict.end()) fail(label, path, "header has no '" + key + "' entry");
        if (it->second.kind != kind)
            fail(label, path, "header entry '" + key + "' is not " + what + ": " + header);
        return it->second;
    };
    const auto descr_it = dict.find("descr");
    if (descr_it != dict.end() && descr_it->second.kind != Value::Str)
        fail(label, path, "has a structured dtype (" + descr_it->second.text + "); expected " +
                              expected_dtypes(accept));
    const std::string descr = entry("descr", Value::Str, "a dtype string").text;
    const std::string code = descr.empty() || (descr[0] != '<' && descr[0] != '=') ? descr : descr.substr(1);
    Layout l;
    for (const auto& d : kDtypes)
        if (code == d.code && (accept.integers || !d.integer)) {
            l.meta.dtype = d.name;
            l.itemsize = d.itemsize;
            l.integer = d.integer;
        }
    if (l.itemsize == 0) fail(label, path, refused_dtype(descr, accept));
    l.fortran = entry("fortran_order", Value::Bool, "True or False").flag;
    const auto& items = entry("shape", Value::Tuple, "a tuple").items;
    auto& shape = l.meta.shape;
    for (std::size_t ax = 0; ax < items.size(); ++ax) shape.push_back(dimension(items[ax], ax, label, path));
    if (shape.empty() && !accept.scalar) fail(label, path, "is a 0-dimensional scalar; expected a tensor");
    for (std::size_t ax = 0; ax < shape.size(); ++ax)
        if (shape[ax] == 0)
            fail(label, path, "has shape " + shape_str(shape) + " with an empty axis " + std::to_string(ax));
    try {
        require_sane_size("npy", label, shape);
    } catch (const Error& e) {
        fail(label, path, e.what());
    }

    l.elements = 1;
    for (auto s : shape) l.elements *= s;
    l.data_offset = offset;
    l.data_bytes = l.elements * l.itemsize;  // <= kMaxElements * 8: no overflow
    const std::uintmax_t have = size - offset;
    if (have < l.data_bytes)
        fail(label, path, "file is truncated: shape " + shape_str(shape) + " of " + l.meta.dtype + " needs " +
                              std::to_string(l.data_bytes) + " bytes of data, found " + std::to_string(have));
    if (have > l.data_bytes)
        fail(label, path,
             "file has " + std::to_string(have - l.data_bytes) + " unexpected trailing bytes after the data");
    return l;
}

HostTensor decode(const Layout& layout, const char* data, const std::string& label, const std::string& path) {
    HostTensor a = layout.meta;
    std::vector<double> values(layout.elements);
    if (!layout.integer && layout.itemsize == 8) {
        std::memcpy(values.data(), data, layout.data_bytes);
    } else if (!layout.integer) {
        for (std::size_t i = 0; i < layout.elements; ++i) values[i] = load<float>(data + 4 * i);
    } else {
        for (std::size_t i = 0; i < layout.elements; ++i) {
            const char* p = data + i * layout.itemsize;
            const std::int64_t v = layout.itemsize == 8 ? load<std::int64_t>(p) : load<std::int32_t>(p);
            if (v > kMaxExactInteger || v < -kMaxExactInteger)
                fail(label, path, "value " + std::to_string(v) + " (element " + std::to_string(i) +
                                      " in file order) is beyond 2^53 = " + std::to_string(kMaxExactInteger) +
                                      " in magnitude: a double cannot hold it exactly");
            values[i] = static_cast<double>(v);
        }
    }
    a.data = layout.fortran ? from_fortran_order(values, a.shape) : std::move(values);
    return a;
}

HostTensor parse(const std::string& bytes, const std::string& label, const std::string& path, Accept accept) {
    const Layout l = read_layout(
        bytes.size(), [&](std::size_t offset, std::size_t n) { return bytes.substr(offset, n); }, label, path,
        accept);
    return decode(l, bytes.data() + l.data_offset, label, path);
}

// ---- input files -------------------------------------------------------------------

InputFile::InputFile(const std::string& path, const std::string& label, const std::string& kind)
    : path_(path), label_(label) {
    // stat first: a device or FIFO is refused without being opened.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == EACCES) fail(label, path, "file is not readable (permission denied)");
        fail(label, path, "file does not exist or is not readable");
    }
    const auto check = [&](const struct stat& s) {
        if (S_ISDIR(s.st_mode)) fail(label, path, "is a directory, not a " + kind);
        if (!S_ISREG(s.st_mode))
            fail(label, path, "is not a regular file (a FIFO, device or socket); give a " + kind);
    };
    check(st);
    // O_NONBLOCK: were it replaced by a FIFO meanwhile, open must not wait for a writer.
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) {
        if (errno == EACCES) fail(label, path, "file is not readable (permission denied)");
        fail(label, path, "file does not exist or is not readable");
    }
    struct stat fst {};
    try {
        if (::fstat(fd_, &fst) != 0)
            fail(label, path, "file is not readable (" + std::string(std::strerror(errno)) + ")");
        check(fst);
    } catch (...) {
        ::close(fd_);
        throw;
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    size_ = static_cast<std::uintmax_t>(fst.st_size);
}

InputFile::~InputFile() {
    if (fd_ >= 0) ::close(fd_);
}

std::string InputFile::read_at(std::size_t offset, std::size_t n, const std::string& what) const {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::pread(fd_, out.data() + got, n - got, static_cast<off_t>(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) fail(label_, path_, what + " could not be read whole (the file changed while it was read?)");
        got += static_cast<std::size_t>(r);
    }
    return out;
}

void InputFile::release() { fd_ = -1; }

// ---- writing ---------------------------------------------------------------------

const char* descr_of(const std::string& dtype, const std::string& label) {
    if (dtype == "float64") return "<f8";
    if (dtype == "float32") return "<f4";
    if (dtype == "int64") return "<i8";
    if (dtype == "int32") return "<i4";
    throw Error(label + ": cannot write dtype '" + dtype + "'; give float32, float64, int64 or int32");
}

std::string header(const char* descr, const std::vector<std::size_t>& shape) {
    std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
        if (i + 1 < shape.size()) dict += ' ';
    }
    dict += "), }";
    // Pad so that the data starts on a 64-byte boundary, header ends with '\n'.
    const std::size_t total = 10 + dict.size() + 1;
    dict += std::string((64 - total % 64) % 64, ' ') + '\n';
    const std::size_t hlen = dict.size();
    std::string out(kMagic, 6);
    out += static_cast<char>(1);
    out += static_cast<char>(0);
    out += static_cast<char>(hlen & 0xff);
    out += static_cast<char>((hlen >> 8) & 0xff);
    return out + dict;
}

std::string encode(const HostTensor& t, const char* descr, const std::string& label) {
    require_sane_size("npy", label, t.shape);
    std::size_t n = 1;
    for (auto s : t.shape) n *= s;
    if (t.data.size() != n)
        throw Error(label + ": has " + std::to_string(t.data.size()) + " values but its shape " + shape_str(t.shape) +
                    " needs " + std::to_string(n));
    const std::string d = descr;
    const std::size_t itemsize = d.back() == '8' ? 8 : 4;
    std::string out(n * itemsize, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        const double v = t.data[i];
        char* p = out.data() + i * itemsize;
        const auto bad = [&](const std::string& why) {
            throw Error(label + ": value " + num_str(v) + " at flat index " + std::to_string(i) + " " + why);
        };
        if (d == "<f8") {
            std::memcpy(p, &v, 8);
        } else if (d == "<f4") {
            if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max())
                bad("is beyond float32's range; write it as float64");
            const float f = static_cast<float>(v);
            std::memcpy(p, &f, 4);
        } else {
            const double hi = itemsize == 8 ? static_cast<double>(kMaxExactInteger) : 2147483647.0;
            const double lo = itemsize == 8 ? -hi : -2147483648.0;
            if (!std::isfinite(v) || v != std::trunc(v) || v < lo || v > hi)
                bad("is not an integer in [" + num_str(lo) + ", " + num_str(hi) + "] (dtype " +
                    (itemsize == 8 ? "int64: a double holds every integer up to 2^53" : "int32") + ")");
            if (itemsize == 8) {
                const auto w = static_cast<std::int64_t>(v);
                std::memcpy(p, &w, 8);
            } else {
                const auto w = static_cast<std::int32_t>(v);
                std::memcpy(p, &w, 4);
            }
        }
    }
    return out;
}

std::string serialise(const HostTensor& t, const std::string& label) {
    const char* descr = descr_of(t.dtype, label);
    return header(descr, t.shape) + encode(t, descr, label);
}

// ---- atomic output files -------------------------------------------------------------

namespace {

// Temporary files of writes in progress, for the signal handler (fixed storage:
// a handler may only call async-signal-safe functions such as unlink).
constexpr int kMaxPending = 16;
constexpr std::size_t kMaxPath = 4096;
char g_pending[kMaxPending][kMaxPath];
volatile std::sig_atomic_t g_pending_used[kMaxPending];

std::mutex g_pending_mutex;  // writers in several threads (the handler reads without it)

int register_pending(const std::string& tmp) {
    if (tmp.size() >= kMaxPath) return -1;
    const std::lock_guard<std::mutex> lock(g_pending_mutex);
    for (int i = 0; i < kMaxPending; ++i)
        if (!g_pending_used[i]) {
            std::memcpy(g_pending[i], tmp.c_str(), tmp.size() + 1);
            g_pending_used[i] = 1;
            return i;
        }
    return -1;
}

void unregister_pending(int slot) {
    const std::lock_guard<std::mutex> lock(g_pending_mutex);
    if (slot >= 0) g_pending_used[slot] = 0;
}

bool write_fully(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

}  // namespace

std::string folder_of(const std::string& path) {
    const auto parent = std::filesystem::path(path).parent_path().string();
    return parent.empty() ? "." : parent;
}

extern "C" void remove_pending_and_reraise(int sig) {
    for (int i = 0; i < kMaxPending; ++i)
        if (g_pending_used[i]) ::unlink(g_pending[i]);
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

Staged stage(const std::string& target, const std::vector<std::string_view>& pieces) {
    std::string tmpl = target + ".tmp-XXXXXX";
    Staged s{target, "", -1};
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0)
        throw Error("cannot write '" + target + "': cannot create a temporary file in '" + folder_of(target) +
                    "' (" + std::strerror(errno) + ")");
    s.tmp = tmpl;
    s.slot = register_pending(s.tmp);
    const auto failed = [&](const std::string& what, int err) {
        ::close(fd);
        ::unlink(s.tmp.c_str());
        unregister_pending(s.slot);
        throw Error("cannot write '" + target + "': " + what + " failed (" + std::strerror(err) +
                    (err == ENOSPC || err == EFBIG || err == EDQUOT ? ": disk full or file too large" : "") +
                    "); the previous file, if any, is unchanged");
    };
    ::fchmod(fd, 0644);
    for (const auto& piece : pieces)
        if (!write_fully(fd, piece.data(), piece.size())) failed("writing the data", errno);
    if (::fsync(fd) != 0) failed("fsync", errno);
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(s.tmp.c_str());
        unregister_pending(s.slot);
        throw Error("cannot write '" + target + "': close failed (" + std::string(std::strerror(err)) +
                    "); the previous file, if any, is unchanged");
    }
    return s;
}

void discard(std::vector<Staged>& staged) {
    for (auto& s : staged) {
        ::unlink(s.tmp.c_str());
        unregister_pending(s.slot);
    }
    staged.clear();
}

void replace_targets(std::vector<Staged>& staged) {
    for (std::size_t i = 0; i < staged.size(); ++i) {
        if (std::rename(staged[i].tmp.c_str(), staged[i].target.c_str()) != 0) {
            const int err = errno;
            std::vector<Staged> rest(staged.begin() + static_cast<std::ptrdiff_t>(i), staged.end());
            discard(rest);
            throw Error("cannot write '" + staged[i].target + "': renaming the temporary file over it failed (" +
                        std::strerror(err) + ")" +
                        (i > 0 ? "; the outputs before it were written" : "; nothing was written"));
        }
        unregister_pending(staged[i].slot);
    }
    for (const auto& s : staged) {
        const int dfd = ::open(folder_of(s.target).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
}

void write_atomically(const std::string& path, const std::vector<std::string_view>& pieces) {
    check_output(path, "");
    std::vector<Staged> staged{stage(path, pieces)};
    replace_targets(staged);
}

}  // namespace idattn::npy::format
