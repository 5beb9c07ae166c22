// Shared pieces of the benchmark suites: process measurements, an echo server on its own
// threads or in a child process, and the suites' throwaway certificates. The load driver,
// latencies, child processes and the PKI itself are netpool::tools (tools/), shared with
// the netpool command.
#pragma once

#include <netpool/echo/server.hpp>
#include <netpool/tools/child_process.hpp>
#include <netpool/tools/load.hpp>
#include <netpool/tools/pki.hpp>

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
/// resident_bytes() after handing the allocator's free pages back to the kernel (glibc's
/// malloc_trim). Comparing two of these compares memory in use, not the allocator's
/// high-water mark: memory freed before the first reading cannot hide memory allocated
/// (or leaked) before the second, because reusing a trimmed page faults it in again.
std::size_t trimmed_resident_bytes();
/// Bytes the allocator has handed out and not had back (glibc mallinfo2: in-use chunks of
/// every arena plus mmapped blocks). Exact and free of page granularity and fragmentation,
/// where resident bytes are what the process actually costs: report both.
std::size_t heap_in_use_bytes();

/// The suites' throwaway CA and server certificate for 127.0.0.1/localhost (removed at
/// exit). Made once per process.
const tools::throwaway_pki& test_pki();

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

/// Echo servers in a child process, so that neither their memory nor their descriptors are
/// counted as the benchmark's (the leak and memory suites measure the whole process).
/// fork() copies only the calling thread, so construct it before the process starts any
/// thread: at the top of main(). The child dies with its parent (PR_SET_PDEATHSIG) and is
/// killed and reaped by the destructor. TLS listeners use test_pki(), made before the fork so
/// both processes see the same files.
class server_process {
public:
    struct listener {
        bool tls = false;
        echo::fault_mode mode = echo::fault_mode::normal;
        std::size_t reset_after = 1;  ///< N for fault_mode::reset_after_n
    };
    /// Starts one echo server per entry of `listeners` on 127.0.0.1, all on one io_context
    /// run by `threads` threads in the child, and returns once they all listen. Throws
    /// std::runtime_error (with the child's reason) if the child cannot start them.
    explicit server_process(const std::vector<listener>& listeners, unsigned threads = 1);
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;
    /// The port of listeners[i].
    std::uint16_t port(std::size_t i) const { return ports_.at(i); }

private:
    std::optional<tools::child_process> child_;
    std::vector<std::uint16_t> ports_;
};

using tools::latencies;

}  // namespace netpool::bench
