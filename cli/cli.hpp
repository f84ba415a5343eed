// `idattn`: every derivation step on .npy files, so that users can verify
// their own kernels against the references. Each chapter adds its
// subcommands in its own file (cli/NN-name.cpp) through a static Registrar;
// main.cpp knows none of them by name.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/common/dispatch.hpp"
#include "api/common/host_tensor.hpp"

namespace idattn::cli {

// --name value / --flag parser with strict checking: unknown options,
// missing values and missing required options are errors naming the option.
class Args {
public:
    Args(std::string command, const std::vector<std::string>& argv);
    std::string required(const std::string& name);
    std::string optional(const std::string& name, const std::string& fallback);
    bool flag(const std::string& name);
    // Reads the .npy file given by --name; the label in messages is "--name (path)".
    HostTensor tensor(const std::string& name);
    // Throws if any option was given that no accessor asked for.
    void finish() const;
    const std::string& command() const { return command_; }

private:
    std::string command_;
    std::map<std::string, std::string> values_;
    std::set<std::string> flags_, used_;
};

struct Option {
    std::string name, help;
};

struct Subcommand {
    std::string name;
    std::string chapter;  // e.g. "01-softmax-attention"
    std::string summary;
    std::vector<Option> options;
    std::string example;
    std::function<int(Args&)> run;
};

std::map<std::string, Subcommand>& registry();

struct Registrar {
    explicit Registrar(Subcommand s);
};

// Writes run.out to --out and prints the backend and notes to stderr.
void write_result(const std::string& path, const api::Run& run, const std::string& what);

// Common options.
inline const Option kImplOption{"--impl ref|naive32|fast",
                                "backend: float64 reference (default), the same formula in float32, or the CUDA kernel"};
inline const Option kOutOption{"--out FILE.npy", "output file (written atomically)"};

}  // namespace idattn::cli
