// The plumbing every benchmark program shares (CPU part; plain C++, no CUDA):
// command-line flags, the CPU median timer, the CSV file and the error guard
// around main. Only bench/NN-name/bench_ref.cpp and bench_fast.cu include it
// (target idattn_bench_common); the GPU part is gpu_bench.cuh.
//
// A benchmark's flags are a table of Flag rows, e.g.
//   parse_flags(argc, argv, "[--out FILE] [--reps R]",
//               {string_flag("--out", opt.out), int_flag("--reps", opt.reps)});
// --help or -h prints "usage: PROG ..." and exits 0; an unknown flag, a flag
// missing its value or a value that is not a number prints what is wrong and
// the usage on stderr and exits 2.
#pragma once

#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace idattn::bench {

// One command-line flag: its name, whether a value follows it, and what to do
// with the value ("" for a switch). `set` may throw std::exception on a bad value.
struct Flag {
    std::string name;
    bool takes_value = true;
    std::function<void(const std::string&)> set;
};

Flag string_flag(std::string name, std::string& dst);
Flag int_flag(std::string name, int& dst);                      // std::stoi, whole value
Flag int_list_flag(std::string name, std::vector<int>& dst);   // "256,1024,4096"
Flag switch_flag(std::string name, bool& dst);                  // no value: sets dst = true

// Parses argv[1..] against `flags` (see the top of this file). `usage` is the
// text after "usage: PROG ".
void parse_flags(int argc, char** argv, const std::string& usage, const std::vector<Flag>& flags);

// The flags of every CPU reference benchmark (bench_NN_ref):
//   --out FILE.csv (default `default_out`), --reps R (default 3, at least 1),
//   and --quick (a smaller sweep) where `has_quick`.
struct RefArgs {
    std::string out;
    int reps = 3;
    bool quick = false;
};
RefArgs parse_ref_args(int argc, char** argv, const std::string& default_out, bool has_quick);

// Median of the samples (mean of the two middle ones for an even count) and
// minimum; both 0 for no samples.
struct Stat {
    double median_ms = 0, min_ms = 0;
};
Stat summarize(std::vector<double> ms);

// CPU timer: runs `run` `reps` times, each timed alone with steady_clock, and
// returns the median in milliseconds. `run` returns any element of its result
// (the timer keeps it, so the computation cannot be optimised away); the time
// includes freeing the result, negligible next to computing it.
double cpu_median_ms(int reps, const std::function<double()>& run);

// Opens `path` for writing (creating its parent folders) and writes the header
// line `header` (no trailing newline needed). Throws std::runtime_error naming
// the path when it cannot be written.
std::ofstream open_csv(const std::string& path, const std::string& header);

// `s` with every ',' replaced by ';' (a device name as one CSV field).
std::string csv_field(std::string s);

// Runs body() and returns its exit code; a std::exception escaping it is
// printed as "PROG: error: WHAT" on stderr and gives exit code 1.
int guarded_main(const char* prog, const std::function<int()>& body);

}  // namespace idattn::bench
