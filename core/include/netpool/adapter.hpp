// Protocol adapters: one class with a few coroutine hooks, and a type-erased form.
#pragma once

#include <netpool/connection.hpp>

#include <asio/awaitable.hpp>

#include <concepts>
#include <cstdint>
#include <limits>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool {

/// What the pool asks of a protocol. The pool has already connected the socket (and done
/// implicit TLS) before handshake(); every hook is bounded by the pool's timeouts and is
/// cancelled when its timeout expires. A hook reports failure by returning an error_code;
/// an exception thrown by a hook is caught by the worker (errc::adapter_exception) and the
/// worker is restarted. Hooks never see pool logic.
template <class A>
concept protocol_adapter = requires(A& a, connection& c) {
    { a.name() } -> std::convertible_to<std::string_view>;
    /// Greeting, capabilities, STARTTLS, authentication.
    { a.handshake(c) } -> std::same_as<asio::awaitable<std::error_code>>;
    /// Cheap liveness probe (SMTP NOOP, IMAP NOOP, an echo round trip).
    { a.health_check(c) } -> std::same_as<asio::awaitable<std::error_code>>;
    /// Bring the session back to a neutral state before reuse (SMTP RSET, IMAP re-SELECT).
    { a.reset(c) } -> std::same_as<asio::awaitable<std::error_code>>;
    /// Polite goodbye (QUIT, LOGOUT). Errors are ignored; the socket is closed after.
    { a.close(c) } -> std::same_as<asio::awaitable<void>>;
};

/// Optional: `bool needs_reset(const connection&) const`. Without it, reset() runs at every
/// checkin (unless the lease holder calls lease::skip_reset()).
template <class A>
concept has_needs_reset = requires(const A& a, const connection& c) {
    { a.needs_reset(c) } -> std::convertible_to<bool>;
};

namespace detail {
// One check per hook, so that a missing or misspelt one is named in the compiler's error.
template <class A> concept adapter_has_name = requires(A& a) {
    { a.name() } -> std::convertible_to<std::string_view>;
};
template <class A> concept adapter_has_handshake = requires(A& a, connection& c) {
    { a.handshake(c) } -> std::same_as<asio::awaitable<std::error_code>>;
};
template <class A> concept adapter_has_health_check = requires(A& a, connection& c) {
    { a.health_check(c) } -> std::same_as<asio::awaitable<std::error_code>>;
};
template <class A> concept adapter_has_reset = requires(A& a, connection& c) {
    { a.reset(c) } -> std::same_as<asio::awaitable<std::error_code>>;
};
template <class A> concept adapter_has_close = requires(A& a, connection& c) {
    { a.close(c) } -> std::same_as<asio::awaitable<void>>;
};
/// A member called needs_reset in any form: an overload set, or a single function whose
/// signature is not the one the pool calls (e.g. not const).
template <class A> concept adapter_names_needs_reset =
    requires { &A::needs_reset; } || requires(A& a, connection& c) { a.needs_reset(c); };
}  // namespace detail

/// Compile-time check with a readable error: `static_assert(netpool::check_adapter<my_adapter>());`
/// names the first hook that is missing or has the wrong signature. The pool's and
/// any_adapter's constructors make the same check.
template <class A>
consteval bool check_adapter() {
    static_assert(detail::adapter_has_name<A>,
                  "netpool adapter: missing `std::string_view name() const`");
    static_assert(detail::adapter_has_handshake<A>,
                  "netpool adapter: missing `asio::awaitable<std::error_code> handshake(netpool::connection&)`");
    static_assert(detail::adapter_has_health_check<A>,
                  "netpool adapter: missing `asio::awaitable<std::error_code> health_check(netpool::connection&)`");
    static_assert(detail::adapter_has_reset<A>,
                  "netpool adapter: missing `asio::awaitable<std::error_code> reset(netpool::connection&)`");
    static_assert(detail::adapter_has_close<A>,
                  "netpool adapter: missing `asio::awaitable<void> close(netpool::connection&)`");
    static_assert(!detail::adapter_names_needs_reset<A> || has_needs_reset<A>,
                  "netpool adapter: needs_reset must be `bool needs_reset(const netpool::connection&) const` "
                  "(a needs_reset of another signature would be ignored and reset() run at every checkin)");
    return protocol_adapter<A>;
}

/// Type-erased adapter: holds any protocol_adapter by shared ownership (one adapter object
/// serves every worker of a pool, so its hooks must not keep per-connection state in the
/// adapter itself: use connection::state()).
class any_adapter {
public:
    any_adapter() = default;

    /// Any class with the hooks of protocol_adapter. Not a constrained overload on purpose:
    /// passing something else fails here with a message naming the missing hook
    /// (check_adapter), not with "no known conversion to any_adapter".
    template <class A>
        requires(!std::same_as<std::decay_t<A>, any_adapter>)
    any_adapter(A a) : impl_(make_model(std::move(a))) {}

    explicit operator bool() const noexcept { return impl_ != nullptr; }
    std::string_view name() const { return impl_->name(); }
    asio::awaitable<std::error_code> handshake(connection& c) { return impl_->handshake(c); }
    asio::awaitable<std::error_code> health_check(connection& c) { return impl_->health_check(c); }
    asio::awaitable<std::error_code> reset(connection& c) { return impl_->reset(c); }
    asio::awaitable<void> close(connection& c) { return impl_->close(c); }
    bool needs_reset(const connection& c) const { return impl_->needs_reset(c); }

    /// The concrete adapter, or null if it is not an A.
    template <class A> A* target() noexcept {
        auto* m = dynamic_cast<model<A>*>(impl_.get());
        return m ? &m->a : nullptr;
    }
    template <class A> const A* target() const noexcept {
        const auto* m = dynamic_cast<const model<A>*>(impl_.get());
        return m ? &m->a : nullptr;
    }

private:
    template <class A> struct model;
    template <class A> static std::shared_ptr<model<A>> make_model(A a) {
        static_assert(check_adapter<A>());
        return std::make_shared<model<A>>(std::move(a));
    }
    struct concept_t {
        virtual ~concept_t() = default;
        virtual std::string_view name() const = 0;
        virtual asio::awaitable<std::error_code> handshake(connection&) = 0;
        virtual asio::awaitable<std::error_code> health_check(connection&) = 0;
        virtual asio::awaitable<std::error_code> reset(connection&) = 0;
        virtual asio::awaitable<void> close(connection&) = 0;
        virtual bool needs_reset(const connection&) const = 0;
    };
    template <class A> struct model final : concept_t {
        explicit model(A x) : a(std::move(x)) {}
        std::string_view name() const override { return a.name(); }
        asio::awaitable<std::error_code> handshake(connection& c) override { return a.handshake(c); }
        asio::awaitable<std::error_code> health_check(connection& c) override { return a.health_check(c); }
        asio::awaitable<std::error_code> reset(connection& c) override { return a.reset(c); }
        asio::awaitable<void> close(connection& c) override { return a.close(c); }
        bool needs_reset(const connection& c) const override {
            if constexpr (has_needs_reset<A>) return a.needs_reset(c);
            else return true;
        }
        A a;
    };
    std::shared_ptr<concept_t> impl_;
};

/// Parameters for building an adapter by name (e.g. from a config file or CLI flags).
using adapter_params = std::map<std::string, std::string, std::less<>>;
using adapter_factory = std::function<any_adapter(const adapter_params&)>;

/// Reading adapter_params in a factory. Each throws config_error naming `key` (never the
/// value of a secret) for a value it cannot take.
/// "true", "1", "yes" or "false", "0", "no".
bool param_bool(std::string_view key, std::string_view value);
/// A non-negative decimal integer up to `max`.
std::uint64_t param_count(std::string_view key, std::string_view value,
                          std::uint64_t max = std::numeric_limits<std::uint64_t>::max());
/// The value of the environment variable named `variable`: secrets travel as the name of a
/// variable, never as a parameter (parameters end up in logs, `ps` and shell history).
std::string param_secret_from_env(std::string_view key, std::string_view variable);

/// Protocols chosen by name at run time. Thread safety: add() before concurrent use;
/// make() and names() are safe to call concurrently.
class adapter_registry {
public:
    /// Throws std::invalid_argument if the name is already taken.
    void add(std::string name, adapter_factory factory);
    /// Throws std::invalid_argument naming the unknown protocol and listing known ones.
    any_adapter make(std::string_view name, const adapter_params& params = {}) const;
    std::vector<std::string> names() const;
    bool contains(std::string_view name) const;

    /// The process-wide registry; the shipped protocols add themselves to it through their
    /// libraries' register_*_adapter() functions.
    static adapter_registry& global();

private:
    std::map<std::string, adapter_factory, std::less<>> factories_;
};

}  // namespace netpool
