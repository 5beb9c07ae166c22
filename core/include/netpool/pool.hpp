// A pool of connections to one endpoint, with one identity.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/error.hpp>
#include <netpool/events.hpp>
#include <netpool/options.hpp>
#include <netpool/stats.hpp>
#include <netpool/lease.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace netpool {

namespace detail {
class registry_impl;
class pool_impl;  // core/src: the pool's state and I/O, behind this header
struct cancel_ref;

// What the checkout and drain templates below need from the implementation, and nothing
// more. Not part of the API: names and signatures may change in any release.

/// A checkout that waits for a connection. The template derived from it (checkout_op_for)
/// owns the caller's handler; the pool queues the op by its link and completes it once.
class checkout_op {
public:
    checkout_op(const checkout_op&) = delete;
    checkout_op& operator=(const checkout_op&) = delete;
    virtual ~checkout_op();
    /// Called once by the pool (its lock may be held, on any thread): delivers `result`
    /// and `result_ec` on the handler's executor, never inline, and frees this op. If that
    /// never runs (the io_context is destroyed first), the op is freed with the posted
    /// function and its lease goes back to the pool.
    virtual void post_completion() noexcept = 0;

    /// The pool's queue record, constructed in place by the pool (pool.cpp checks the size).
    alignas(std::max_align_t) unsigned char link[64];
    std::shared_ptr<pool_impl> impl;  ///< keeps the pool alive until the completion ran
    std::shared_ptr<cancel_ref> cancel;  ///< shared with the cancellation slot, if connected
    std::error_code result_ec;
    netpool::lease result;  ///< declared after impl: released before the pool can go

protected:
    checkout_op() noexcept = default;
};

template <class Handler>
class checkout_op_for final : public checkout_op {
public:
    checkout_op_for(Handler&& h, const asio::any_io_executor& fallback)
        : handler_(std::move(h)), work_(asio::get_associated_executor(handler_, fallback)) {}
    Handler& handler() noexcept { return handler_; }

    void post_completion() noexcept override {
        auto ex = work_.get_executor();
        asio::post(ex, [self = std::unique_ptr<checkout_op_for>(this)]() mutable {
            netpool::lease l = std::move(self->result);
            const std::error_code ec = self->result_ec;
            Handler h = std::move(self->handler_);
            auto guard = std::move(self->work_);
            self.reset();
            std::move(h)(ec, std::move(l));
        });
    }

private:
    using work_executor = asio::associated_executor_t<Handler, asio::any_io_executor>;
    Handler handler_;
    asio::executor_work_guard<work_executor> work_;
};

/// A drain waiting for the last lease.
class drain_op {
public:
    drain_op(const drain_op&) = delete;
    drain_op& operator=(const drain_op&) = delete;
    virtual ~drain_op() = default;
    /// Delivers ec on the handler's executor and frees this op. Called once.
    virtual void post_completion(std::error_code ec) noexcept = 0;

protected:
    drain_op() noexcept = default;
};

template <class Handler>
class drain_op_for final : public drain_op {
public:
    drain_op_for(Handler&& h, const asio::any_io_executor& fallback)
        : handler_(std::move(h)), work_(asio::get_associated_executor(handler_, fallback)) {}
    void post_completion(std::error_code ec) noexcept override {
        auto ex = work_.get_executor();
        asio::post(ex, [self = std::unique_ptr<drain_op_for>(this), ec]() mutable {
            Handler h = std::move(self->handler_);
            auto guard = std::move(self->work_);
            self.reset();
            std::move(h)(ec);
        });
    }

private:
    using work_executor = asio::associated_executor_t<Handler, asio::any_io_executor>;
    Handler handler_;
    asio::executor_work_guard<work_executor> work_;
};

// core/src/pool.cpp
asio::any_io_executor executor_of(const pool_impl& p) noexcept;
/// A lease if a connection is free now, or ec set if the checkout fails at once (closed,
/// endpoint down, queue full). Otherwise returns an empty lease with `lk` holding the
/// pool's lock, so that queue_checkout() queues under the same lock: a miss locks once.
netpool::lease try_or_lock(pool_impl& p, std::error_code& ec, std::unique_lock<std::mutex>& lk);
std::shared_ptr<cancel_ref> make_cancel_ref();
void cancel_checkout(const std::weak_ptr<pool_impl>& p, cancel_ref& ref) noexcept;
/// With `lk` from try_or_lock held: queues op (or completes it) and unlocks.
void queue_checkout(pool_impl& p, std::unique_lock<std::mutex>& lk, checkout_op* op,
                    std::chrono::milliseconds timeout);
void start_drain(pool_impl& p, std::unique_ptr<drain_op> op, std::chrono::milliseconds deadline);

/// The miss path, under the lock try_or_lock left held: one allocation (the op) and no
/// second lock.
template <class Handler>
void queue_new_checkout(const std::shared_ptr<pool_impl>& p, std::unique_lock<std::mutex>& lk, Handler&& handler,
                        std::chrono::milliseconds timeout) {
    using op_type = checkout_op_for<std::decay_t<Handler>>;
    std::unique_ptr<op_type> op(new op_type(std::move(handler), executor_of(*p)));
    op->impl = p;
    auto slot = asio::get_associated_cancellation_slot(op->handler());
    if (slot.is_connected()) {
        op->cancel = make_cancel_ref();
        slot.assign([weak = std::weak_ptr<pool_impl>(p), ref = op->cancel](asio::cancellation_type) {
            cancel_checkout(weak, *ref);
        });
    }
    queue_checkout(*p, lk, op.release(), timeout);
}

template <class Handler>
void start_checkout(const std::shared_ptr<pool_impl>& p, Handler&& handler, std::chrono::milliseconds timeout) {
    std::error_code ec;
    std::unique_lock<std::mutex> lk;
    if (netpool::lease l = try_or_lock(*p, ec, lk); l || ec) {
        // Completed at once; still delivered through the handler's executor, never inline.
        auto ex = asio::get_associated_executor(handler, executor_of(*p));
        asio::post(ex, [h = std::move(handler), ec, l = std::move(l)]() mutable { std::move(h)(ec, std::move(l)); });
        return;
    }
    queue_new_checkout(p, lk, std::forward<Handler>(handler), timeout);
}

}  // namespace detail

/// A pool (poolboy's size + max_overflow) of connections to one endpoint through one
/// protocol adapter. Workers connect in the background and are supervised (see
/// pool_options). All member functions are thread-safe.
class pool {
public:
    /// Starts the base workers (unless options.lazy). Throws config_error for invalid
    /// options (the field is named) or an unreadable CA file ("tls.ca_file"), and, when
    /// netpool was built without TLS, for an endpoint whose tls is not none ("endpoint.tls").
    /// `name` appears in stats and events; empty means endpoint.to_string().
    pool(asio::any_io_executor ex, endpoint ep, any_adapter adapter, pool_options options = {},
         std::string name = {});
    /// Closes at once (as close()); leases still out stay valid until returned.
    ~pool();
    pool(pool&&) noexcept = default;
    pool& operator=(pool&&) noexcept = default;

    /// Asynchronous checkout. Completion signature: void(std::error_code, lease).
    /// Errors: errc::checkout_timeout, errc::pool_exhausted (waiting queue at max_waiters),
    /// errc::pool_closed, errc::cancelled, errc::endpoint_down_* (fails fast; the value
    /// names the last real cause; see last_failure()).
    /// Waiters are served first come, first served. Cancellation: per-operation
    /// (terminal, partial, total); a cancelled checkout never leaks a connection: one
    /// already handed over is checked back in when the completion is discarded.
    template <class Token = asio::default_completion_token_t<asio::any_io_executor>>
    auto async_checkout(std::chrono::milliseconds timeout, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code, lease)>(
            [](auto handler, const std::shared_ptr<detail::pool_impl>& impl, std::chrono::milliseconds t) {
                detail::start_checkout(impl, std::move(handler), t);
            },
            token, impl_, timeout);
    }
    /// async_checkout with options.checkout_timeout.
    template <class Token = asio::default_completion_token_t<asio::any_io_executor>>
    auto async_checkout(Token&& token = {}) {
        return async_checkout(default_timeout(), std::forward<Token>(token));
    }

    /// Coroutine checkout; takes a free connection without suspending when there is one.
    asio::awaitable<std::pair<std::error_code, lease>> checkout(std::chrono::milliseconds timeout);
    asio::awaitable<std::pair<std::error_code, lease>> checkout() { return checkout(default_timeout()); }

    /// Non-blocking: a lease if a connection is free now, else an empty lease and ec set
    /// (pool_exhausted, pool_closed or endpoint_down_*). Starts a worker if none is
    /// connecting, so a later try can succeed. Never waits; no allocation when it succeeds.
    lease try_checkout(std::error_code& ec);

    /// Blocking checkout for a thread that is not running the pool's io_context.
    /// Precondition: some other thread runs it (else this blocks until the timeout fails
    /// to fire). Throws std::logic_error if called on the pool's own strand.
    lease checkout_blocking(std::chrono::milliseconds timeout, std::error_code& ec);

    /// poolboy's transaction: checks out, runs `f(lease&)` (returning
    /// asio::awaitable<std::error_code>) and checks the connection back in on every path.
    /// If f throws, the connection is discarded (its state is unknown) and the exception
    /// propagates. f calls lease::discard() itself when an error it returns leaves the
    /// connection unusable. Returns the checkout error, or f's result.
    template <class F>
    asio::awaitable<std::error_code> transaction(F f, std::chrono::milliseconds timeout) {
        auto [ec, l] = co_await checkout(timeout);
        if (ec) co_return ec;
        try {
            co_return co_await f(l);
        } catch (...) {
            l.discard();
            throw;
        }
    }
    template <class F> asio::awaitable<std::error_code> transaction(F f) {
        return transaction(std::move(f), default_timeout());
    }

    /// Graceful drain: new checkouts fail with pool_closed, queued ones too; idle
    /// connections close now, leased ones when returned. At `deadline` leases still out
    /// have their sockets shut down under them. Completion: void(std::error_code), empty,
    /// or errc::operation_timeout if leases had to be aborted.
    template <class Token = asio::default_completion_token_t<asio::any_io_executor>>
    auto async_drain(std::chrono::milliseconds deadline, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code)>(
            [](auto handler, const std::shared_ptr<detail::pool_impl>& impl, std::chrono::milliseconds d) {
                using op_type = detail::drain_op_for<decltype(handler)>;
                detail::start_drain(*impl, std::make_unique<op_type>(std::move(handler), detail::executor_of(*impl)), d);
            },
            token, impl_, deadline);
    }
    /// Immediate close: as a drain whose deadline is now.
    void close();

    pool_stats stats() const;
    /// A cheap reading of the pool's load (one lock, no histograms), for routing between
    /// pools (pool_set) and health checks.
    struct load_info {
        std::size_t idle = 0, leased = 0, connecting = 0, waiters = 0, capacity = 0;
        bool endpoint_down = false;
    };
    load_info load() const;
    /// See events.hpp for what the hook may do.
    void set_event_hook(event_hook hook);
    const std::string& name() const noexcept;
    const endpoint& remote() const noexcept;
    /// The last connect/handshake failure (the cause behind endpoint_down), or empty.
    std::error_code last_failure() const;
    asio::any_io_executor get_executor() const noexcept;
    /// The pool's own adapter (the copy it was given), or null if it is not an A: for a
    /// lease holder's commands (smtp::adapter::send, a Redis command...) with the pool's
    /// configuration and shared records. Valid as long as the pool object or a
    /// std::shared_ptr to it (registry::pool_for) is held.
    template <class A> const A* adapter_as() const noexcept { return adapter().template target<A>(); }
    /// options.checkout_timeout
    std::chrono::milliseconds default_timeout() const noexcept;

private:
    friend class detail::registry_impl;
    /// For the registry: wraps and starts an impl already configured.
    explicit pool(std::shared_ptr<detail::pool_impl> impl);
    const any_adapter& adapter() const noexcept;
    std::shared_ptr<detail::pool_impl> impl_;
};

}  // namespace netpool
