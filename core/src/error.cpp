// The netpool error category, its conditions, and the mapping from real causes to
// endpoint_down values.
//
// Asio is deliberately not included here: its categories are recognised by name, so this
// file stays cheap to compile and does not tie the error model to Asio's headers.
#include <netpool/error.hpp>

#include <cstring>

namespace netpool {
namespace {

bool is_endpoint_down(int v) noexcept {
    return v >= static_cast<int>(errc::endpoint_down_refused) &&
           v <= static_cast<int>(errc::endpoint_down_other);
}

bool category_named(const std::error_code& ec, const char* name) noexcept {
    return std::strcmp(ec.category().name(), name) == 0;
}

// True if `ec` is the OS error `e`, however it is categorised. Asio 1.22's own
// "asio.system" category maps none of its values to std::errc conditions (the mapping is
// guarded by a macro that 1.22 never defines), so `ec == std::errc::timed_out` is false
// for Asio's socket errors. Its values are errno values on POSIX, so compare those.
bool is_os_error(const std::error_code& ec, std::errc e) noexcept {
    if (ec == e) return true;
    return ec.value() == static_cast<int>(e) && category_named(ec, "asio.system");
}

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "netpool"; }

    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
        case errc::checkout_timeout: return "checkout timed out waiting for a connection";
        case errc::pool_exhausted: return "pool exhausted: no connection available and the wait queue is full";
        case errc::pool_closed: return "pool is draining or closed";
        case errc::cancelled: return "checkout cancelled";
        case errc::endpoint_down_refused: return "endpoint down (last cause: connection refused)";
        case errc::endpoint_down_timeout: return "endpoint down (last cause: connect or handshake timed out)";
        case errc::endpoint_down_tls: return "endpoint down (last cause: TLS handshake or verification failed)";
        case errc::endpoint_down_handshake: return "endpoint down (last cause: protocol handshake rejected)";
        case errc::endpoint_down_resolve: return "endpoint down (last cause: host name did not resolve)";
        case errc::endpoint_down_other: return "endpoint down (last cause: network error)";
        case errc::connect_timeout: return "connect timed out";
        case errc::handshake_timeout: return "handshake timed out";
        case errc::tls_verify_failed: return "TLS certificate or host name verification failed";
        case errc::tls_handshake_failed: return "TLS handshake failed";
        case errc::handshake_rejected: return "server rejected the protocol handshake";
        case errc::health_check_failed: return "health check failed";
        case errc::protocol_error: return "protocol error: unexpected data from the server";
        case errc::frame_too_large: return "frame or reply line too large";
        case errc::connection_closed: return "connection closed by the server";
        case errc::operation_timeout: return "operation timed out";
        case errc::adapter_exception: return "protocol adapter threw an exception";
        case errc::tls_not_offered: return "the server answered the TLS handshake in clear text (not a TLS port)";
        case errc::no_greeting: return "the server sent no greeting in time";
        }
        // A value cast from an int the enum does not know (e.g. from a newer peer library).
        return "unknown netpool error " + std::to_string(v);
    }
};

class condition_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "netpool.condition"; }

    std::string message(int v) const override {
        switch (static_cast<condition>(v)) {
        case condition::endpoint_down: return "endpoint down";
        case condition::timeout: return "timed out";
        case condition::handshake_rejected: return "server rejected the protocol handshake";
        case condition::credentials_rejected: return "server refused the credentials";
        }
        return "unknown netpool condition " + std::to_string(v);
    }

    bool equivalent(const std::error_code& ec, int cond) const noexcept override {
        switch (static_cast<condition>(cond)) {
        case condition::endpoint_down:
            return ec.category() == netpool_category() && is_endpoint_down(ec.value());
        case condition::timeout:
            if (ec.category() == netpool_category()) {
                // endpoint_down_timeout is deliberately not a timeout: the checkout failed
                // fast, it did not wait. Callers retrying on "timeout" should not hammer a
                // down endpoint.
                switch (static_cast<errc>(ec.value())) {
                case errc::checkout_timeout:
                case errc::connect_timeout:
                case errc::handshake_timeout:
                case errc::no_greeting:
                case errc::operation_timeout: return true;
                default: return false;
                }
            }
            // ETIMEDOUT from the OS. Comparing with a std::errc asks the generic
            // category, never this one, so this does not recurse.
            return is_os_error(ec, std::errc::timed_out);
        case condition::handshake_rejected:
            if (ec.category() == netpool_category())
                return ec.value() == static_cast<int>(errc::handshake_rejected) ||
                       ec.value() == static_cast<int>(errc::protocol_error);
            // A protocol's category says so through its default condition. Comparing two
            // error_conditions compares category and value only: no recursion into here.
            return ec.category().default_error_condition(ec.value()) == std::error_condition(cond, *this);
        case condition::credentials_rejected:
            // Only a protocol's category knows which of its codes these are: it answers through
            // its own equivalent(int, condition), which the comparison asks first.
            return false;
        }
        return false;
    }
};

}  // namespace

const std::error_category& netpool_category() noexcept {
    static const error_category_impl instance;
    return instance;
}

const std::error_category& netpool_condition_category() noexcept {
    static const condition_category_impl instance;
    return instance;
}

errc endpoint_down_for(const std::error_code& cause) noexcept {
    if (cause.category() == netpool_category()) {
        const int v = cause.value();
        // Already an endpoint_down value (e.g. a probe failing with the stored cause).
        if (is_endpoint_down(v)) return static_cast<errc>(v);
        switch (static_cast<errc>(v)) {
        case errc::connect_timeout:
        case errc::handshake_timeout:
        case errc::no_greeting:
        case errc::operation_timeout: return errc::endpoint_down_timeout;  // e.g. an adapter's own command timeout in its handshake
        case errc::tls_verify_failed:
        case errc::tls_not_offered:
        case errc::tls_handshake_failed: return errc::endpoint_down_tls;
        case errc::handshake_rejected:
        case errc::protocol_error: return errc::endpoint_down_handshake;
        default: return errc::endpoint_down_other;
        }
    }
    // A protocol's own handshake failure (e.g. smtp::errc::auth_failed).
    if (cause == condition::handshake_rejected) return errc::endpoint_down_handshake;
    if (is_os_error(cause, std::errc::connection_refused)) return errc::endpoint_down_refused;
    if (is_os_error(cause, std::errc::timed_out)) return errc::endpoint_down_timeout;
    // "asio.ssl" carries OpenSSL's error codes; "asio.ssl.stream" carries truncation and
    // unexpected-result errors raised inside the TLS layer.
    if (category_named(cause, "asio.ssl") || category_named(cause, "asio.ssl.stream"))
        return errc::endpoint_down_tls;
    // Resolver failures. "asio.misc" is not listed: it holds eof and not_found, which
    // say nothing about name resolution.
    if (category_named(cause, "asio.netdb") || category_named(cause, "asio.addrinfo"))
        return errc::endpoint_down_resolve;
    return errc::endpoint_down_other;
}

// Any error seen on a connection leaves its protocol state unknown (a reply may be half
// read, a command half written), and resynchronising is protocol-specific and rarely worth
// it: discarding and reconnecting is always correct, so every error is fatal.
bool is_connection_fatal(const std::error_code& ec) noexcept { return static_cast<bool>(ec); }

}  // namespace netpool
