// The pool manager: named pools, pools keyed by endpoint + identity created on demand,
// a global cap on connections shared fairly across pools, stats for all, idle pools retired.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/options.hpp>
#include <netpool/pool.hpp>
#include <netpool/stats.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace netpool {

struct registry_options {
    /// Connections open across every pool of this registry; 0 = no cap. When the cap is
    /// reached, a pool below its fair share (cap / pools wanting connections) gets the
    /// next freed permit, and a pool above its share is asked to close an idle connection.
    std::size_t global_cap = 0;
    /// Upper bound on size + max_overflow of each keyed pool; 0 = as the options say.
    std::size_t per_key_limit = 0;
    /// Keyed pools with no lease and no waiter for this long are drained and removed;
    /// 0 = never. Named pools are removed only by stop_pool().
    std::chrono::milliseconds retire_idle_after{0};
    /// Keyed pools are named "host:port+tls#N", N being the pool's sequence number in this
    /// registry (1, 2, ...; a pool retired and made again gets a new one): the name, which
    /// is in stats, the Prometheus `pool` label and events, carries no credential material.
    /// true: "user@host:port+tls#N" (the user name, never anything derived from the secret).
    bool label_with_user = false;
    /// The clock for retire_idle_after and for the registry's pools made without one of
    /// their own (see clock.hpp); null: the steady clock.
    std::shared_ptr<pool_clock> clock;

    /// Throws config_error naming the field.
    void validate() const;
};

namespace detail { class registry_impl; }

/// Thread safety: all member functions are thread-safe. Object lifetimes: a named pool&
/// stays valid until stop_pool() removes that pool or the registry is destroyed; a keyed
/// pool is a shared handle that stays valid as long as it is held, also across suspensions
/// while the registry retires it (it is then closed: checkouts fail with pool_closed, and
/// last_failure() still answers); leases outlive all of these (see lease).
class registry {
public:
    explicit registry(asio::any_io_executor ex, registry_options options = {});
    /// Closes every pool at once.
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    /// Starts a named pool. Throws std::invalid_argument if the name is taken, and
    /// config_error for invalid options.
    pool& start_pool(std::string name, endpoint ep, any_adapter adapter, pool_options options = {});
    /// The named pool, or null.
    pool* find(std::string_view name);
    /// Drains the named pool (leases still out after `deadline` are aborted) and removes
    /// it. Returns false if there is no such pool.
    bool stop_pool(std::string_view name, std::chrono::milliseconds deadline = std::chrono::milliseconds{0});

    /// The pool for this endpoint and identity, created on first use with `make_adapter()`
    /// (called only when creating) and `options` (clamped to per_key_limit). A connection
    /// authenticated as one identity is never handed to a checkout for another: different
    /// credentials (by fingerprint, a keyed hash: see credentials::fingerprint) mean
    /// different pools. The pool's name: see registry_options::label_with_user.
    std::shared_ptr<pool> pool_for(const endpoint& ep, const credentials& cred,
                                   const std::function<any_adapter()>& make_adapter, const pool_options& options = {});

    /// Snapshots of every pool, named and keyed.
    std::vector<pool_stats> stats() const;
    /// Connections holding a permit of the global cap (0 if there is no cap).
    std::size_t permits_in_use() const;
    /// Number of pools.
    std::size_t size() const;
    /// Retire keyed pools idle longer than retire_idle_after (also run by an internal
    /// timer when that option is set). Returns how many were retired.
    std::size_t retire_idle();
    /// Retire every keyed pool now, leased or not: each is removed and drained (leases out
    /// may finish until `deadline`, then their sockets are shut down; new checkouts through a
    /// handle still held fail with pool_closed). Returns how many. A later pool_for() makes
    /// a new pool for the key.
    std::size_t retire_all(std::chrono::milliseconds deadline = std::chrono::milliseconds::max());

private:
    std::shared_ptr<detail::registry_impl> impl_;
};

}  // namespace netpool
