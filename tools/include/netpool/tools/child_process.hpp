// Programs and forked functions the CLI and the benchmarks run next to themselves (a
// redis-server, Dovecot, aiosmtpd, smtp-sink, echo servers in a child, a benchmark in a
// network namespace): started, read, stopped and reaped in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace netpool::tools {

/// A child process that dies with this one (PR_SET_PDEATHSIG) and is stopped and reaped by
/// the destructor: `stop_signal`, up to `grace` for it to exit, then SIGKILL. Its stdin is
/// /dev/null; its stdout goes to a pipe (read_line, read_all) or to an anonymous file
/// (stdout_text); its stderr to an anonymous file (stderr_tail).
///
/// Errors: the constructors throw std::runtime_error (saying which call failed) when the
/// pipe, the file or the fork fails; a failed exec shows as exit status 127 with "exec
/// failed" on its stderr. Thread safety: none; one owner. Move-only.
class child_process {
public:
    struct options {
        bool stdout_pipe = false;  ///< stdout to a pipe (read_line/read_all) instead of a file
        int death_signal = 9;      ///< sent when this process dies (SIGKILL)
        int stop_signal = 15;      ///< sent first by stop() (SIGTERM)
        std::chrono::milliseconds grace{2000};  ///< stop(): how long before SIGKILL
    };

    /// Runs the program argv[0] (a path) with `argv`.
    child_process(const std::vector<std::string>& argv, options o);
    /// Forks and runs `body` in the child, which exits with its return value (an exception
    /// from it: 1, its message on stderr). The child's stdout is the pipe or the file of
    /// `o`. Only what `body` needs may be touched there: fork() copies the calling thread
    /// alone, so call this before the process starts threads if `body` needs more.
    child_process(const std::function<int()>& body, options o);
    ~child_process();
    child_process(child_process&& other) noexcept;
    child_process& operator=(child_process&&) = delete;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    int pid() const noexcept { return pid_; }
    /// Blocks until the child exits; its exit status, or 128 + the signal that ended it.
    int wait();
    /// Whether the child has exited (reaped then), without blocking.
    bool exited();
    /// Whether a signal ended it (valid after wait() or exited() said true), and which.
    std::optional<int> signal() const noexcept { return signal_; }
    /// stop_signal, up to `grace`, SIGKILL; reaps. Idempotent.
    void stop();
    /// One line from the stdout pipe (without its newline), or nullopt if none came within
    /// `timeout` or the child closed the pipe.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);
    /// Everything left on the stdout pipe until the child closes it (blocking).
    std::string read_all();
    /// What the child wrote to stdout, when stdout went to a file.
    std::string stdout_text() const;
    /// The last `max` bytes of its stderr, on one line.
    std::string stderr_tail(std::size_t max = 600) const;

private:
    void start(const std::function<void()>& in_child, const options& o);

    int pid_ = -1;
    int out_file_ = -1, err_file_ = -1, out_pipe_ = -1;
    bool reaped_ = false;
    int status_ = -1;
    std::optional<int> signal_;
    options opts_;
    std::string pending_;
};

/// A port on 127.0.0.1 nobody listens on right now (bound by the kernel's choice, released
/// again): for servers that cannot report the port they picked. 0 if none could be bound.
std::uint16_t free_loopback_port();
/// Whether something accepts TCP connections on 127.0.0.1:port.
bool accepts_connections(std::uint16_t port);
/// Polls accepts_connections(port) until it does (""), the child exits, or `timeout`
/// passes (then why not, naming `what`).
std::string wait_until_listening(child_process& child, std::uint16_t port, std::chrono::milliseconds timeout,
                                 const std::string& what);

/// A file (mode 0600, in /tmp) holding a random 32-hex-digit password and a newline; removed
/// by the destructor. For the test servers the benchmarks start. Throws std::runtime_error.
class password_file {
public:
    password_file();
    ~password_file();
    password_file(const password_file&) = delete;
    password_file& operator=(const password_file&) = delete;
    const std::string& path() const noexcept { return path_; }
    const std::string& password() const noexcept { return password_; }

private:
    std::string path_, password_;
};

/// `relative` (e.g. "tests/servers/smtp_server.py") in the source tree that holds the build
/// directory of this executable (SRC/build-x/<dir>/<exe> -> SRC/relative).
std::string source_tree_file(const std::string& relative);

}  // namespace netpool::tools
