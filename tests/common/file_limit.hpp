// Runs a write as on a full disk, for the tests of atomic outputs.
#pragma once

#include <csignal>
#include <functional>
#include <string>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/messages.hpp"

namespace idattn::test {

// Runs `write` in a child process whose files may not grow past `limit` bytes
// (RLIMIT_FSIZE, with SIGXFSZ ignored so that write() fails with EFBIG as on a
// full disk) and returns the message of the idattn::Error it throws: "" if
// none, a line in parentheses if the child did not finish. The limit is per
// process, hence the child.
inline std::string error_under_file_size_limit(const std::function<void()>& write, rlim_t limit = 4096) {
    int fds[2];
    if (::pipe(fds) != 0) return "(pipe failed)";
    const pid_t pid = ::fork();
    if (pid < 0) return "(fork failed)";
    if (pid == 0) {
        ::close(fds[0]);
        std::signal(SIGXFSZ, SIG_IGN);
        const rlimit lim{limit, limit};
        ::setrlimit(RLIMIT_FSIZE, &lim);
        const std::string m = error_message(write);
        const bool sent = ::write(fds[1], m.data(), m.size()) == static_cast<ssize_t>(m.size());
        ::_exit(sent ? 0 : 1);
    }
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return "(the child process did not finish: wait status " + std::to_string(status) + ")";
    return out;
}

}  // namespace idattn::test
