// Benchmark (not a test): decoding with the float64 CPU reference. Prints two
// tables and writes CSV.
//
//   bench_06_ref [--out FILE.csv] [--reps R] [--quick]
//
// (1) Time of one decode step (eq:6.step) versus the prefix length L, batch 1,
//     for the full variant with the explicit readout C X_t (O(M^2 (R + d)) per
//     head), with the folded readout (O(M (R + d) + M^2), eq:6.cost), and for
//     softmax over a KV cache of L tokens (eq:6.cache), at a small shape
//     (H = 4, R = d = M = 16, D = 64) and the paper's (H = 32, R = d = M = 64,
//     D = 2048). The state at position L is built directly (random X, random
//     cache): a step's work does not depend on the values. The repetitions are
//     consecutive steps (tokens L, L + 1, ...). The reference's softmax step
//     also copies its cache (appending a row, taking a head's columns): O(L)
//     like the attention itself, so the slope is right and the constant is not
//     a tuned kernel's.
// (2) Peak memory of a prefill of N tokens in chunks of K = 64 (eq:6.prefill)
//     and in one run (K = N), small shape, each measured in a child process
//     (the growth of its peak resident size over its size before the prefill).
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xtensor/xview.hpp>

#include "bench/common/bench_cli.hpp"
#include "ref/06-decoding/decode.hpp"

namespace {

using namespace idattn::ref;

struct Shape {
    const char* name;
    std::size_t H, R, d, M, D;
};

long resident_kib() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// The peak resident growth (KiB) of prefill(x of N tokens, chunk K), measured in a child.
long prefill_peak_kib(const LayerParams& p, std::size_t N, std::size_t K, std::size_t D) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        LMat x = xt::zeros<double>({N, D});
        std::mt19937_64 rng(3);
        std::normal_distribution<double> nd;
        for (auto& e : x) e = nd(rng);
        const DecodeLayer dl = prepare_decode(LayerVariant::Full, p, LayerOptions{});
        DecodeState st = decode_start(dl);
        const long before = resident_kib();
        const LMat y = prefill(dl, st, x, K);
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        const long grown = ru.ru_maxrss - before + (y(0, 0) > 1e300 ? 1 : 0);
        if (write(fds[1], &grown, sizeof grown) != sizeof grown) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    long grown = -1;
    if (read(fds[0], &grown, sizeof grown) != sizeof grown) grown = -1;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return grown;
}

}  // namespace

int main(int argc, char** argv) {
    namespace bench = idattn::bench;
    const bench::RefArgs args = bench::parse_ref_args(argc, argv, "bench_06_ref.csv", true);
    return bench::guarded_main(argv[0], [&] {
        auto csv = bench::open_csv(args.out, "table,shape,method,L_or_N,chunk,value,unit");
        std::mt19937_64 rng(1);
        std::normal_distribution<double> nd;
        std::printf("(1) one decode step, batch 1\n%-6s %-22s %7s %12s\n", "shape", "method", "L", "median ms");
        const std::vector<std::size_t> lengths = args.quick ? std::vector<std::size_t>{512, 4096}
                                                            : std::vector<std::size_t>{512, 2048, 8192, 16384};
        for (const Shape s : {Shape{"small", 4, 16, 16, 16, 64}, Shape{"paper", 32, 64, 64, 64, 2048}}) {
            const LayerParams pf = layer_init(LayerVariant::Full, {s.D, s.H, s.R, s.d, s.M, 1, false, true});
            const LayerParams ps = layer_init(LayerVariant::Softmax, {s.D, s.H, s.R, s.d, 0, 1, false, true});
            xt::xtensor<double, 1> x = xt::zeros<double>({s.D});
            for (auto& e : x) e = nd(rng);
            for (std::size_t L : lengths) {
                auto report = [&](const std::string& method, double ms) {
                    std::printf("%-6s %-22s %7zu %12.3f\n", s.name, method.c_str(), L, ms);
                    std::fflush(stdout);
                    csv << "decode," << s.name << "," << method << "," << L << ",1," << ms << ",ms\n";
                };
                for (LayerForm form : {LayerForm::Recurrence, LayerForm::Folded}) {
                    LayerOptions opt;
                    opt.form = form;
                    const DecodeLayer dl = prepare_decode(LayerVariant::Full, pf, opt);
                    DecodeState st = decode_start(dl);
                    for (auto& X : st.X)
                        for (auto& c : X) c = {0.01 * nd(rng), 0.01 * nd(rng)};
                    st.position = L;
                    report(std::string("full, ") + (form == LayerForm::Folded ? "folded G" : "explicit C"),
                           bench::cpu_median_ms(args.reps, [&] { return decode_step(dl, st, x)(0); }));
                }
                const DecodeLayer ds = prepare_decode(LayerVariant::Softmax, ps, LayerOptions{});
                DecodeState st = decode_start(ds);
                st.k_cache = xt::zeros<double>({L, s.H * s.R});
                st.v_cache = xt::zeros<double>({L, s.H * s.d});
                for (auto& e : st.k_cache) e = nd(rng);
                for (auto& e : st.v_cache) e = nd(rng);
                st.position = L;
                report("softmax, KV cache", bench::cpu_median_ms(args.reps, [&] { return decode_step(ds, st, x)(0); }));
            }
        }
        std::printf("\n(2) prefill peak memory growth, small shape\n%-8s %8s %14s\n", "N", "chunk", "peak MiB");
        const Shape s{"small", 4, 16, 16, 16, 64};
        const LayerParams pf = layer_init(LayerVariant::Full, {s.D, s.H, s.R, s.d, s.M, 1, false, true});
        const std::vector<std::size_t> ns = args.quick ? std::vector<std::size_t>{1024, 4096}
                                                       : std::vector<std::size_t>{1024, 4096, 16384, 65536};
        for (std::size_t N : ns)
            for (std::size_t K : {std::size_t{64}, N}) {
                const double mib = double(prefill_peak_kib(pf, N, K, s.D)) / 1024.0;
                std::printf("%-8zu %8zu %14.1f\n", N, K, mib);
                std::fflush(stdout);
                csv << "prefill_memory,small,full," << N << "," << K << "," << mib << ",MiB\n";
            }
        std::printf("wrote %s\n", args.out.c_str());
        return 0;
    });
}
