// The pool's I/O side: workers (one coroutine per connection), waiters, timers. Decisions
// are pool_state's; this file performs them. Internal: not installed; the public pool.hpp
// reaches it through the few functions it declares in netpool::detail.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/events.hpp>
#include <netpool/options.hpp>
#include <netpool/pool.hpp>
#include <netpool/detail/pool_state.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include <netpool/lease.hpp>

namespace asio::ssl { class context; }

namespace netpool::detail {

struct worker;

/// Reference from a cancellation slot to its checkout; null before it is queued and once it
/// completed. Both fields are guarded by the pool's mutex.
struct cancel_ref {
    checkout_op* op = nullptr;
    bool cancelled = false;  ///< a cancellation arrived before the op was queued
};

class pool_impl final : public io_sink, public std::enable_shared_from_this<pool_impl> {
public:
    pool_impl(asio::any_io_executor ex, endpoint ep, any_adapter adapter, pool_options opts, std::string name);
    ~pool_impl() override;

    void start();
    const pool_options& options() const noexcept { return state_.options(); }
    const std::string& name() const noexcept { return state_.name(); }
    const endpoint& remote() const noexcept { return endpoint_; }
    asio::any_io_executor executor() const noexcept { return ex_; }
    const any_adapter& adapter() const noexcept { return adapter_; }

    /// try_checkout: a lease if a connection is free now, else ec says why (a miss counts).
    netpool::lease try_now(std::error_code& ec);

    /// The fast path of the waiting checkouts: a lease if a connection is free now; on a
    /// miss returns with `lk` holding the lock (see detail::try_or_lock).
    netpool::lease try_or_lock(std::error_code& ec, std::unique_lock<std::mutex>& lk);
    /// Under `lk`: queue op, or complete it at once; unlocks.
    void enqueue(std::unique_lock<std::mutex>& lk, checkout_op* op, std::chrono::milliseconds timeout);
    void cancel_checkout(cancel_ref& ref) noexcept;
    void add_drain(std::unique_ptr<drain_op> d, std::chrono::milliseconds deadline);

    void checkin(worker& w, bool discard, bool skip_reset) noexcept;
    void close_now();
    pool_stats stats() const;
    netpool::pool::load_info load() const;
    void set_event_hook(event_hook h);
    std::error_code last_failure() const;
    /// Registry support: a permit of the global cap became available.
    void permit_available();
    /// Before start(): connections of this pool take permits from `p`, kept alive here.
    void set_permit_source(std::shared_ptr<permit_source> p);
    void shed_idle();

    netpool::lease make_lease(node_rec& n);

    // io_sink
    void spawn(node_rec& n) override;
    void wake(node_rec& n) override;
    void complete(waiter_rec& w, node_rec* n, std::error_code ec) override;
    void arm(time_point t) override;
    void abort_lease(node_rec& n) override;
    void drained(std::error_code ec) override;

private:
    /// One worker's coroutine: ask pool_state, act, report, until told to exit.
    static asio::awaitable<void> run_worker(std::shared_ptr<pool_impl> p, std::shared_ptr<worker> w);
    /// The pool's time (the injected clock, or the steady clock) and its cheaper reading.
    time_point now() const noexcept;
    time_point coarse_now() const noexcept;
    /// A manual clock moved: tick, and wake every worker to re-evaluate its wait.
    void clock_moved();
    /// Records a checkout's result in its op (lock held), without posting it.
    void record(checkout_op& op, node_rec* n, std::error_code ec) noexcept;
    /// Delivers a completed checkout (lock held): the lease is made here, posted with op.
    void finish(checkout_op& op, node_rec* n, std::error_code ec) noexcept;
    void on_timer(std::error_code ec);

    asio::any_io_executor ex_;
    asio::strand<asio::any_io_executor> strand_;
    endpoint endpoint_;
    any_adapter adapter_;
    std::shared_ptr<asio::ssl::context> tls_ctx_;
    std::shared_ptr<permit_source> permits_;
    std::shared_ptr<pool_clock> clock_;  // null: the steady clock (declared before state_)
    bool manual_ = false;                // clock_ does not move by itself
    std::shared_ptr<void> clock_sub_;
    std::unordered_set<worker*> workers_;  // every running worker; guarded by mu_
    mutable std::mutex mu_;
    pool_state state_;
    asio::steady_timer timer_;
    std::vector<std::unique_ptr<drain_op>> drains_;
    bool drained_ = false;
    std::error_code drained_ec_;
};

}  // namespace netpool::detail

