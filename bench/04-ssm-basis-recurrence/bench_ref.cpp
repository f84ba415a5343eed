// Benchmark (not a test): the four forms of the S4D states in the float64 CPU
// reference versus N, M = 64 states, C = 129 channels (R = 64 key features,
// d = 64 values and the constant channel of eq:4.channels), S4D-Inv with
// Delta = 0.01. Prints a table and writes CSV.
//
//   bench_04_ref [--out FILE.csv] [--reps R] [--quick]
//
// Recurrence (eq:P11): N M C complex multiply-adds, serial in N.
// Explicit (eq:4.3): the literal projection, N^2 M C / 2: run up to N = 1024
// only (N = 4096 would take minutes); the cost chapter 4's recurrence removes.
// FFT (eq:4.4): M + C forward and M C inverse FFTW transforms of length
// L >= 2N - 1, O(M C N log N): on a CPU slower than the recurrence (its
// constant is larger and the recurrence is already linear); it is the parallel
// form for a GPU. Chunked (eq:4.5, K = 64): the same work as the recurrence
// plus the chunk sums, the form the fast kernels parallelise.
#include <complex>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/common/bench_cli.hpp"
#include "ref/04-ssm-basis-recurrence/ssm.hpp"

int main(int argc, char** argv) {
    using namespace idattn::ref;
    namespace bench = idattn::bench;
    const bench::RefArgs args = bench::parse_ref_args(argc, argv, "bench_04_ref.csv", true);
    return bench::guarded_main(argv[0], [&] {
        const std::size_t M = 64, C = 129, chunk = 64;
        const double delta = 0.01;
        const std::size_t max_explicit = args.quick ? 256 : 1024;
        const auto s = s4d(S4dInit::Inv, M, delta);
        std::mt19937_64 rng(1);
        std::normal_distribution<double> nd;
        auto csv = bench::open_csv(args.out, "form,N,M,C,chunk,median_ms");
        std::printf("%-10s %6s %4s %4s %12s\n", "form", "N", "M", "C", "median ms");
        const std::vector<std::size_t> ns = args.quick ? std::vector<std::size_t>{256, 1024}
                                                       : std::vector<std::size_t>{256, 1024, 4096, 16384};
        for (std::size_t n : ns) {
            xt::xtensor<double, 2> z({n, C});
            for (auto& e : z) e = nd(rng);
            for (SsmForm form : {SsmForm::Recurrence, SsmForm::Explicit, SsmForm::Fft, SsmForm::Chunked}) {
                const std::string name = ssm_form_name(form);
                if (form == SsmForm::Explicit && n > max_explicit) {
                    std::printf("%-10s %6zu %4zu %4zu %12s\n", name.c_str(), n, M, C, "skipped");
                    continue;
                }
                const double med = bench::cpu_median_ms(
                    args.reps, [&] { return std::real(ssm_states<double>(form, s, z, chunk)(n - 1, 0, 0)); });
                std::printf("%-10s %6zu %4zu %4zu %12.2f\n", name.c_str(), n, M, C, med);
                std::fflush(stdout);
                csv << name << "," << n << "," << M << "," << C << "," << chunk << "," << med << "\n";
            }
        }
        std::printf("wrote %s\n", args.out.c_str());
        return 0;
    });
}
