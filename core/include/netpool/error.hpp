// netpool error codes: everything the network, a server or the pool itself can cause.
// Programmer and configuration mistakes throw instead (std::invalid_argument, std::logic_error).
#pragma once

#include <string>
#include <system_error>

namespace netpool {

/// Error values of the netpool category. Zero is never used.
enum class errc {
    // Checkout outcomes.
    checkout_timeout = 1,  ///< no connection became available before the checkout's deadline
    pool_exhausted,        ///< the waiting queue is at `max_waiters`, or try_checkout found nothing
    pool_closed,           ///< the pool is draining or closed; no new leases
    cancelled,             ///< the checkout was cancelled by its caller

    // Endpoint down: checkouts fail fast; the value names the last real cause.
    endpoint_down_refused,    ///< endpoint down; last cause: connection refused
    endpoint_down_timeout,    ///< endpoint down; last cause: connect or handshake timed out
    endpoint_down_tls,        ///< endpoint down; last cause: TLS handshake or verification failed
    endpoint_down_handshake,  ///< endpoint down; last cause: protocol handshake rejected
    endpoint_down_resolve,    ///< endpoint down; last cause: host name did not resolve
    endpoint_down_other,      ///< endpoint down; last cause: another network error

    // Worker-level failures (reported in events and through adapters).
    connect_timeout,        ///< TCP connect did not complete within `connect_timeout`
    handshake_timeout,      ///< TLS or protocol handshake did not complete within `handshake_timeout`
    tls_verify_failed,      ///< the server certificate or host name did not verify
    tls_handshake_failed,   ///< TLS handshake failed for another reason
    handshake_rejected,     ///< the server refused the protocol handshake (e.g. bad greeting, auth)
    health_check_failed,    ///< the health check on a connection failed
    protocol_error,         ///< the server sent something the protocol does not allow
    frame_too_large,        ///< a frame or reply line exceeded the configured maximum
    connection_closed,      ///< the server closed the connection mid-exchange
    operation_timeout,      ///< a request on a leased connection timed out
    adapter_exception,      ///< an adapter hook threw an exception; contained to its worker
    /// The server answered the TLS handshake in clear text: the port does not speak TLS at
    /// once (tls_mode::implicit against a plain or STARTTLS port). Final, as a certificate
    /// that does not verify: the endpoint goes down at once.
    tls_not_offered,
    /// No greeting within the adapter's greeting timeout. A port that expects TLS at once
    /// (implicit TLS) says nothing to a client that waits for a clear-text greeting; when the
    /// endpoint's first connect ends so, the endpoint goes down at once (see supervisor).
    no_greeting,
};

/// Conditions that group several error values.
enum class condition {
    endpoint_down = 1,  ///< any errc::endpoint_down_*
    timeout,            ///< checkout_timeout, connect_timeout, handshake_timeout, operation_timeout
    /// The server refused the protocol handshake: errc::handshake_rejected,
    /// errc::protocol_error, and any protocol's own error whose category's
    /// default_error_condition() maps to this (e.g. smtp::errc::auth_failed).
    handshake_rejected,
    /// The server refused the credentials (a wrong password, an unknown or disabled user):
    /// a protocol's code whose category says so through equivalent() (smtp::errc::auth_failed,
    /// imap::errc::login_failed, redis::errc::auth_failed). A pool never repeats such a login on
    /// its own: its endpoint goes down at once and is not probed (see pool_options).
    credentials_rejected,
};

const std::error_category& netpool_category() noexcept;
const std::error_category& netpool_condition_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), netpool_category()}; }
inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), netpool_condition_category()};
}

/// Maps a real failure cause to the endpoint_down value that carries it. Any cause
/// equivalent to condition::handshake_rejected gives endpoint_down_handshake.
errc endpoint_down_for(const std::error_code& cause) noexcept;

/// True for errors a worker should treat as "the connection is no longer usable".
bool is_connection_fatal(const std::error_code& ec) noexcept;

}  // namespace netpool

template <> struct std::is_error_code_enum<netpool::errc> : std::true_type {};
template <> struct std::is_error_condition_enum<netpool::condition> : std::true_type {};
