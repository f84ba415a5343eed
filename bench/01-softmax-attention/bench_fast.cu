// Benchmark of the Chapter 1 fast kernel, softmax_attention_device: float32
// forward, B x H heads of N queries and N keys, d in {64, 128}, causal and not.
//
// Protocol: inputs are random, several independent (q, k, v, o) buffer sets are
// allocated so that together they exceed the L2 cache a few times, and the
// repetitions rotate over them (a repetition never finds its inputs in L2 from
// the previous one). Warm-up launches first, then each repetition is timed on
// its own with a pair of CUDA events; the median is reported (and the minimum).
// FLOPs: 4 N^2 d per head (two N x N x d products), half of that when causal.
//
//   bench_fast [--out FILE] [--reps R] [--warmup W] [--batch B] [--heads H]
//              [--n 512,1024,...] [--d 64,128] [--dump DIR]
//
// --dump DIR writes q, k, v (B=1, H=4, N_q=N=300, d=100) and the kernel's
// outputs o_full, o_causal as .npy files for sdpa_compare.py's accuracy check.
// With no usable device it prints why and exits 0 with a "skipped" line.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "fast/01-softmax-attention/softmax_attention.hpp"
#include "fast/common/cuda_check.cuh"
#include "fast/common/device.hpp"

namespace {

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

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> r;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) r.push_back(std::stoi(item));
    return r;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
            return argv[++i];
        };
        if (a == "--out") o.out = next();
        else if (a == "--reps") o.reps = std::stoi(next());
        else if (a == "--warmup") o.warmup = std::stoi(next());
        else if (a == "--batch") o.batch = std::stoi(next());
        else if (a == "--heads") o.heads = std::stoi(next());
        else if (a == "--n") o.ns = parse_list(next());
        else if (a == "--d") o.ds = parse_list(next());
        else if (a == "--dump") o.dump_dir = next();
        else if (a == "--help" || a == "-h") {
            std::printf("usage: bench_fast [--out FILE] [--reps R] [--warmup W] [--batch B] [--heads H] "
                        "[--n 512,1024] [--d 64,128] [--dump DIR]\n");
            std::exit(0);
        } else
            throw std::runtime_error("unknown argument " + a + " (try --help)");
    }
    if (o.reps < 1 || o.warmup < 0 || o.batch < 1 || o.heads < 1)
        throw std::runtime_error("--reps, --batch and --heads must be >= 1, --warmup >= 0");
    return o;
}

// Uniform values in [-1, 1) from a hash of the index: no host copies of
// hundreds of megabytes.
__global__ void fill_uniform(float* __restrict__ p, std::size_t count, std::uint32_t seed) {
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
        std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9E3779B1u ^ static_cast<std::uint32_t>(i >> 32) ^ seed;
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        p[i] = static_cast<float>(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

void fill(DeviceBuffer<float>& b, std::uint32_t seed) {
    fill_uniform<<<1024, 256>>>(b.data(), b.size(), seed);
    IDATTN_CUDA_CHECK(cudaGetLastError());
}

struct BufferSet {
    DeviceBuffer<float> q, k, v, o;
};

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
    BufferSet s{DeviceBuffer<float>(count), DeviceBuffer<float>(count), DeviceBuffer<float>(count),
                DeviceBuffer<float>(count)};
    fill(s.q, 11);
    fill(s.k, 12);
    fill(s.v, 13);
    std::vector<float> host(count);
    const std::vector<std::size_t> shape = {B, H, N, D};
    for (auto [name, buf] : {std::pair<const char*, DeviceBuffer<float>*>{"q", &s.q}, {"k", &s.k}, {"v", &s.v}}) {
        buf->copy_to_host(host.data());
        write_npy(dir + "/" + name + ".npy", host, shape);
    }
    for (int causal = 0; causal < 2; ++causal) {
        s.o.fill_bytes(0xFF);
        idattn::fast::softmax_attention_device(s.q.data(), s.k.data(), s.v.data(), s.o.data(), B * H, N, N, D,
                                               causal != 0);
        IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
        s.o.copy_to_host(host.data());
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

Result time_case(const Options& opt, int n, int d, bool causal, std::size_t l2_bytes) {
    const std::size_t count = static_cast<std::size_t>(opt.batch) * opt.heads * n * d;
    const std::size_t set_bytes = 4 * count * sizeof(float);
    // Enough sets to cover 3x the L2 cache, at least 2, at most 8, and within
    // half of the free memory.
    std::size_t free_b = 0, total_b = 0;
    IDATTN_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    int sets = static_cast<int>(std::min<std::size_t>(8, std::max<std::size_t>(2, (3 * l2_bytes + set_bytes - 1) / set_bytes)));
    while (sets > 1 && sets * set_bytes > free_b / 2) --sets;
    std::vector<BufferSet> bufs;
    for (int s = 0; s < sets; ++s) {
        bufs.push_back({DeviceBuffer<float>(count), DeviceBuffer<float>(count), DeviceBuffer<float>(count),
                        DeviceBuffer<float>(count)});
        fill(bufs.back().q, 100 * s + 1);
        fill(bufs.back().k, 100 * s + 2);
        fill(bufs.back().v, 100 * s + 3);
        bufs.back().o.fill_bytes(0);
    }
    const std::int64_t bh = static_cast<std::int64_t>(opt.batch) * opt.heads;
    auto launch = [&](int r) {
        BufferSet& b = bufs[static_cast<std::size_t>(r % sets)];
        idattn::fast::softmax_attention_device(b.q.data(), b.k.data(), b.v.data(), b.o.data(), bh, n, n, d, causal);
    };
    for (int r = 0; r < opt.warmup; ++r) launch(r);
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());

    std::vector<cudaEvent_t> start(static_cast<std::size_t>(opt.reps)), stop(static_cast<std::size_t>(opt.reps));
    for (int r = 0; r < opt.reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventCreate(&start[r]));
        IDATTN_CUDA_CHECK(cudaEventCreate(&stop[r]));
    }
    for (int r = 0; r < opt.reps; ++r) {
        IDATTN_CUDA_CHECK(cudaEventRecord(start[r]));
        launch(r);
        IDATTN_CUDA_CHECK(cudaEventRecord(stop[r]));
    }
    IDATTN_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<double> ms(static_cast<std::size_t>(opt.reps));
    for (int r = 0; r < opt.reps; ++r) {
        float t = 0.f;
        IDATTN_CUDA_CHECK(cudaEventElapsedTime(&t, start[r], stop[r]));
        ms[r] = t;
        IDATTN_CUDA_CHECK(cudaEventDestroy(start[r]));
        IDATTN_CUDA_CHECK(cudaEventDestroy(stop[r]));
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
    const double flops = 4.0 * n * static_cast<double>(n) * d * static_cast<double>(bh) * (causal ? 0.5 : 1.0);
    return {n, d, causal, median, ms.front(), flops / (median * 1e-3) / 1e12, sets};
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options opt = parse(argc, argv);
        const auto st = idattn::fast::device_status();
        if (!st.available) {
            std::printf("bench_fast: skipped: %s\n", st.detail.c_str());
            return 0;
        }
        std::printf("bench_fast: softmax attention forward (fast, float32) on %s\n", st.detail.c_str());
        int dev = 0, l2 = 0;
        IDATTN_CUDA_CHECK(cudaGetDevice(&dev));
        IDATTN_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));

        if (!opt.dump_dir.empty()) dump_example(opt.dump_dir);

        std::printf("B = %d, H = %d, N_q = N, median of %d reps after %d warm-up, inputs rotated over buffer sets\n",
                    opt.batch, opt.heads, opt.reps, opt.warmup);
        std::printf("%6s %4s %6s %10s %10s %9s %5s\n", "N", "d", "causal", "ms(med)", "ms(min)", "TFLOP/s", "sets");
        std::vector<Result> results;
        for (int d : opt.ds)
            for (int causal = 0; causal < 2; ++causal)
                for (int n : opt.ns) {
                    const Result r = time_case(opt, n, d, causal != 0, static_cast<std::size_t>(l2));
                    std::printf("%6d %4d %6s %10.4f %10.4f %9.2f %5d\n", r.n, r.d, r.causal ? "yes" : "no",
                                r.ms_median, r.ms_min, r.tflops, r.sets);
                    std::fflush(stdout);
                    results.push_back(r);
                }

        const std::filesystem::path out(opt.out);
        if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
        std::ofstream f(out);
        if (!f) throw std::runtime_error("cannot write " + opt.out);
        f << "impl,device,B,H,N,d,causal,ms_median,ms_min,tflops,reps\n";
        std::string device = st.detail;
        std::replace(device.begin(), device.end(), ',', ';');
        for (const auto& r : results)
            f << "fast," << device << ',' << opt.batch << ',' << opt.heads << ',' << r.n << ',' << r.d << ','
              << (r.causal ? 1 : 0) << ',' << r.ms_median << ',' << r.ms_min << ',' << r.tflops << ',' << opt.reps
              << '\n';
        std::printf("wrote %s\n", opt.out.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_fast: error: %s\n", e.what());
        return 1;
    }
}
