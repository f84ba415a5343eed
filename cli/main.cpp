// idattn: the derivation's steps on .npy files. See README.md, "Verify your own kernel".
#include <iostream>
#include <string>
#include <vector>

#include "api/common/npy.hpp"
#include "cli/cli.hpp"
#include "core/error.hpp"

namespace {

void print_help() {
    std::cout << "usage: idattn <subcommand> [options]    (idattn <subcommand> --help for its options)\n\n"
                 "Every step of the Interdomain Attention derivation on .npy inputs (float32 or float64,\n"
                 "shapes (N, d) or (B, H, N, d)); references compute in float64 whatever the input dtype.\n\n"
                 "subcommands:\n";
    std::string chapter;
    std::vector<const idattn::cli::Subcommand*> sorted;
    for (const auto& [name, s] : idattn::cli::registry()) sorted.push_back(&s);
    std::stable_sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->chapter < b->chapter; });
    for (const auto* s : sorted) {
        if (s->chapter != chapter) {
            chapter = s->chapter;
            std::cout << "  [" << chapter << "]\n";
        }
        std::cout << "    " << s->name << std::string(s->name.size() < 14 ? 14 - s->name.size() : 1, ' ') << s->summary
                  << "\n";
    }
}

void print_sub_help(const idattn::cli::Subcommand& s) {
    std::cout << "usage: idattn " << s.name << " [options]\n\n" << s.summary << "\n\noptions:\n";
    for (const auto& o : s.options) std::cout << "  " << o.name << "\n      " << o.help << "\n";
    if (!s.example.empty()) std::cout << "\nexample:\n  " << s.example << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        print_help();
        return args.empty() ? 2 : 0;
    }
    auto& reg = idattn::cli::registry();
    auto it = reg.find(args[0]);
    if (it == reg.end()) {
        std::cerr << "idattn: unknown subcommand '" << args[0] << "'; run 'idattn --help' for the list\n";
        return 2;
    }
    std::vector<std::string> rest(args.begin() + 1, args.end());
    for (const auto& a : rest)
        if (a == "--help" || a == "-h") {
            print_sub_help(it->second);
            return 0;
        }
    idattn::npy::install_signal_cleanup();  // no temporary file left behind on SIGINT/SIGTERM
    try {
        idattn::cli::Args parsed(it->first, rest);
        return it->second.run(parsed);
    } catch (const idattn::Error& e) {
        std::cerr << "idattn " << it->first << ": error: " << e.what() << "\n";
        return 1;
    } catch (const std::bad_alloc&) {
        std::cerr << "idattn " << it->first << ": error: out of memory\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "idattn " << it->first << ": internal error: " << e.what() << "\n";
        return 3;
    }
}
