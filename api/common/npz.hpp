// Strict reader and writer for NumPy .npz files: the zip archive of .npy
// members that np.savez writes (stored) and np.savez_compressed writes
// (deflated), read and written with libzip. Used for parameter files: a dict of
// named float arrays plus small integer arrays such as a 0-d `heads`.
//
// Reading checks before it allocates: the path must be a regular file; the zip
// is opened with libzip's consistency checks; every member must be NAME.npy at
// the archive's top level, unencrypted, stored or deflated, named once; its
// declared uncompressed size must be one the compressed bytes can expand to
// (deflate expands at most 1032-fold, stored members not at all) and all of
// them together must fit this machine's memory, so a zip bomb is refused
// before anything is inflated. Each member is then read (its CRC checked by
// libzip), must be exactly as long as declared, and is parsed by the .npy
// reader (api/common/npy_format.hpp): dtype, header, shape, size and Fortran
// order as in npy::read, but also 0-d arrays and int64/int32 arrays.
//
// Writing builds the archive in memory (members stored, not compressed, with a
// fixed timestamp: the same arrays give the same bytes) and writes it exactly
// as npy::write does: a unique temporary beside the target (mkstemp), every
// write, the fsync and the close checked, then renamed over the target. A
// failed write leaves the previous file as it was and no temporary behind
// (also on SIGINT/SIGTERM once npy::install_signal_cleanup() has been called).
//
// Every failure is an idattn::Error naming the file and the member.
#pragma once

#include <string>
#include <vector>

#include "api/common/host_tensor.hpp"

namespace idattn::npz {

struct Member {
    std::string name;   // the array's name in np.load's dict: the member without ".npy"
    HostTensor tensor;  // dtype "float32", "float64", "int64" or "int32"; values as double
};

// Reads every member, in archive order. float32/float64 arrays are widened to
// double (exact); int64/int32 arrays are converted to double exactly, and an
// integer beyond 2^53 in magnitude is refused. HostTensor::dtype is the dtype
// in the file. `label` names the file in messages, e.g. "--params (p.npz)".
std::vector<Member> read(const std::string& path, const std::string& label);

// Writes `members` (at least one) atomically, each as NAME.npy in its
// HostTensor::dtype ("float32", "float64", "int64" or "int32"; integer dtypes
// need integer values a double holds exactly). Empty or duplicate names, names
// with '/' or a NUL character, tensors whose data does not match their shape
// or that have an empty axis are refused before anything is written.
void write(const std::string& path, const std::vector<Member>& members);

// The bytes write() would put in `path` (the same checks, nothing written), for
// writing an .npz together with other outputs through npy::write_all.
std::string archive(const std::string& path, const std::vector<Member>& members);

}  // namespace idattn::npz
