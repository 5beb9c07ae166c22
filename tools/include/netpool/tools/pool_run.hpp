// A pool's life around a measured load: its connections opened before the clock starts, and
// its close after, bounded.
#pragma once

#include <asio/io_context.hpp>

#include <chrono>
#include <cstddef>

namespace netpool {
class pool;
class registry;
}

namespace netpool::tools {

struct warm_result {
    std::size_t failed = 0;  ///< checkouts that failed
    double seconds = 0;
};

/// Opens `n` connections of `p` before timing: n coroutines check out at once and give back
/// only when all n hold a lease (so the pool must grow to n). Runs `ioc` (which must be
/// `p`'s) until then; returns how many checkouts failed and how long it took.
warm_result warm_pool(asio::io_context& ioc, pool& p, std::size_t n);

/// Drains `p` (leases out get `drain_for`) and runs `ioc` until it is closed, at most
/// `bound` in all, so that its connections say goodbye (QUIT, LOGOUT) before `ioc` goes.
void close_pool(asio::io_context& ioc, pool& p, std::chrono::milliseconds drain_for = std::chrono::seconds(2),
                std::chrono::milliseconds bound = std::chrono::seconds(5));

/// Runs `ioc` until the pools of `reg` hold `n` open connections (idle or leased) between
/// them, at most `bound`; at once when `reg` has no pool yet (nothing would ever open).
/// For a client's keyed pools, whose connections open in the background after the first
/// request, so that the clock starts with all of them logged in.
void wait_for_connections(asio::io_context& ioc, const registry& reg, std::size_t n,
                          std::chrono::milliseconds bound = std::chrono::seconds(10));

/// Runs `ioc` for `d` more: what a registry just destroyed needs to say goodbye on its
/// connections (QUIT, LOGOUT) before `ioc` goes.
void settle(asio::io_context& ioc, std::chrono::milliseconds d = std::chrono::milliseconds(500));

}  // namespace netpool::tools
