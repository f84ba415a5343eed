// Minimal, strict reader and writer for NumPy .npy files (format versions 1-3),
// float32 and float64, little-endian; C order, and Fortran order converted on
// read (numpy writes `a.T` that way).
//
// Written here rather than using xt::load_npy so that every failure (missing
// file, a directory or FIFO, bad magic, wrong dtype, a header that is not the
// Python literal numpy writes, truncated data) becomes an idattn::Error naming
// the file and what was expected, and so that the heavy xnpy header stays out
// of the CLI's translation units.
//
// Reading checks before it reads: the path must be a regular file; the header
// is parsed as the dict literal it is (a small tokenizer: both quote styles,
// negative, non-integer and huge dimensions refused); the declared data size is
// compared with the file's size before the data is read.
//
// Writing is atomic and checked: each output goes to a unique temporary file
// beside its target (mkstemp), every write, the fsync and the close are
// checked, and only then is it renamed over the target. A failed write leaves
// the previous file as it was and no temporary behind (also on SIGINT/SIGTERM
// once install_signal_cleanup() has been called). write_all() writes several
// outputs all or none: every temporary is complete before the first rename.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "api/common/host_tensor.hpp"

namespace idattn::npy {

// dtype is "float32" or "float64" as found in the file; values are widened
// to double (exact for float32).
using Array = HostTensor;

// `label` names the array in messages, e.g. "--q (q.npy)".
Array read(const std::string& path, const std::string& label);

// Throws an idattn::Error naming `label` unless `path` can be written as an
// output: not empty, not an existing directory, FIFO, device or socket (those
// are never replaced), in a folder that exists and is writable. Writes nothing.
void check_output(const std::string& path, const std::string& label);

// Whether two output paths name the same file ("o.npy" and "./o.npy"), also
// when it does not exist yet.
bool same_file(const std::string& a, const std::string& b);

// One output of write_all: values in `data` (row-major) written as `dtype`
// ("float32" or "float64").
struct Output {
    std::string path;
    const HostTensor* tensor = nullptr;
    const std::string* bytes = nullptr;  // instead of tensor: a whole file prepared elsewhere (npz::archive)
};

// Writes every output, all or none (see the top of this file). Two outputs
// naming the same file are an error, raised before anything is written.
void write_all(const std::vector<Output>& outputs);

// One output, atomically.
void write(const std::string& path, const double* data, const std::vector<std::size_t>& shape);
void write(const std::string& path, const float* data, const std::vector<std::size_t>& shape);

// Installs SIGINT/SIGTERM/SIGHUP handlers that remove the temporary files of
// writes in progress and then end the process as the signal would have, and
// ignores SIGXFSZ so that a file-size limit is a reported write error. For
// programs (the CLI); a host like Python keeps its own handlers.
void install_signal_cleanup();

}  // namespace idattn::npy
