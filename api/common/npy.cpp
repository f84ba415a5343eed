#include "api/common/npy.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <type_traits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::npy {

namespace {

constexpr char kMagic[] = "\x93NUMPY";

[[noreturn]] void fail(const std::string& label, const std::string& path, const std::string& why) {
    throw Error("cannot read " + label + " from '" + path + "': " + why);
}

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

// Stat of an input path, refused by name unless it is a regular file.
std::uintmax_t regular_file_size(const std::string& path, const std::string& label) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == EACCES) fail(label, path, "file is not readable (permission denied)");
        fail(label, path, "file does not exist or is not readable");
    }
    if (S_ISDIR(st.st_mode)) fail(label, path, "is a directory, not a .npy file");
    if (!S_ISREG(st.st_mode))
        fail(label, path, "is not a regular file (a FIFO, device or socket); give a .npy file");
    return static_cast<std::uintmax_t>(st.st_size);
}

}  // namespace

Array read(const std::string& path, const std::string& label) {
    const std::uintmax_t file_size = regular_file_size(path, label);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(label, path, "file is not readable");
    char pre[12] = {};
    in.read(pre, static_cast<std::streamsize>(std::min<std::uintmax_t>(file_size, 12)));
    if (file_size < 10 || std::memcmp(pre, kMagic, 6) != 0)
        fail(label, path, "not a .npy file (missing the \\x93NUMPY magic string)");
    const int major = static_cast<unsigned char>(pre[6]);
    std::size_t header_len = 0, offset = 0;
    if (major == 1) {
        header_len = static_cast<unsigned char>(pre[8]) | (static_cast<unsigned char>(pre[9]) << 8);
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (file_size < 12) fail(label, path, "truncated header");
        for (int b = 0; b < 4; ++b)
            header_len |= static_cast<std::size_t>(static_cast<unsigned char>(pre[8 + b])) << (8 * b);
        offset = 12;
    } else {
        fail(label, path, "unsupported .npy format version " + std::to_string(major));
    }
    if (file_size < offset + header_len) fail(label, path, "truncated header");
    std::string header(header_len, '\0');
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(header.data(), static_cast<std::streamsize>(header_len));
    if (!in) fail(label, path, "truncated header");
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
        fail(label, path, "has a structured dtype (" + descr_it->second.text +
                              "); expected float32 ('<f4') or float64 ('<f8')");
    const std::string descr = entry("descr", Value::Str, "a dtype string").text;
    std::size_t itemsize = 0;
    Array a;
    if (descr == "<f8" || descr == "f8" || descr == "=f8") {
        a.dtype = "float64";
        itemsize = 8;
    } else if (descr == "<f4" || descr == "f4" || descr == "=f4") {
        a.dtype = "float32";
        itemsize = 4;
    } else {
        fail(label, path, "expected dtype float32 ('<f4') or float64 ('<f8'), found '" + descr +
                              "' (convert with arr.astype(np.float64))");
    }
    const bool fortran = entry("fortran_order", Value::Bool, "True or False").flag;
    const auto& items = entry("shape", Value::Tuple, "a tuple").items;
    for (std::size_t ax = 0; ax < items.size(); ++ax) a.shape.push_back(dimension(items[ax], ax, label, path));
    if (a.shape.empty()) fail(label, path, "is a 0-dimensional scalar; expected a tensor");
    for (std::size_t ax = 0; ax < a.shape.size(); ++ax)
        if (a.shape[ax] == 0)
            fail(label, path, "has shape " + shape_str(a.shape) + " with an empty axis " + std::to_string(ax));
    try {
        require_sane_size("npy", label, a.shape);
    } catch (const Error& e) {
        fail(label, path, e.what());
    }

    std::size_t n = 1;
    for (auto s : a.shape) n *= s;
    const std::uintmax_t need = static_cast<std::uintmax_t>(n) * itemsize, have = file_size - offset;
    if (have < need)
        fail(label, path, "file is truncated: shape " + shape_str(a.shape) + " of " + a.dtype + " needs " +
                              std::to_string(need) + " bytes of data, found " + std::to_string(have));
    if (have > need)
        fail(label, path, "file has " + std::to_string(have - need) + " unexpected trailing bytes after the data");
    std::vector<char> bytes(static_cast<std::size_t>(need));
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(bytes.data(), static_cast<std::streamsize>(need));
    if (!in || static_cast<std::uintmax_t>(in.gcount()) != need)
        fail(label, path, "the data could not be read whole (the file changed while it was read?)");
    std::vector<double> values(n);
    if (itemsize == 8) {
        std::memcpy(values.data(), bytes.data(), static_cast<std::size_t>(need));
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            float f;
            std::memcpy(&f, bytes.data() + 4 * i, 4);
            values[i] = f;
        }
    }
    if (!fortran) {
        a.data = std::move(values);
        return a;
    }
    // Fortran order (the first axis varies fastest): reorder into C order.
    const std::size_t rank = a.shape.size();
    a.data.resize(n);
    std::vector<std::size_t> idx(rank, 0);
    for (std::size_t c = 0; c < n; ++c) {  // c walks C order; idx is its multi-index
        std::size_t f = 0, stride = 1;
        for (std::size_t ax = 0; ax < rank; ++ax) {
            f += idx[ax] * stride;
            stride *= a.shape[ax];
        }
        a.data[c] = values[f];
        for (std::size_t ax = rank; ax-- > 0;) {
            if (++idx[ax] < a.shape[ax]) break;
            idx[ax] = 0;
        }
    }
    return a;
}

// ---- writing -------------------------------------------------------------------

bool same_file(const std::string& a, const std::string& b) {
    const auto norm = [](const std::string& p) {
        std::error_code ec;
        const auto n = std::filesystem::weakly_canonical(std::filesystem::absolute(p, ec), ec);
        return ec ? p : n.string();
    };
    return norm(a) == norm(b);
}

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

extern "C" void remove_pending_and_reraise(int sig) {
    for (int i = 0; i < kMaxPending; ++i)
        if (g_pending_used[i]) ::unlink(g_pending[i]);
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

std::string folder_of(const std::string& path) {
    const auto parent = std::filesystem::path(path).parent_path().string();
    return parent.empty() ? "." : parent;
}

std::string npy_header(const char* descr, const std::vector<std::size_t>& shape) {
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

// A complete temporary copy of one output beside its target.
struct Staged {
    std::string target, tmp;
    int slot = -1;
};

void discard(std::vector<Staged>& staged) {
    for (auto& s : staged) {
        ::unlink(s.tmp.c_str());
        unregister_pending(s.slot);
    }
    staged.clear();
}

// Writes header + data to a fresh temporary file beside `target`: every write,
// the fsync and the close are checked. Returns the staged file; throws (having
// removed it) on any failure.
template <class T>
Staged stage(const std::string& target, const T* data, const std::vector<std::size_t>& shape) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    const std::string head = npy_header(sizeof(T) == 8 ? "<f8" : "<f4", shape);
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
    if (!write_fully(fd, head.data(), head.size())) failed("writing the header", errno);
    if (!write_fully(fd, reinterpret_cast<const char*>(data), n * sizeof(T))) failed("writing the data", errno);
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

void check_distinct(const std::vector<Output>& outputs) {
    for (std::size_t i = 0; i < outputs.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (same_file(outputs[i].path, outputs[j].path))
                throw Error("two outputs name the same file ('" + outputs[j].path + "' and '" + outputs[i].path +
                            "'); give each output its own path");
}

// Renames every staged file over its target (all are complete on disk), then
// makes the renames durable (best effort: not every file system syncs folders).
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

}  // namespace

void check_output(const std::string& path, const std::string& label) {
    const std::string who = label.empty() ? "output" : label;
    if (path.empty()) throw Error(who + ": the output path is empty");
    if (path.back() == '/') throw Error(who + ": '" + path + "' names a directory; give a file name");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) throw Error(who + ": '" + path + "' is a directory; give a file name");
        if (!S_ISREG(st.st_mode))
            throw Error(who + ": '" + path +
                        "' exists and is not a regular file (a FIFO, device or socket); refusing to replace it");
    }
    const std::string folder = folder_of(path);
    struct stat fs {};
    if (::stat(folder.c_str(), &fs) != 0) throw Error(who + ": cannot write '" + path + "': the folder '" + folder +
                                                      "' does not exist");
    if (!S_ISDIR(fs.st_mode)) throw Error(who + ": cannot write '" + path + "': '" + folder + "' is not a folder");
    if (::access(folder.c_str(), W_OK | X_OK) != 0)
        throw Error(who + ": cannot write '" + path + "': the folder '" + folder + "' is not writable");
}

void write_all(const std::vector<Output>& outputs) {
    check_distinct(outputs);
    for (const auto& o : outputs) check_output(o.path, "");
    std::vector<Staged> staged;
    try {
        for (const auto& o : outputs) {
            const HostTensor& t = *o.tensor;
            if (t.dtype == "float32") {
                const std::vector<float> f(t.data.begin(), t.data.end());
                staged.push_back(stage(o.path, f.data(), t.shape));
            } else {
                staged.push_back(stage(o.path, t.data.data(), t.shape));
            }
        }
    } catch (...) {
        discard(staged);
        throw;
    }
    replace_targets(staged);  // every output is complete on disk
}

namespace {

template <class T>
void write_one(const std::string& path, const T* data, const std::vector<std::size_t>& shape) {
    check_output(path, "");
    std::vector<Staged> staged{stage(path, data, shape)};
    replace_targets(staged);
}

}  // namespace

void write(const std::string& path, const double* data, const std::vector<std::size_t>& shape) {
    write_one(path, data, shape);
}
void write(const std::string& path, const float* data, const std::vector<std::size_t>& shape) {
    write_one(path, data, shape);
}

void install_signal_cleanup() {
    std::signal(SIGINT, remove_pending_and_reraise);
    std::signal(SIGTERM, remove_pending_and_reraise);
    std::signal(SIGHUP, remove_pending_and_reraise);
    // Past a file-size limit (ulimit -f) write() then fails with EFBIG, which is
    // reported, instead of the process being killed mid-write.
    std::signal(SIGXFSZ, SIG_IGN);
}

}  // namespace idattn::npy
