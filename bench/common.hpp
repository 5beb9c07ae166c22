// Shared pieces of the benchmark suites: process measurements, an echo server on its own
// threads, throwaway certificates, and latency percentiles.
#pragma once

#include <netpool/echo/server.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace netpool::bench {

/// Raises the soft limit on open files to the hard limit (10,000 concurrent connections need
/// two descriptors each on loopback). Returns the new soft limit.
std::size_t raise_fd_limit();
/// Open file descriptors of this process.
std::size_t open_fds();
/// Resident set size of this process in bytes (from /proc/self/statm).
std::size_t resident_bytes();

/// A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl
/// command in a temporary directory removed at exit. Made once per process.
struct pki {
    std::string ca, cert, key;
};
const pki& test_pki();

/// An echo server (plain or TLS) on 127.0.0.1 with its own io_context run by `threads`
/// threads, so client and server do not share an event loop.
class server_thread {
public:
    explicit server_thread(bool tls, unsigned threads = 1, echo::server_options extra = {});
    ~server_thread();
    server_thread(const server_thread&) = delete;
    server_thread& operator=(const server_thread&) = delete;
    std::uint16_t port() const;
    echo::server& server() { return *server_; }

private:
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::optional<echo::server> server_;
    std::vector<std::thread> threads_;
};

/// Latency samples in microseconds.
struct latencies {
    std::vector<double> us;
    void reserve(std::size_t n) { us.reserve(n); }
    void add(double v) {
        us.push_back(v);
        sorted_ = false;
    }
    /// q in [0,1]; sorts on first use after an add. 0 when empty.
    double percentile(double q);

private:
    bool sorted_ = false;
};

}  // namespace netpool::bench
