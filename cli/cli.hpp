// `idattn`: every derivation step on .npy files, so that users can verify
// their own kernels against the references. Each chapter adds its
// subcommands in its own file (cli/NN-name.cpp) through a static Registrar;
// main.cpp knows none of them by name.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/common/dispatch.hpp"
#include "api/common/host_tensor.hpp"

namespace idattn::cli {

// --name value / --flag parser with strict checking: unknown options, repeated
// options, missing values and missing required options are errors naming the
// option. Output paths are checked when asked for (npy::check_output: not a
// directory or special file, in a writable folder), before anything is
// computed, and every output of a run - the result and extras such as
// --save-w - is written together, all or none, by write_outputs().
class Args {
public:
    Args(std::string command, const std::vector<std::string>& argv);
    std::string required(const std::string& name);
    std::string optional(const std::string& name, const std::string& fallback);
    bool flag(const std::string& name);
    // Reads the .npy file given by --name; the label in messages is "--name (path)".
    HostTensor tensor(const std::string& name);
    // Reads the .npz file given by --name: its arrays by name (npz::read's checks).
    std::map<std::string, HostTensor> arrays(const std::string& name);
    // The output path given by --name, checked (see above); optional_output
    // returns "" when the option is absent.
    std::string output(const std::string& name);
    std::string optional_output(const std::string& name);
    // Queues `t` to be written to `path` with the run's result.
    void also_write(const std::string& path, HostTensor t);
    // Queues a whole file's bytes (an .npz archive, npz::archive) the same way.
    void also_write_file(const std::string& path, std::string bytes);
    // Queues named arrays as one .npz archive the same way.
    void also_write_npz(const std::string& path, const std::map<std::string, HostTensor>& arrays);
    // Writes `outputs` and everything queued by also_write, all or none.
    void write_outputs(const std::vector<std::pair<std::string, const HostTensor*>>& outputs);
    // --name as a non-negative integer or a finite number: `fallback` when the
    // option is absent; a value that is not one is an error naming the option.
    std::uint64_t count(const std::string& name, const std::string& fallback);
    std::uint64_t required_count(const std::string& name);
    double number(const std::string& name, const std::string& fallback);
    // --name on|off: nullopt when absent; any other value is an error naming the option.
    std::optional<bool> on_off(const std::string& name);
    // Whether --name was given (as a value or a flag); asks for nothing.
    bool given(const std::string& name) const;
    // Throws, naming the first of `names` that was given, "... does not apply
    // here: <why>" (an option of another basis or form, not an unknown one).
    void refuse_if_given(const std::vector<std::string>& names, const std::string& why) const;
    // Prints "idattn <command>: note: <text>" on stderr (an ignored option).
    void note(const std::string& text) const;
    // Throws if any option was given that no accessor asked for, or if two
    // outputs name the same file.
    void finish() const;
    const std::string& command() const { return command_; }

private:
    std::string command_;
    std::map<std::string, std::string> values_;
    std::set<std::string> flags_, used_;
    std::vector<std::pair<std::string, std::string>> outputs_;  // (option, path)
    std::vector<std::pair<std::string, HostTensor>> extra_;     // queued by also_write
    std::vector<std::pair<std::string, std::string>> files_;    // queued by also_write_file
};

// The parsers behind Args::count and Args::number, for option text fetched
// already: "idattn <command>: <option> must be ..., got '<text>'" otherwise.
std::uint64_t parse_count(const std::string& command, const std::string& option, const std::string& text);
double parse_number(const std::string& command, const std::string& option, const std::string& text);

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

// Writes run.out to `path` (with whatever a.also_write queued) and prints the
// backend and notes to stderr.
void write_result(Args& a, const std::string& path, const api::Run& run, const std::string& what);

// Common options.
inline const Option kImplOption{"--impl ref|naive32|fast",
                                "backend: float64 reference (default), the same formula in float32, or the CUDA kernel"};
inline const Option kOutOption{"--out FILE.npy", "output file, written atomically (required)"};

}  // namespace idattn::cli
