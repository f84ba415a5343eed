#include "api/common/npy.hpp"

#include <csignal>
#include <filesystem>
#include <string_view>

#include <sys/stat.h>
#include <unistd.h>

#include "api/common/npy_format.hpp"
#include "core/error.hpp"

// The format itself (header parsing, dtypes, encoding) and the atomic output
// files are in api/common/npy_format.cpp, shared with the .npz reader/writer.

namespace idattn::npy {

namespace fmt = format;

Array read(const std::string& path, const std::string& label) {
    const fmt::InputFile file(path, label, ".npy file");
    const fmt::Layout layout = fmt::read_layout(
        file.size(), [&](std::size_t offset, std::size_t n) { return file.read_at(offset, n, "the header"); },
        label, path, fmt::Accept{});
    const std::string data = file.read_at(layout.data_offset, layout.data_bytes, "the data");
    return fmt::decode(layout, data.data(), label, path);
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

void check_distinct(const std::vector<Output>& outputs) {
    for (std::size_t i = 0; i < outputs.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (same_file(outputs[i].path, outputs[j].path))
                throw Error("two outputs name the same file ('" + outputs[j].path + "' and '" + outputs[i].path +
                            "'); give each output its own path");
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
    const std::string folder = fmt::folder_of(path);
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
    std::vector<fmt::Staged> staged;
    try {
        for (const auto& o : outputs) {
            if (o.bytes) {  // a file prepared elsewhere, e.g. an .npz archive
                staged.push_back(fmt::stage(o.path, {*o.bytes}));
                continue;
            }
            const HostTensor& t = *o.tensor;
            const char* descr = t.dtype == "float32" ? "<f4" : "<f8";  // .npy outputs are floats
            const std::string head = fmt::header(descr, t.shape);
            const std::string data = fmt::encode(t, descr, "cannot write '" + o.path + "'");
            staged.push_back(fmt::stage(o.path, {head, data}));
        }
    } catch (...) {
        fmt::discard(staged);
        throw;
    }
    fmt::replace_targets(staged);  // every output is complete on disk
}

namespace {

template <class T>
void write_one(const std::string& path, const T* data, const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    const std::string head = fmt::header(sizeof(T) == 8 ? "<f8" : "<f4", shape);
    fmt::write_atomically(path, {head, {reinterpret_cast<const char*>(data), n * sizeof(T)}});
}

}  // namespace

void write(const std::string& path, const double* data, const std::vector<std::size_t>& shape) {
    write_one(path, data, shape);
}
void write(const std::string& path, const float* data, const std::vector<std::size_t>& shape) {
    write_one(path, data, shape);
}

void install_signal_cleanup() {
    std::signal(SIGINT, fmt::remove_pending_and_reraise);
    std::signal(SIGTERM, fmt::remove_pending_and_reraise);
    std::signal(SIGHUP, fmt::remove_pending_and_reraise);
    // Past a file-size limit (ulimit -f) write() then fails with EFBIG, which is
    // reported, instead of the process being killed mid-write.
    std::signal(SIGXFSZ, SIG_IGN);
}

}  // namespace idattn::npy
