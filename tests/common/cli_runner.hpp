// Runs the idattn CLI from a test and captures exit code and output.
#pragma once

#include <string>

namespace idattn::test {

struct CliResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

// `args` is appended to the path of the built idattn binary, run by /bin/sh.
CliResult run_cli(const std::string& args);

// A whole /bin/sh command line (stdout and stderr captured together).
CliResult run_shell(const std::string& command);

// The built idattn binary, quoted for /bin/sh.
std::string cli_path();

// A fresh empty folder under the build's temporary directory.
std::string temp_dir(const std::string& tag);

bool file_exists(const std::string& path);

}  // namespace idattn::test
