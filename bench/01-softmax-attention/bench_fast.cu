// Benchmark of the Chapter 1 fast kernel, softmax_attention_device: float32
// forward, B x H heads of N queries and N keys, d in {64, 128}, causal and not.
//
// Protocol (bench/common/gpu_bench.cuh, shared by every bench_fast): inputs are
// random, several independent (q, k, v, o) buffer sets are allocated so that
// together they exceed the L2 cache a few times, and the repetitions rotate
// over them (a repetition never finds its inputs in L2 from the previous one).
// Warm-up launches first, then each repetition is timed on its own with a pair
// of CUDA events; the median is reported (and the minimum). The device's
// measured copy bandwidth and FMA rate are printed first, as in every bench_fast.
// FLOPs: 4 N^2 d per head (two N x N x d products), half of that when causal.
//
//   bench_fast [--out FILE] [--reps R] [--warmup W] [--batch B] [--heads H]
//              [--n 512,1024,...] [--d 64,128] [--dump DIR]
//
// --dump DIR writes q, k, v (B=1, H=4, N_q=N=300, d=100) and the kernel's
// outputs o_full, o_causal as .npy files for sdpa_compare.py's accuracy check.
// With no usable device it prints why and exits 0 with a "skipped" line.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/common/gpu_bench.cuh"
#include "fast/01-softmax-attention/softmax_attention.hpp"

namespace {

namespace bench = idattn::bench;
using idattn::fast::DeviceBuffer;

struct Options {
    std::string out = "bench/results/01-softmax-attention-fast.csv";
    int reps = 30;
    int warmup = 3;
    int batch = 1;
    int heads = 32;
    std::vector<int> ns = {512, 1024, 2048, 4096, 8192};
    std::vector<int> ds = {64, 128};
    std::string dump_dir;
};

Options parse(int argc, char** argv) {
    Options o;
    bench::parse_flags(argc, argv,
                       "[--out FILE] [--reps R] [--warmup W] [--batch B] [--heads H] [--n 512,1024] [--d 64,128] "
                       "[--dump DIR]",
                       {bench::string_flag("--out", o.out), bench::int_flag("--reps", o.reps),
                        bench::int_flag("--warmup", o.warmup), bench::int_flag("--batch", o.batch),
                        bench::int_flag("--heads", o.heads), bench::int_list_flag("--n", o.ns),
                        bench::int_list_flag("--d", o.ds), bench::string_flag("--dump", o.dump_dir)});
    if (o.reps < 1 || o.warmup < 0 || o.batch < 1 || o.heads < 1)
        throw std::runtime_error("--reps, --batch and --heads must be >= 1, --warmup >= 0");
    return o;
}

// Minimal .npy (version 1.0, little-endian float32, C order) writer.
void write_npy(const std::string& path, const std::vector<float>& data, const std::vector<std::size_t>& shape) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    for (std::size_t i = 0; i < shape.size(); ++i) dict += std::to_string(shape[i]) + (i + 1 < shape.size() ? ", " : "");
    if (shape.size() == 1) dict += ",";
    dict += "), }";
    const std::size_t unpadded = 10 + dict.size() + 1;  // magic(6) + version(2) + len(2) + dict + '\n'
    dict.append((64 - unpadded % 64) % 64, ' ');
    dict += '\n';
    std::ofstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + path);
    f.write("\x93NUMPY\x01\x00", 8);
    const auto len = static_cast<std::uint16_t>(dict.size());
    const char lenb[2] = {static_cast<char>(len & 0xFF), static_cast<char>(len >> 8)};
    f.write(lenb, 2);
    f.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
}

void dump_example(const std::string& dir) {
    const std::size_t B = 1, H = 4, N = 300, D = 100, count = B * H * N * D;
    std::filesystem::create_directories(dir);
    DeviceBuffer<float> q(count), k(count), v(count), o(count);
    bench::fill_uniform(q, 11);
    bench::fill_uniform(k, 12);
    bench::fill_uniform(v, 13);
    std::vector<float> host(count);
    const std::vector<std::size_t> shape = {B, H, N, D};
    for (auto [name, buf] : {std::pair<const char*, DeviceBuffer<float>*>{"q", &q}, {"k", &k}, {"v", &v}}) {
        buf->copy_to_host(host.data());
        write_npy(dir + "/" + name + ".npy", host, shape);
    }
    for (int causal = 0; causal < 2; ++causal) {
        o.fill_bytes(0xFF);
        idattn::fast::softmax_attention_device(q.data(), k.data(), v.data(), o.data(), B * H, N, N, D, causal != 0);
        IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
        o.copy_to_host(host.data());
        write_npy(dir + (causal ? "/o_causal.npy" : "/o_full.npy"), host, shape);
    }
    std::printf("wrote q, k, v, o_full, o_causal (shape (1, 4, 300, 100)) to %s\n", dir.c_str());
}

struct Result {
    int n, d;
    bool causal;
    double ms_median, ms_min, tflops;
    int sets;
};

Result time_case(const Options& opt, int n, int d, bool causal) {
    const std::size_t count = static_cast<std::size_t>(opt.batch) * opt.heads * n * d;
    auto bufs = bench::make_qkvo_sets(count, count, -1.f, 1.f);
    const int sets = static_cast<int>(bufs.size());
    const std::int64_t bh = static_cast<std::int64_t>(opt.batch) * opt.heads;
    const bench::Stat s = bench::time_cuda(opt.reps, opt.warmup, sets, [&](int set) {
        bench::QkvoSet& b = bufs[static_cast<std::size_t>(set)];
        idattn::fast::softmax_attention_device(b.q.data(), b.k.data(), b.v.data(), b.o.data(), bh, n, n, d, causal);
    });
    const double flops = 4.0 * n * static_cast<double>(n) * d * static_cast<double>(bh) * (causal ? 0.5 : 1.0);
    return {n, d, causal, s.median_ms, s.min_ms, flops / (s.median_ms * 1e-3) / 1e12, sets};
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("bench_fast", [&] {
        const Options opt = parse(argc, argv);
        const auto peaks = bench::begin_gpu_bench("softmax attention forward (fast, float32)", opt.reps, opt.warmup);
        if (!peaks) return 0;

        if (!opt.dump_dir.empty()) dump_example(opt.dump_dir);

        std::printf("B = %d, H = %d, N_q = N, median of %d reps after %d warm-up, inputs rotated over buffer sets\n",
                    opt.batch, opt.heads, opt.reps, opt.warmup);
        std::printf("%6s %4s %6s %10s %10s %9s %5s\n", "N", "d", "causal", "ms(med)", "ms(min)", "TFLOP/s", "sets");
        std::vector<Result> results;
        for (int d : opt.ds)
            for (int causal = 0; causal < 2; ++causal)
                for (int n : opt.ns) {
                    const Result r = time_case(opt, n, d, causal != 0);
                    std::printf("%6d %4d %6s %10.4f %10.4f %9.2f %5d\n", r.n, r.d, r.causal ? "yes" : "no",
                                r.ms_median, r.ms_min, r.tflops, r.sets);
                    std::fflush(stdout);
                    results.push_back(r);
                }

        auto f = bench::open_csv(opt.out, "impl,device,B,H,N,d,causal,ms_median,ms_min,tflops,reps");
        const std::string dev = bench::csv_field(peaks->device);
        for (const auto& r : results)
            f << "fast," << dev << ',' << opt.batch << ',' << opt.heads << ',' << r.n << ',' << r.d << ','
              << (r.causal ? 1 : 0) << ',' << r.ms_median << ',' << r.ms_min << ',' << r.tflops << ',' << opt.reps
              << '\n';
        std::printf("wrote %s\n", opt.out.c_str());
        return 0;
    });
}
