// Real SMTP servers for the SMTP tests, each in its own child process: aiosmtpd
// (tests/servers/smtp_server.py), the scripted misbehaving server
// (tests/servers/bad_smtp_server.py) and Postfix's smtp-sink.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

namespace netpool::test {

/// The source tree: $NETPOOL_SOURCE_DIR (set by meson for the test), else the path compiled in.
std::string source_dir();

/// A child process started with posix_spawn, stdin from /dev/null, stdout to a pipe (read for
/// "READY <port>"), stderr to a file. No other descriptor is inherited. The destructor stops
/// it (SIGTERM, then SIGKILL after a few seconds) and reaps it, so nothing outlives a test.
class child_process {
public:
    /// Starts argv[0] (an absolute path) with `argv`. With `wait_ready`, waits up to
    /// `timeout` for a line "READY <port>" on its stdout; throws std::runtime_error (with the
    /// child's stderr) if it exits or stays silent.
    child_process(std::vector<std::string> argv, std::string label, bool wait_ready = true,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    pid_t pid() const noexcept { return pid_; }
    /// Sends SIGTERM and waits up to `timeout`; returns the exit status (0..255), 128 + signal
    /// if it died of a signal, or -1 if it had to be killed. Idempotent.
    int stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    /// Everything the child wrote to stderr so far.
    std::string stderr_text() const;
    const std::string& label() const noexcept { return label_; }

private:
    std::string label_;
    std::string err_path_;
    pid_t pid_ = -1;
    int out_ = -1;
    int status_ = -1;
    std::uint16_t port_ = 0;
};

/// A port on 127.0.0.1 that was free a moment ago (for servers that cannot report theirs).
std::uint16_t free_port();

/// True once a TCP connection to 127.0.0.1:port succeeds; polls until `timeout`.
bool wait_listening(std::uint16_t port, std::chrono::milliseconds timeout);

/// Polls `pred` every 10 ms until it holds or `timeout` passes; returns its last value.
template <class Pred> bool wait_for(Pred pred, std::chrono::milliseconds timeout);

/// The whole content of a file ("" if it cannot be read).
std::string read_file(const std::string& path);

/// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(const std::string& bytes);

}  // namespace netpool::test

#include <thread>

template <class Pred> bool netpool::test::wait_for(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}
