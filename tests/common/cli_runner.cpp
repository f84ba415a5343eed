#include "tests/common/cli_runner.hpp"

#include <array>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sys/wait.h>

namespace idattn::test {

std::string cli_path() { return std::string("'") + IDATTN_CLI_PATH + "'"; }

CliResult run_cli(const std::string& args) { return run_shell(cli_path() + " " + args); }

CliResult run_shell(const std::string& command) {
    const std::string cmd = "{ " + command + " ; } 2>&1";
    CliResult r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf{};
    std::size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
    const int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string temp_dir(const std::string& tag) {
    std::random_device rd;
    auto dir = std::filesystem::temp_directory_path() / ("idattn-test-" + tag + "-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    return dir.string();
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

}  // namespace idattn::test
