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
#include <netpool/detail/pool_impl.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace netpool {

namespace detail { class registry_impl; }

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
            [](auto handler, std::shared_ptr<detail::pool_impl> impl, std::chrono::milliseconds t) {
                detail::pool_impl::start_checkout(std::move(impl), std::move(handler), t);
            },
            token, impl_, timeout);
    }
    /// async_checkout with options.checkout_timeout.
    template <class Token = asio::default_completion_token_t<asio::any_io_executor>>
    auto async_checkout(Token&& token = {}) {
        return async_checkout(impl_->options().checkout_timeout, std::forward<Token>(token));
    }

    /// Coroutine checkout; takes a free connection without suspending when there is one.
    asio::awaitable<std::pair<std::error_code, lease>> checkout(std::chrono::milliseconds timeout);
    asio::awaitable<std::pair<std::error_code, lease>> checkout() { return checkout(impl_->options().checkout_timeout); }

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
        return transaction(std::move(f), impl_->options().checkout_timeout);
    }

    /// Graceful drain: new checkouts fail with pool_closed, queued ones too; idle
    /// connections close now, leased ones when returned. At `deadline` leases still out
    /// have their sockets shut down under them. Completion: void(std::error_code), empty,
    /// or errc::operation_timeout if leases had to be aborted.
    template <class Token = asio::default_completion_token_t<asio::any_io_executor>>
    auto async_drain(std::chrono::milliseconds deadline, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code)>(
            [](auto handler, std::shared_ptr<detail::pool_impl> impl, std::chrono::milliseconds d) {
                detail::pool_impl::start_drain(std::move(impl), std::move(handler), d);
            },
            token, impl_, deadline);
    }
    /// Immediate close: as a drain whose deadline is now.
    void close();

    pool_stats stats() const;
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
    template <class A> const A* adapter_as() const noexcept { return impl_->adapter().template target<A>(); }

private:
    friend class detail::registry_impl;
    /// For the registry: wraps and starts an impl already configured.
    explicit pool(std::shared_ptr<detail::pool_impl> impl);
    std::shared_ptr<detail::pool_impl> impl_;
};

}  // namespace netpool
