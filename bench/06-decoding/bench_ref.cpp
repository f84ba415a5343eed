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
//     and in one run (K = N), small shape, each measured in a fresh process:
//     its peak resident size (VmHWM, reset just before) minus its resident
//     size before the prefill. Both hold the output y (N, D); the chunked one
//     holds one chunk's activations besides, the unchunked one every token's.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>


#include <xtensor/xview.hpp>

#include "bench/common/bench_cli.hpp"
#include "ref/06-decoding/decode.hpp"

namespace {

using namespace idattn::ref;

struct Shape {
    const char* name;
    std::size_t H, R, d, M, D;
};

// A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), -1 if absent.
long status_kib(const char* field) {
    long value = -1;
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        const std::size_t n = std::strlen(field);
        while (std::fgets(line, sizeof line, f))
            if (std::strncmp(line, field, n) == 0) value = std::atol(line + n);
        std::fclose(f);
    }
    return value;
}

// Resets the peak resident size (VmHWM) to the current one (Linux >= 4.0).
void reset_peak() {
    if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

const Shape kSmall{"small", 4, 16, 16, 16, 64};

// In a fresh process (this program run with --measure-prefill N K, so that no
// freed heap of the timing runs is reused): the peak resident growth in KiB of
// prefill(x of N tokens, chunk K), printed on stdout.
int measure_prefill(std::size_t N, std::size_t K) {
    const Shape s = kSmall;
    const LayerParams p = layer_init(LayerVariant::Full, {s.D, s.H, s.R, s.d, s.M, 1, false, true});
    LMat x = xt::zeros<double>({N, s.D});
    std::mt19937_64 rng(3);
    std::normal_distribution<double> nd;
    for (auto& e : x) e = nd(rng);
    const DecodeLayer dl = prepare_decode(LayerVariant::Full, p, LayerOptions{});
    DecodeState st = decode_start(dl);
    reset_peak();
    const long before = status_kib("VmRSS:");
    const LMat y = prefill(dl, st, x, K);
    std::printf("%ld\n", status_kib("VmHWM:") - before + (y(0, 0) > 1e300 ? 1 : 0));
    return 0;
}

long prefill_peak_kib(const char* self, std::size_t N, std::size_t K) {
    const std::string cmd = std::string(self) + " --measure-prefill " + std::to_string(N) + " " + std::to_string(K);
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) return -1;
    long kib = -1;
    if (std::fscanf(f, "%ld", &kib) != 1) kib = -1;
    pclose(f);
    return kib;
}

}  // namespace

int main(int argc, char** argv) {
    namespace bench = idattn::bench;
    if (argc == 4 && std::string(argv[1]) == "--measure-prefill")
        return measure_prefill(std::stoul(argv[2]), std::stoul(argv[3]));
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
        const std::vector<std::size_t> ns = args.quick ? std::vector<std::size_t>{1024, 4096}
                                                       : std::vector<std::size_t>{1024, 4096, 16384, 65536};
        for (std::size_t N : ns)
            for (std::size_t K : {std::size_t{64}, N}) {
                const double mib = double(prefill_peak_kib(argv[0], N, K)) / 1024.0;
                std::printf("%-8zu %8zu %14.1f\n", N, K, mib);
                std::fflush(stdout);
                csv << "prefill_memory,small,full," << N << "," << K << "," << mib << ",MiB\n";
            }
        std::printf("wrote %s\n", args.out.c_str());
        return 0;
    });
}
