// Several endpoints behind one checkout: a pool per endpoint, each with its own supervision
// (backoff, endpoint down, probes, stats), and a policy that picks among them.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/error.hpp>
#include <netpool/lease.hpp>
#include <netpool/options.hpp>
#include <netpool/pool.hpp>
#include <netpool/stats.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace netpool {

/// Which endpoint of a pool_set a checkout goes to. Endpoints that are down are skipped by
/// every policy, and a checkout whose endpoint goes down while it waits moves to the next.
enum class selection {
    priority,      ///< in the given order (MX-style): the first endpoint that is not down
    round_robin,   ///< each checkout starts one endpoint further
    least_loaded,  ///< the endpoint with the most free capacity (idle, then capacity - leased - waiting)
};

struct pool_set_options {
    selection policy = selection::priority;
    /// transaction(): how many other endpoints a request whose connection broke is tried on.
    std::size_t max_failovers = 2;
};

/// One pool per endpoint (the same adapter, options and, if set, clock), named
/// "NAME/ENDPOINT" (NAME: the set's name, default the first endpoint), so stats, events and
/// the Prometheus `pool` and `endpoint` labels are per endpoint.
/// Thread safety: all member functions are thread-safe. Object lifetimes: as pool (leases
/// outlive the set; release them before the io_context goes).
class pool_set {
public:
    /// Throws config_error for an empty list ("endpoints") or as pool's constructor does.
    pool_set(asio::any_io_executor ex, std::vector<endpoint> endpoints, any_adapter adapter, pool_options options = {},
             pool_set_options set = {}, std::string name = {});
    /// Closes every pool (as pool's destructor).
    ~pool_set();
    pool_set(const pool_set&) = delete;
    pool_set& operator=(const pool_set&) = delete;

    /// A connection from the endpoint the policy picks, waiting at most `timeout` in all.
    /// Errors: as pool::checkout; endpoint_down_* only when every endpoint is down (the first
    /// one's cause, by the policy's order).
    asio::awaitable<std::pair<std::error_code, lease>> checkout(std::chrono::milliseconds timeout);
    asio::awaitable<std::pair<std::error_code, lease>> checkout() { return checkout(default_timeout()); }

    /// For idempotent requests: checks out, runs `f(lease&)` (returning
    /// asio::awaitable<std::error_code>); if f fails and discarded the lease (the connection
    /// broke: the server died, reset, timed out), runs f again on another endpoint, up to
    /// max_failovers times, each with a fresh checkout within `timeout`. An error f returns
    /// without discarding the lease is f's answer and is returned as is. If f throws, the
    /// lease is discarded and the exception propagates.
    template <class F> asio::awaitable<std::error_code> transaction(F f, std::chrono::milliseconds timeout) {
        std::vector<bool> tried(pools_.size(), false);
        std::error_code last;
        for (std::size_t attempt = 0; attempt <= set_.max_failovers; ++attempt) {
            std::size_t from = 0;
            auto [ec, l] = co_await checkout_excluding(timeout, tried, from);
            if (ec) co_return last ? last : ec;
            try {
                last = co_await f(l);
            } catch (...) {
                l.discard();
                throw;
            }
            if (!last || !l.discarded()) co_return last;
            tried[from] = true;  // its connection broke: the next try goes elsewhere
        }
        co_return last;
    }
    template <class F> asio::awaitable<std::error_code> transaction(F f) {
        return transaction(std::move(f), default_timeout());
    }

    std::size_t size() const noexcept { return pools_.size(); }
    /// The pool of endpoint i (in the order given).
    pool& at(std::size_t i) { return *pools_.at(i); }
    /// One snapshot per endpoint, in the order given.
    std::vector<pool_stats> stats() const;
    void set_event_hook(const event_hook& hook);
    void close();
    std::chrono::milliseconds default_timeout() const noexcept { return timeout_; }

private:
    /// checkout(), skipping the endpoints marked in `skip`; `from` is the one it came from.
    asio::awaitable<std::pair<std::error_code, lease>> checkout_excluding(std::chrono::milliseconds timeout,
                                                                          const std::vector<bool>& skip,
                                                                          std::size_t& from);
    /// The endpoints in the order this checkout tries them.
    std::vector<std::size_t> order();

    std::vector<std::unique_ptr<pool>> pools_;
    pool_set_options set_;
    std::chrono::milliseconds timeout_;
    std::atomic<std::size_t> next_{0};
};

}  // namespace netpool
