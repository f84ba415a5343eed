// The api layer: one entry per derivation step, shared by the CLI (`idattn`)
// and the Python module. It validates the inputs once (naming the tensor),
// converts dtypes, picks the backend, and reports what it did, so that both
// front ends behave identically.
#pragma once

#include <string>
#include <vector>

#include "api/common/host_tensor.hpp"

namespace idattn::api {

// Ref: the float64 reference. Naive32: the same reference formula evaluated
// plainly in float32, the baseline of the tolerance rule. Fast: the CUDA kernel.
enum class Impl { Ref, Naive32, Fast };

// "ref", "naive32" or "fast"; anything else throws idattn::Error listing the choices.
Impl parse_impl(const std::string& name);

struct Run {
    HostTensor out;
    std::string backend;             // "ref (float64, CPU)", "naive32 (float32, CPU)", "fast (float32, <device>)"
    std::vector<std::string> notes;  // dtype promotions, fallbacks: printed by the CLI
};

// What `idattn info` and idattn.device_info() report: whether this build has
// the CUDA kernels, and the device found (or why none is usable).
struct DeviceInfo {
    bool built_with_cuda = false;
    bool available = false;
    std::string detail;
};
DeviceInfo device_info();

// Decides the backend. When Fast is requested without a usable device it
// returns Ref and appends a note saying why (the fallback the CLI prints).
Impl resolve_impl(Impl requested, std::vector<std::string>& notes);

// The one place a backend is chosen: Fast with a non-empty `fast_unsupported`
// (the kernel's own reason, e.g. fast::softmax_unsupported(d)) runs the float64
// reference with a note saying why; otherwise as resolve_impl.
Impl pick_backend(Impl requested, const std::string& fast_unsupported, std::vector<std::string>& notes);

// The label of Run::backend for a resolved impl: "ref (float64, CPU)",
// "naive32 (the reference formula in float32, CPU)" or "fast (float32, <device>)".
std::string backend_name(Impl impl);

// Notes for the dtype handling: references compute in float64 whatever the
// input dtype; the fast backend computes in float32. For the float32 backends
// (naive32, fast) an input beyond float32's range is an error naming it.
void note_dtypes(Impl impl, const std::vector<std::pair<std::string, const HostTensor*>>& inputs,
                 std::vector<std::string>& notes);

// Requires every element of t to be finite (naming `name`), and rank in `ranks`.
void require_tensor(const std::string& what, const std::string& name, const HostTensor& t,
                    std::initializer_list<std::size_t> ranks);

// Tensors of rank 2 (one head) or 4 (B, H, ., .) that must agree in rank and,
// for rank 4, in the (B, H) axes; the rest is checked per head by the reference.
void check_batched(const std::string& what, const std::vector<std::pair<std::string, const HostTensor*>>& ts);

// Returns `run` when every element of run.out is finite. The inputs passed
// their finiteness checks, so a non-finite output means an intermediate
// overflowed (logits q.k/sqrt(d) of 1e300, exp features at huge norms): that
// is an error naming the first bad output index and the largest input
// magnitude, never a NaN/Inf file written with exit 0. One behaviour for every
// step.
Run require_finite_output(const std::string& what, Run run,
                          const std::vector<std::pair<std::string, const HostTensor*>>& inputs);

// The last two axes of a shape (one head's matrix).
std::vector<std::size_t> last2(const std::vector<std::size_t>& shape);

}  // namespace idattn::api
