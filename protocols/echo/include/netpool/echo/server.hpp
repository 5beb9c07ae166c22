// A small echo server (plain TCP or TLS) for tests, benchmarks and demos, with fault modes
// that make it misbehave on purpose.
#pragma once

#include <netpool/echo/frame.hpp>

#include <asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace netpool::echo {

/// How the server treats connections; can be changed while it runs. A change applies to
/// connections accepted afterwards and, for the per-frame modes, to the next frame of every
/// open connection.
enum class fault_mode {
    normal,               ///< greeting, then echo every frame
    silent,               ///< accept, then send nothing and never answer
    no_greeting_garbage,  ///< send a line that is not the greeting, then behave normally
    close_mid_frame,      ///< answer a frame with its header and half its payload, then close
    reset_after_n,        ///< close each connection after answering N frames (see set_mode)
};

const char* to_string(fault_mode m) noexcept;
/// "normal", "silent", "no_greeting_garbage", "close_mid_frame", "reset_after_n" (dashes
/// accepted in place of underscores); nullopt for anything else.
std::optional<fault_mode> parse_fault_mode(std::string_view s) noexcept;

struct server_options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;       ///< 0: an ephemeral port, see server::port()
    std::string cert_file;        ///< PEM certificate chain; with key_file, the server speaks TLS
                                  ///< (rejected with config_error when built without TLS)
    std::string key_file;         ///< PEM private key
    std::size_t max_frame = default_max_frame;  ///< a larger frame closes the connection
    fault_mode mode = fault_mode::normal;
    std::size_t reset_after = 1;  ///< N for fault_mode::reset_after_n
};

/// Accepts on one address and echoes frames. Each connection runs as its own coroutine on
/// its own strand of the given executor, so an io_context run by several threads serves
/// connections in parallel. Per connection it keeps one buffer that grows only to the
/// largest frame seen, and answers every complete frame in one write without copying it.
///
/// Errors: the constructor throws config_error (a std::invalid_argument) naming cert_file or
/// key_file when they cannot be loaded, or only one of them is given, and naming cert_file
/// when netpool was built without TLS (NETPOOL_HAS_TLS 0) and they are given; start() throws
/// std::system_error when it cannot listen (address in use, bad address). Those are
/// configuration mistakes. Network failures on a connection only end that connection.
/// Thread safety: every member function may be called from any thread, including the
/// server's own. Lifetime: connections still running when the server object is destroyed
/// keep its shared state alive until they end; destroy the server before its io_context.
class server {
public:
    server(asio::any_io_executor ex, server_options opts);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds, listens and starts accepting. After a stop(), starts again on the same port
    /// (the one bound first, when the options asked for port 0). No effect while running.
    void start();
    /// Closes the listening socket and every open connection, as if the server died.
    /// Returns at once; `on_stopped` (optional) runs on the server's executor when all of
    /// them are closed. A stopped server can be started again.
    void stop(std::function<void()> on_stopped = {});

    /// The bound port (0 before the first start()).
    std::uint16_t port() const noexcept;
    /// Whether the server speaks TLS (always false when built without TLS).
    bool tls() const noexcept;

    void set_mode(fault_mode m) noexcept;
    /// N for fault_mode::reset_after_n (0 counts as 1). Does not change the mode.
    void set_reset_after(std::size_t n) noexcept;
    fault_mode mode() const noexcept;

    std::uint64_t connections_accepted() const noexcept;
    std::size_t open_sessions() const noexcept;
    std::uint64_t frames_echoed() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace netpool::echo
