#include "cli/cli.hpp"

#include <cmath>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "api/common/npy.hpp"
#include "api/common/npz.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::cli {

Args::Args(std::string command, const std::vector<std::string>& argv) : command_(std::move(command)) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.rfind("--", 0) != 0) throw Error(command_ + ": unexpected argument '" + a + "' (options start with --)");
        const auto eq = a.find('=');
        const std::string name = eq == std::string::npos ? a : a.substr(0, eq);
        if (values_.count(name) || flags_.count(name))
            throw Error(command_ + ": option " + name + " is given more than once; give it once");
        if (eq != std::string::npos) {
            values_[name] = a.substr(eq + 1);
        } else if (i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) {
            values_[a] = argv[++i];
        } else {
            flags_.insert(a);
        }
    }
}

std::string Args::required(const std::string& name) {
    used_.insert(name);
    auto it = values_.find(name);
    if (it == values_.end()) {
        if (flags_.count(name)) throw Error(command_ + ": option " + name + " needs a value");
        throw Error(command_ + ": missing required option " + name + " (see 'idattn " + command_ + " --help')");
    }
    return it->second;
}

std::string Args::optional(const std::string& name, const std::string& fallback) {
    used_.insert(name);
    auto it = values_.find(name);
    if (it == values_.end()) {
        if (flags_.count(name)) throw Error(command_ + ": option " + name + " needs a value");
        return fallback;
    }
    return it->second;
}

bool Args::flag(const std::string& name) {
    used_.insert(name);
    if (values_.count(name))
        throw Error(command_ + ": option " + name + " is a flag and takes no value (got '" + values_.at(name) + "')");
    return flags_.count(name) > 0;
}

HostTensor Args::tensor(const std::string& name) {
    const std::string path = required(name);
    return npy::read(path, name + " (" + path + ")");
}

std::map<std::string, HostTensor> Args::arrays(const std::string& name) {
    const std::string path = required(name);
    std::map<std::string, HostTensor> m;
    for (auto& member : npz::read(path, name + " (" + path + ")")) m.emplace(member.name, std::move(member.tensor));
    return m;
}

std::string Args::output(const std::string& name) {
    const std::string path = required(name);
    npy::check_output(path, name);
    outputs_.emplace_back(name, path);
    return path;
}

std::string Args::optional_output(const std::string& name) {
    const std::string path = optional(name, "");
    if (path.empty() && !values_.count(name)) return "";
    npy::check_output(path, name);
    outputs_.emplace_back(name, path);
    return path;
}

bool Args::given(const std::string& name) const { return values_.count(name) > 0 || flags_.count(name) > 0; }

void Args::refuse_if_given(const std::vector<std::string>& names, const std::string& why) const {
    for (const auto& n : names)
        if (given(n)) throw Error(command_ + ": " + n + " does not apply here: " + why);
}

void Args::note(const std::string& text) const { std::cerr << "idattn " << command_ << ": note: " << text << "\n"; }

std::uint64_t parse_count(const std::string& command, const std::string& option, const std::string& text) {
    std::size_t used = 0;
    unsigned long long value = 0;
    try {
        if (!text.empty() && text[0] != '-') value = std::stoull(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (text.empty() || used != text.size())
        throw Error(command + ": " + option + " must be a non-negative integer, got '" + text + "'");
    return value;
}

double parse_number(const std::string& command, const std::string& option, const std::string& text) {
    // strtod, not stod: a value that underflows to a subnormal (1e-320) is a
    // number, not an error; overflow gives inf and is refused below.
    char* end = nullptr;
    const double value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
    const std::size_t used = text.empty() ? 0 : static_cast<std::size_t>(end - text.c_str());
    if (text.empty() || used != text.size() || !std::isfinite(value))
        throw Error(command + ": " + option + " must be a finite number, got '" + text + "'");
    return value;
}

std::uint64_t Args::count(const std::string& name, const std::string& fallback) {
    return parse_count(command_, name, optional(name, fallback));
}

std::uint64_t Args::required_count(const std::string& name) { return parse_count(command_, name, required(name)); }

double Args::number(const std::string& name, const std::string& fallback) {
    return parse_number(command_, name, optional(name, fallback));
}

void Args::also_write(const std::string& path, HostTensor t) { extra_.emplace_back(path, std::move(t)); }
void Args::also_write_file(const std::string& path, std::string bytes) { files_.emplace_back(path, std::move(bytes)); }

void Args::also_write_npz(const std::string& path, const std::map<std::string, HostTensor>& arrays) {
    std::vector<npz::Member> members;
    for (const auto& [n, t] : arrays) members.push_back({n, t});
    also_write_file(path, npz::archive(path, members));
}

std::optional<bool> Args::on_off(const std::string& name) {
    const std::string v = optional(name, "");
    if (v.empty()) return std::nullopt;
    if (v != "on" && v != "off") throw Error(command_ + ": " + name + " must be 'on' or 'off', got '" + v + "'");
    return v == "on";
}

void Args::write_outputs(const std::vector<std::pair<std::string, const HostTensor*>>& outputs) {
    std::vector<npy::Output> all;
    for (const auto& [path, t] : outputs) all.push_back({path, t});
    for (const auto& [path, t] : extra_) all.push_back({path, &t});
    for (const auto& [path, bytes] : files_) all.push_back({path, nullptr, &bytes});
    npy::write_all(all);
}

void Args::finish() const {
    for (const auto& [k, v] : values_)
        if (!used_.count(k)) throw Error(command_ + ": unknown option " + k + " (see 'idattn " + command_ + " --help')");
    for (const auto& k : flags_)
        if (!used_.count(k)) throw Error(command_ + ": unknown option " + k + " (see 'idattn " + command_ + " --help')");
    for (std::size_t i = 0; i < outputs_.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (npy::same_file(outputs_[i].second, outputs_[j].second))
                throw Error(command_ + ": " + outputs_[j].first + " and " + outputs_[i].first +
                            " name the same file '" + outputs_[i].second + "'; give each output its own path");
}

std::map<std::string, Subcommand>& registry() {
    static std::map<std::string, Subcommand> r;
    return r;
}

Registrar::Registrar(Subcommand s) { registry().emplace(s.name, std::move(s)); }

void write_result(Args& a, const std::string& path, const api::Run& run, const std::string& what) {
    a.write_outputs({{path, &run.out}});
    for (const auto& n : run.notes) std::cerr << "idattn " << what << ": note: " << n << "\n";
    std::cerr << "idattn " << what << ": backend " << run.backend << "; wrote " << path << " (" << run.out.dtype
              << ", shape " << shape_str(run.out.shape) << ")\n";
}

}  // namespace idattn::cli
