// One pool per key (endpoint + identity) for a protocol's client: what smtp::mailer,
// imap::client and redis::client are built on.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/error.hpp>
#include <netpool/lease.hpp>
#include <netpool/options.hpp>
#include <netpool/pool.hpp>
#include <netpool/registry.hpp>
#include <netpool/transport.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/strand.hpp>

#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace netpool {

/// Keyed pools of one adapter type over a registry. acquire() returns a handle on the pool
/// for (endpoint, credentials), made on first use with the caller's adapter and pool
/// options; the registry's options apply (per_key_limit, global_cap, retire_idle_after).
///
/// A handle owns a share of its pool and of the pool's adapter: a caller may hold it across
/// any suspension, also while the registry retires the pool (its checkouts then fail with
/// errc::pool_closed). Nothing is kept in the keyed_client itself, so nothing grows with the
/// number of keys ever seen.
///
/// Thread safety: all member functions are thread-safe. Object lifetimes: the registry
/// must outlive the keyed_client; handles may outlive both (not the io_context).
template <class Adapter>
class keyed_client {
    static_assert(check_adapter<Adapter>());

public:
    class handle {
    public:
        netpool::pool& pool() const noexcept { return *pool_; }
        /// The pool's adapter (pool::adapter_as), or, for a pool someone made for this key
        /// with another adapter type, one made for this handle from the caller's factory:
        /// its commands work the same; its failure records are its own.
        const Adapter& adapter() const noexcept { return *adapter_; }
        /// Whether adapter() is the pool's own (its failure records are the pool's).
        bool adapter_is_pools() const noexcept { return own_ == nullptr; }
        std::shared_ptr<netpool::pool> shared_pool() const noexcept { return pool_; }

        asio::awaitable<std::pair<std::error_code, lease>> checkout() const { return pool_->checkout(); }

        /// Why a checkout failed, for a caller's result. "Endpoint down" alone does not tell
        /// an operator to fix the password: when the pool is endpoint down, or the checkout
        /// timed out while workers kept failing, `ec` becomes the cause the pool recorded if
        /// it is of the protocol's `category` (e.g. smtp::errc::auth_failed), and `detail`
        /// what the adapter recorded (its last_handshake_failure(), when it has one: "AUTH
        /// PLAIN: 535 5.7.8 ...") or else "last failure: <cause>". A TLS mode that does not
        /// match the port's (errc::tls_not_offered, errc::no_greeting) becomes `ec` too. Never
        /// credentials (the adapter's record is redacted).
        struct failure {
            std::error_code ec;
            std::string detail;
            bool protocol_cause = false;  ///< ec is the pool's recorded cause, of the protocol's category
        };
        failure explain_checkout_failure(std::error_code checkout_ec, const std::error_category& category) const {
            failure f{checkout_ec, {}, false};
            if (checkout_ec != condition::endpoint_down && checkout_ec != errc::checkout_timeout) return f;
            const std::error_code cause = pool_->last_failure();
            f.protocol_cause = cause && cause.category() == category;
            if (f.protocol_cause) f.ec = cause;
            // A TLS mode that does not match the port's says more than "endpoint down".
            if (cause == errc::tls_not_offered || cause == errc::no_greeting) f.ec = cause;
            if constexpr (requires(const Adapter& a) { { a.last_handshake_failure() } -> std::convertible_to<std::string>; }) {
                if (f.protocol_cause || checkout_ec == condition::endpoint_down)
                    f.detail = adapter_->last_handshake_failure();
            }
            // A checkout that timed out while workers kept failing (a server that never
            // greets, a refused port): say why, whatever the category of the cause.
            if (f.detail.empty() && cause) f.detail = "last failure: " + cause.message();
            return f;
        }

    private:
        friend class keyed_client;
        std::shared_ptr<netpool::pool> pool_;
        std::shared_ptr<const Adapter> own_;
        const Adapter* adapter_ = nullptr;
    };

    explicit keyed_client(registry& reg) noexcept : reg_(&reg) {}

    /// The pool for (ep, cred). `make_adapter()` (returning an Adapter) is called only when
    /// the pool is created, or when the pool for this key holds another adapter type.
    /// Throws what the registry throws (config_error for invalid options or, without TLS,
    /// a TLS endpoint) and what make_adapter throws.
    template <class MakeAdapter>
    handle acquire(const endpoint& ep, const credentials& cred, const pool_options& options,
                   MakeAdapter&& make_adapter) const {
        handle h;
        h.pool_ = reg_->pool_for(
            ep, cred, [&]() -> any_adapter { return any_adapter(Adapter(make_adapter())); }, options);
        h.adapter_ = h.pool_->template adapter_as<Adapter>();
        if (h.adapter_ == nullptr) {
            h.own_ = std::make_shared<const Adapter>(make_adapter());
            h.adapter_ = h.own_.get();
        }
        return h;
    }

    registry& get_registry() const noexcept { return *reg_; }

private:
    registry* reg_;
};

/// Runs `op` on a new strand of `ex` and blocks the calling thread until it completes;
/// returns its result or rethrows its exception. For the *_blocking functions of clients.
/// Throws std::logic_error (naming `who`) when the calling thread runs `ex`'s execution
/// context: it would wait for itself. Precondition: another thread runs it.
template <class T>
T run_blocking(const asio::any_io_executor& ex, asio::awaitable<T> op, const char* who) {
    if (running_in_this_thread(ex))
        throw std::logic_error(std::string(who) +
                               " called from a thread running the registry's executor: it would wait for itself; "
                               "co_await the asynchronous form there");
    auto done = std::make_shared<std::promise<T>>();
    auto result = done->get_future();
    asio::co_spawn(asio::make_strand(ex), std::move(op), [done](std::exception_ptr ep, T r) {
        if (ep) done->set_exception(ep);
        else done->set_value(std::move(r));
    });
    return result.get();
}

}  // namespace netpool
