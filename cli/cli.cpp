#include "cli.hpp"

#include <iostream>

#include "api/common/npy.hpp"
#include "ref/common/error.hpp"
#include "ref/common/validate.hpp"

namespace idattn::cli {

Args::Args(std::string command, const std::vector<std::string>& argv) : command_(std::move(command)) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.rfind("--", 0) != 0) throw Error(command_ + ": unexpected argument '" + a + "' (options start with --)");
        const auto eq = a.find('=');
        if (eq != std::string::npos) {
            values_[a.substr(0, eq)] = a.substr(eq + 1);
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

void Args::finish() const {
    for (const auto& [k, v] : values_)
        if (!used_.count(k)) throw Error(command_ + ": unknown option " + k + " (see 'idattn " + command_ + " --help')");
    for (const auto& k : flags_)
        if (!used_.count(k)) throw Error(command_ + ": unknown option " + k + " (see 'idattn " + command_ + " --help')");
}

std::map<std::string, Subcommand>& registry() {
    static std::map<std::string, Subcommand> r;
    return r;
}

Registrar::Registrar(Subcommand s) { registry().emplace(s.name, std::move(s)); }

void write_result(const std::string& path, const api::Run& run, const std::string& what) {
    if (run.out.dtype == "float32") {
        std::vector<float> f(run.out.data.begin(), run.out.data.end());
        npy::write(path, f.data(), run.out.shape);
    } else {
        npy::write(path, run.out.data.data(), run.out.shape);
    }
    for (const auto& n : run.notes) std::cerr << "idattn " << what << ": note: " << n << "\n";
    std::cerr << "idattn " << what << ": backend " << run.backend << "; wrote " << path << " (" << run.out.dtype
              << ", shape " << shape_str(run.out.shape) << ")\n";
}

}  // namespace idattn::cli
