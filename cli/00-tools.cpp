// Subcommands that belong to no chapter: `info` and `compare`.
#include <iostream>

#include "api/common/compare.hpp"
#include "api/common/npy.hpp"
#include "cli/cli.hpp"
#include "api/common/dispatch.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::cli {
namespace {

int run_info(Args& a) {
    a.finish();
    const auto st = api::device_info();
    std::cout << "idattn: built with CUDA kernels: " << (st.built_with_cuda ? "yes" : "no") << "\n"
              << "CUDA device: " << (st.available ? "available, " : "unavailable, ") << st.detail << "\n";
    return 0;
}

int run_compare(Args& a) {
    const HostTensor ref = a.tensor("--reference");
    const HostTensor cand = a.tensor("--candidate");
    const std::string base_path = a.optional("--baseline", "");
    const std::string tol_s = a.optional("--tol", "");
    a.finish();
    if (!base_path.empty() && !tol_s.empty())
        throw Error("compare: give either --baseline (the project's rule) or --tol (a fixed tolerance), not both");
    Comparison c;
    if (!base_path.empty()) {
        const HostTensor base = npy::read(base_path, "--baseline (" + base_path + ")");
        check_comparison(ref.shape, ref.data.data(), cand.shape, &base.shape);
        c = compare_to_reference(ref.data.data(), cand.data.data(), base.data.data(), ref.shape);
    } else if (!tol_s.empty()) {
        const double tol = parse_tolerance(tol_s);
        check_comparison(ref.shape, ref.data.data(), cand.shape, nullptr);
        c = compare_with_tolerance(ref.data.data(), cand.data.data(), ref.shape, tol);
    } else {
        throw Error("compare: give --baseline FILE (the naive float32 output: the project's rule "
                    "err <= 2 err(naive32) + floor) or --tol T (a fixed relative RMS tolerance)");
    }
    std::cout << c.report() << "\n";
    return c.pass ? 0 : 1;
}

const Registrar info{{"info", "00-tools", "print the build's CUDA support and the device found", {}, "idattn info",
                      run_info}};
const Registrar compare{{"compare", "00-tools",
                         "compare a candidate output with a reference by the project's tolerance rule",
                         {{"--reference FILE.npy", "float64 reference output (from --impl ref) (required)"},
                          {"--candidate FILE.npy", "your kernel's output, same shape (required)"},
                          {"--baseline FILE.npy", "naive float32 output (from --impl naive32): pass iff "
                                                  "err <= 2 err(naive32) + 4 float32 ulps"},
                          {"--tol T", "instead of --baseline: pass iff relative RMS error <= T"}},
                         "idattn compare --reference o_ref.npy --baseline o_naive32.npy --candidate o_mine.npy",
                         run_compare}};

}  // namespace
}  // namespace idattn::cli
