// Internals shared by the .npy reader/writer (api/common/npy.cpp) and the .npz
// reader/writer (api/common/npz.cpp): the .npy format on byte buffers, input
// files opened safely, and the atomic, checked output files with their signal
// cleanup. Not an API of its own: the front ends use npy.hpp and npz.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "api/common/host_tensor.hpp"

namespace idattn::npy::format {

// "cannot read <label> from '<path>': <why>", thrown as an idattn::Error.
[[noreturn]] void fail(const std::string& label, const std::string& path, const std::string& why);

// ---- reading ---------------------------------------------------------------------

// What a reader takes besides float32/float64 arrays of rank >= 1 with no empty axis.
struct Accept {
    bool integers = false;  // int64 ('<i8') and int32 ('<i4'), converted exactly (|value| <= 2^53)
    bool scalar = false;    // 0-dimensional arrays (shape ())
};

// What a .npy's preamble and header declare, checked against its size.
struct Layout {
    HostTensor meta;              // dtype and shape; data empty
    std::size_t data_offset = 0;  // where the data begins
    std::size_t itemsize = 0;
    bool integer = false;         // int64/int32 rather than a float
    bool fortran = false;
    std::size_t elements = 0;
    std::size_t data_bytes = 0;   // elements * itemsize, equal to size - data_offset
};

// Bytes [offset, offset + n) of the .npy being read; called only for ranges
// inside its `size` bytes. Throws (via fail) if they cannot be had.
using ReadAt = std::function<std::string(std::size_t offset, std::size_t n)>;

// Parses the magic string, version, header dict and shape of a .npy of `size`
// bytes, and checks the declared data size against the bytes there are,
// before any data is read. Every failure names `label` and `path`.
Layout read_layout(std::uintmax_t size, const ReadAt& read_at, const std::string& label, const std::string& path,
                   Accept accept);

// The values of `data` (layout.data_bytes bytes) widened to double in C order
// (Fortran order reordered), with meta's dtype and shape.
HostTensor decode(const Layout& layout, const char* data, const std::string& label, const std::string& path);

// A whole .npy held in memory (an .npz member): read_layout + decode.
HostTensor parse(const std::string& bytes, const std::string& label, const std::string& path, Accept accept);

// An input file opened for reading: refused by name unless it is a regular
// file (a FIFO is opened without blocking, and never read). `kind` is what was
// expected instead, e.g. ".npy file". Closes the descriptor unless released.
class InputFile {
public:
    InputFile(const std::string& path, const std::string& label, const std::string& kind);
    ~InputFile();
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    std::uintmax_t size() const { return size_; }
    // Exactly n bytes at offset, or fail(): `what` names them ("the data").
    std::string read_at(std::size_t offset, std::size_t n, const std::string& what) const;
    int fd() const { return fd_; }
    // The descriptor was handed over (to libzip), which closes it from now on.
    void release();

private:
    int fd_ = -1;
    std::uintmax_t size_ = 0;
    std::string path_, label_;
};

// ---- writing ---------------------------------------------------------------------

// The .npy descriptor of a HostTensor dtype: "float64" -> "<f8", "float32" ->
// "<f4", "int64" -> "<i8", "int32" -> "<i4"; anything else is an Error naming `label`.
const char* descr_of(const std::string& dtype, const std::string& label);

// The preamble and header of a C-order .npy (version 1.0, data 64-byte aligned).
std::string header(const char* descr, const std::vector<std::size_t>& shape);

// The data bytes of `t` as `descr` (one of descr_of's). Refuses, naming
// `label`, a tensor whose data does not match its shape, a finite value beyond
// float32's range written as float32, and for the integer dtypes a value that
// is not an integer a double and the dtype both hold (|v| <= 2^53, 2^31 - 1).
std::string encode(const HostTensor& t, const char* descr, const std::string& label);

// header + encode in t.dtype: a whole .npy file.
std::string serialise(const HostTensor& t, const std::string& label);

// The folder a path's file is in ("." for a bare name).
std::string folder_of(const std::string& path);

// A complete temporary copy of one output beside its target.
struct Staged {
    std::string target, tmp;
    int slot = -1;  // in the signal handler's table
};

// Writes `pieces` one after the other to a fresh temporary file beside
// `target` (mkstemp): every write, the fsync and the close are checked.
// Returns the staged file; throws (having removed it) on any failure.
Staged stage(const std::string& target, const std::vector<std::string_view>& pieces);

// Removes the staged temporaries (after a failure).
void discard(std::vector<Staged>& staged);

// Renames every staged file over its target (all are complete on disk), then
// makes the renames durable (best effort: not every file system syncs folders).
void replace_targets(std::vector<Staged>& staged);

// check_output, stage, replace_targets: one file written atomically.
void write_atomically(const std::string& path, const std::vector<std::string_view>& pieces);

// The signal handler of npy::install_signal_cleanup: removes the temporaries
// of writes in progress, then ends the process as the signal would have.
extern "C" void remove_pending_and_reraise(int sig);

}  // namespace idattn::npy::format
