// The CPU part of the benchmark plumbing; see bench_cli.hpp.
#include "bench/common/bench_cli.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace idattn::bench {

Flag string_flag(std::string name, std::string& dst) {
    return {std::move(name), true, [&dst](const std::string& v) { dst = v; }};
}

namespace {

int to_int(const std::string& v) {
    std::size_t used = 0;
    const int x = std::stoi(v, &used);  // throws on no number or out of range
    if (used != v.size()) throw std::invalid_argument("trailing characters");
    return x;
}

// Prints what is wrong and the usage on stderr; exits 2.
[[noreturn]] void usage_error(const char* prog, const std::string& usage, const std::string& what) {
    std::fprintf(stderr, "%s: %s\nusage: %s %s\n", prog, what.c_str(), prog, usage.c_str());
    std::exit(2);
}

}  // namespace

Flag int_flag(std::string name, int& dst) {
    return {std::move(name), true, [&dst](const std::string& v) { dst = to_int(v); }};
}

Flag int_list_flag(std::string name, std::vector<int>& dst) {
    return {std::move(name), true, [&dst](const std::string& v) {
                std::vector<int> r;
                std::stringstream ss(v);
                std::string item;
                while (std::getline(ss, item, ',')) r.push_back(to_int(item));
                if (r.empty()) throw std::invalid_argument("empty list");
                dst = std::move(r);
            }};
}

Flag switch_flag(std::string name, bool& dst) {
    return {std::move(name), false, [&dst](const std::string&) { dst = true; }};
}

void parse_flags(int argc, char** argv, const std::string& usage, const std::vector<Flag>& flags) {
    const char* prog = argc > 0 ? argv[0] : "bench";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::printf("usage: %s %s\n", prog, usage.c_str());
            std::exit(0);
        }
        const auto f = std::find_if(flags.begin(), flags.end(), [&](const Flag& x) { return x.name == a; });
        if (f == flags.end()) usage_error(prog, usage, "unknown argument " + a);
        std::string value;
        if (f->takes_value) {
            if (i + 1 >= argc) usage_error(prog, usage, "missing value after " + a);
            value = argv[++i];
        }
        try {
            f->set(value);
        } catch (const std::exception&) {
            usage_error(prog, usage, "bad value '" + value + "' after " + a);
        }
    }
}

RefArgs parse_ref_args(int argc, char** argv, const std::string& default_out, bool has_quick) {
    RefArgs a;
    a.out = default_out;
    std::vector<Flag> flags = {string_flag("--out", a.out), int_flag("--reps", a.reps)};
    if (has_quick) flags.push_back(switch_flag("--quick", a.quick));
    parse_flags(argc, argv, has_quick ? "[--out FILE.csv] [--reps R] [--quick]" : "[--out FILE.csv] [--reps R]", flags);
    a.reps = std::max(1, a.reps);
    return a;
}

Stat summarize(std::vector<double> ms) {
    if (ms.empty()) return {};
    std::sort(ms.begin(), ms.end());
    const std::size_t h = ms.size() / 2;
    return {ms.size() % 2 ? ms[h] : 0.5 * (ms[h - 1] + ms[h]), ms.front()};
}

double cpu_median_ms(int reps, const std::function<double()>& run) {
    std::vector<double> ms;
    volatile double sink = 0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        const double kept = run();
        const auto t1 = std::chrono::steady_clock::now();
        sink = kept;
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    (void)sink;
    return summarize(std::move(ms)).median_ms;
}

std::ofstream open_csv(const std::string& path, const std::string& header) {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream f(p);
    if (!f) throw std::runtime_error("cannot write " + path);
    f << header << '\n';
    return f;
}

std::string csv_field(std::string s) {
    std::replace(s.begin(), s.end(), ',', ';');
    return s;
}

int guarded_main(const char* prog, const std::function<int()>& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", prog, e.what());
        return 1;
    }
}

}  // namespace idattn::bench
