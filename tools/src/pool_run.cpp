#include <netpool/tools/pool_run.hpp>

#include <netpool/pool.hpp>
#include <netpool/registry.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>

// See protocols/imap/src/adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine
// frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::tools {

warm_result warm_pool(asio::io_context& ioc, pool& p, std::size_t n) {
    using clock_type = std::chrono::steady_clock;
    warm_result out;
    if (n == 0) return out;
    const auto t0 = clock_type::now();
    std::size_t holding = 0, finished = 0;
    asio::steady_timer all_held(ioc, clock_type::time_point::max());
    auto one = [&]() -> asio::awaitable<void> {
        auto [ec, l] = co_await p.checkout();
        if (ec) ++out.failed;
        else ++holding;
        if (holding + out.failed == n) all_held.cancel();
        else co_await all_held.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        l.release();
        if (++finished == n) ioc.stop();
    };
    ioc.restart();
    for (std::size_t i = 0; i < n; ++i) asio::co_spawn(ioc, one(), asio::detached);
    ioc.run();
    out.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    return out;
}

void close_pool(asio::io_context& ioc, pool& p, std::chrono::milliseconds drain_for, std::chrono::milliseconds bound) {
    using clock_type = std::chrono::steady_clock;
    bool done = false;
    p.async_drain(drain_for, [&](std::error_code) { done = true; });
    ioc.restart();
    const auto until = clock_type::now() + bound;
    while (!done && clock_type::now() < until) ioc.run_for(std::chrono::milliseconds(50));
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(20));
}

void wait_for_connections(asio::io_context& ioc, const registry& reg, std::size_t n, std::chrono::milliseconds bound) {
    using clock_type = std::chrono::steady_clock;
    const auto until = clock_type::now() + bound;
    ioc.restart();
    while (clock_type::now() < until) {
        const auto pools = reg.stats();
        if (pools.empty()) return;
        std::size_t open = 0;
        for (const auto& s : pools) open += s.idle + s.leased;
        if (open >= n) return;
        ioc.run_for(std::chrono::milliseconds(5));
    }
}

void settle(asio::io_context& ioc, std::chrono::milliseconds d) {
    ioc.restart();
    ioc.run_for(d);
}

}  // namespace netpool::tools
