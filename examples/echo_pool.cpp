// echo_pool: the smallest complete use of netpool.
//
// Starts netpool's echo server in-process on 127.0.0.1 (an ephemeral port), opens a pool
// of 4 connections (plus up to 4 overflow connections under load), runs 100 concurrent
// requests through it, and prints the pool's stats as JSON. Exit status 0 when every
// request got its payload back.
//
// Everything runs on one thread here; a pool is thread-safe, so running the io_context on
// several threads works the same way.
#include <netpool/pool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <system_error>

namespace {

constexpr int request_count = 100;

// One request: check a connection out, use it, and let the lease give it back.
asio::awaitable<std::error_code> echo_once(netpool::pool& pool, const netpool::echo::adapter& echo, int i) {
    auto [ec, lease] = co_await pool.checkout();
    if (ec) co_return ec;  // checkout_timeout, pool_exhausted, endpoint_down_*, ...

    const std::string payload = "request " + std::to_string(i);
    std::string reply;
    ec = co_await echo.request(*lease, payload, reply);
    if (ec) {
        lease.discard();  // the connection's state is unknown: close it, do not reuse it
        co_return ec;
    }
    if (reply != payload) co_return netpool::errc::protocol_error;
    co_return std::error_code{};
}  // ~lease: the connection goes back to the pool (or to the next waiter)

}  // namespace

int main() {
    asio::io_context io;

    netpool::echo::server server(io.get_executor(), {});  // 127.0.0.1, port 0
    server.start();

    netpool::endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = server.port();

    netpool::pool_options opts;
    opts.size = 4;
    opts.max_overflow = 4;
    opts.checkout_timeout = std::chrono::seconds(5);

    // The adapter is stateless: the pool gets a copy for its hooks (greeting, health
    // check), and the requests below use this one.
    const netpool::echo::adapter echo;
    netpool::pool pool(io.get_executor(), ep, echo, opts, "echo-example");

    int remaining = request_count;
    int failures = 0;
    for (int i = 0; i < request_count; ++i) {
        asio::co_spawn(io, echo_once(pool, echo, i), [&](std::exception_ptr e, std::error_code ec) {
            if (e || ec) {
                ++failures;
                std::cerr << "request failed: " << (e ? "exception" : ec.message()) << '\n';
            }
            if (--remaining == 0) {
                // All done: report, then shut down so io.run() returns.
                std::cout << netpool::to_json(pool.stats()) << '\n';
                pool.async_drain(std::chrono::seconds(1), [&](std::error_code) { server.stop(); });
            }
        });
    }

    io.run();
    if (failures != 0) {
        std::cerr << failures << " of " << request_count << " requests failed\n";
        return 1;
    }
    return 0;
}
