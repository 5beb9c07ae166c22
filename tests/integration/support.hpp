// Helpers for integration tests: throwaway certificates, an echo server on its own thread,
// client io_context threads, running a coroutine under a wall-clock guard, counting fds.
#pragma once

#include <netpool/config.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/echo/server.hpp>
#include <netpool/options.hpp>

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

/// Failed checks on error codes print "category:value (message)".
template <> struct doctest::StringMaker<std::error_code> {
    static doctest::String convert(const std::error_code& ec) {
        const std::string s = std::string(ec.category().name()) + ':' + std::to_string(ec.value()) + " (" +
                              ec.message() + ')';
        return doctest::String(s.c_str());
    }
};

namespace netpool::test {

/// How long a test coroutine may run before the test fails instead of hanging.
inline constexpr std::chrono::milliseconds default_guard{10000};

/// Decorator for test cases that need TLS: `TEST_CASE("tls: ..." * test::needs_tls())`.
/// Built without TLS they are skipped, and doctest's summary counts them as skipped, never
/// as passed (`--no-skip` runs them anyway, and they then fail with netpool's config_error).
inline doctest::skip needs_tls() { return doctest::skip(NETPOOL_HAS_TLS == 0); }

/// Runs `f`, which must throw netpool::config_error naming `field` and saying why TLS is
/// unavailable (NETPOOL_NO_TLS_REASON). For the checks of a build without TLS.
template <class F> void expect_no_tls_error(F&& f, const std::string& field) {
    try {
        f();
        FAIL("expected a config_error naming " << field);
    } catch (const netpool::config_error& e) {
        CHECK(e.field() == field);
        CHECK(std::string(e.what()).find(NETPOOL_NO_TLS_REASON) != std::string::npos);
    }
}

/// 127.0.0.1:`port`, plain TCP.
endpoint loopback(std::uint16_t port);

/// Pool options for tests: fast supervision (short backoff, 5 restarts in 10 s, 200 ms down
/// cooldown, 2 s connect and handshake timeouts), so that failures show within a test's guard.
pool_options quick_pool(std::size_t size, std::size_t overflow);

/// A directory for this process's files: a fresh directory under $NETPOOL_TEST_TMP (created
/// if missing) or under /tmp. Removed when the process exits.
const std::string& temp_dir();

/// Certificates made at test time with the `openssl` command, all EC P-256.
struct test_certs {
    std::string ca_cert;           ///< the CA clients trust (PEM)
    std::string server_cert;       ///< signed by ca_cert; SAN DNS:localhost, IP:127.0.0.1
    std::string server_key;
    std::string wrong_name_cert;   ///< signed by ca_cert; SAN DNS:wrong.example only
    std::string wrong_name_key;
    std::string other_ca_cert;     ///< a second CA that signed none of the above
};
/// Made once per process, on first use. Throws std::runtime_error (with openssl's output)
/// if the openssl command fails.
const test_certs& certs();

/// An echo::server running on its own io_context and thread. start/stop/restart keep the
/// port, so a test can kill the server and bring it back where clients expect it.
class server_thread {
public:
    explicit server_thread(echo::server_options opts = {});
    ~server_thread();
    server_thread(const server_thread&) = delete;
    server_thread& operator=(const server_thread&) = delete;

    echo::server& server() noexcept { return *server_; }
    std::uint16_t port() const noexcept { return server_->port(); }
    /// Listens again on the same port. Throws std::system_error if that fails.
    void start();
    /// Closes the listener and every open connection, and returns once all are closed
    /// (throws std::runtime_error if that takes longer than default_guard).
    void stop();
    void restart() {
        stop();
        start();
    }

private:
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::optional<echo::server> server_;
    std::thread thread_;
};

/// An io_context run by `n` threads, for clients that want real parallelism.
class io_threads {
public:
    explicit io_threads(unsigned n = 1);
    ~io_threads();
    io_threads(const io_threads&) = delete;
    io_threads& operator=(const io_threads&) = delete;

    asio::io_context& context() noexcept { return ioc_; }
    asio::any_io_executor executor() { return ioc_.get_executor(); }
    /// Stops the context and joins its threads; idempotent.
    void stop();

private:
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::vector<std::thread> threads_;
};

/// Open file descriptors of this process (entries of /proc/self/fd, not counting the one
/// used to read it).
std::size_t open_fd_count();

/// Doctest fixture: fails the test if it ends with more (or fewer) descriptors open than it
/// started with. Objects of the test body are destroyed before the check runs.
struct no_fd_leak {
    std::size_t fds_before = open_fd_count();
    ~no_fd_leak() { CHECK_MESSAGE(open_fd_count() == fds_before, "file descriptors leaked (or closed)"); }
};

namespace detail {
template <class T> struct outcome {
    std::exception_ptr error;
    std::optional<T> value;
};
template <> struct outcome<void> {
    std::exception_ptr error;
};
[[noreturn]] void fail_guard_elapsed(std::chrono::milliseconds guard);
}  // namespace detail

/// Runs `aw` on `ioc` in this thread until it completes and returns its result (rethrowing
/// its exception). If it has not completed within `guard`, it is cancelled, given a moment
/// to unwind, and the test fails, so a hung operation fails instead of hanging the suite.
/// `ioc` may be reused afterwards.
template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> aw, std::chrono::milliseconds guard = default_guard) {
    std::optional<detail::outcome<T>> out;
    asio::cancellation_signal cancel;
    auto on_done = [&](std::exception_ptr e, auto... v) {
        auto& o = out.emplace();
        o.error = e;
        if constexpr (!std::is_void_v<T>) {
            if (!e) o.value.emplace(std::move(v)...);
        }
        ioc.stop();  // leftover work (abandoned lookups, closing sockets) must not hold us
    };
    ioc.restart();
    asio::co_spawn(ioc, std::move(aw), asio::bind_cancellation_slot(cancel.slot(), on_done));
    ioc.run_for(guard);
    if (!out) {
        cancel.emit(asio::cancellation_type::terminal);
        ioc.restart();
        ioc.run_for(std::chrono::seconds(1));
        detail::fail_guard_elapsed(guard);
    }
    if (out->error) std::rethrow_exception(out->error);
    if constexpr (!std::is_void_v<T>) return std::move(*out->value);
}

/// Same, for a coroutine running on another thread's executor (e.g. an io_threads context
/// or a strand of it); this thread blocks until it completes or `guard` elapses.
template <class T>
T run_on(asio::any_io_executor ex, asio::awaitable<T> aw, std::chrono::milliseconds guard = default_guard) {
    auto promise = std::make_shared<std::promise<detail::outcome<T>>>();
    auto future = promise->get_future();
    auto cancel = std::make_shared<asio::cancellation_signal>();
    auto on_done = [promise](std::exception_ptr e, auto... v) {
        detail::outcome<T> o;
        o.error = e;
        if constexpr (!std::is_void_v<T>) {
            if (!e) o.value.emplace(std::move(v)...);
        }
        promise->set_value(std::move(o));
    };
    asio::co_spawn(ex, std::move(aw), asio::bind_cancellation_slot(cancel->slot(), on_done));
    if (future.wait_for(guard) != std::future_status::ready) {
        asio::post(ex, [cancel] { cancel->emit(asio::cancellation_type::terminal); });
        future.wait_for(std::chrono::seconds(1));
        detail::fail_guard_elapsed(guard);
    }
    auto o = future.get();
    if (o.error) std::rethrow_exception(o.error);
    if constexpr (!std::is_void_v<T>) return std::move(*o.value);
}

}  // namespace netpool::test
