// Connecting a pooled connection: resolve, TCP connect, TCP_NODELAY, implicit TLS, and the
// STARTTLS upgrade adapters use. Every step bounded by a timeout.
//
// Built without TLS (NETPOOL_HAS_TLS 0 in netpool/config.hpp), the TLS entry points still
// exist, so code using them compiles, but they throw config_error: asking a plain-TCP-only
// netpool for TLS is a configuration mistake, and it is reported as one, never as a
// network error that would be retried.
#pragma once

#include <netpool/config.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>

#include <asio/awaitable.hpp>
#if NETPOOL_HAS_TLS
#include <asio/ssl/context.hpp>
#else
namespace asio::ssl { class context; }
#endif

#include <chrono>
#include <memory>
#include <system_error>

namespace netpool {

/// A client TLS context for `opts`: TLS 1.2+, peer verification on unless opts.verify is
/// false, CAs from opts.ca_file (or the system's default paths when empty).
/// Throws config_error("tls.ca_file", ...) if the CA file cannot be loaded.
/// Without TLS: throws config_error("tls", NETPOOL_NO_TLS_REASON).
std::shared_ptr<asio::ssl::context> make_client_tls_context(const tls_options& opts);

/// Resolves ep.host, connects c.io() to the first address that answers, sets TCP_NODELAY
/// and, for tls_mode::implicit, performs the TLS handshake (SNI and host-name check from
/// ep.tls_opts.server_name or ep.host).
/// Errors: errc::connect_timeout, errc::handshake_timeout, errc::tls_verify_failed,
/// errc::tls_handshake_failed, or the system error (connection_refused, host_not_found...).
/// Cancellation: per-operation cancellation of the awaiting coroutine closes the socket.
/// Without TLS: an endpoint whose tls is not tls_mode::none throws
/// config_error("endpoint.tls", ...) before anything is opened.
asio::awaitable<std::error_code> connect_transport(connection& c, std::chrono::milliseconds connect_timeout,
                                                   std::chrono::milliseconds handshake_timeout);

/// TLS handshake over an already connected plain stream (STARTTLS). Precondition:
/// !c.io().is_tls() and c.tls_context() != nullptr. Same errors as the TLS part above.
/// Without TLS: closes the stream (the peer expects a handshake) and throws
/// config_error("tls", NETPOOL_NO_TLS_REASON).
asio::awaitable<std::error_code> start_tls(connection& c, std::chrono::milliseconds handshake_timeout);

/// Runs `op` and fails with `on_timeout` if it has not finished within `timeout`: the
/// operation is cancelled (the one place a timer's operation_aborted becomes a timeout).
asio::awaitable<std::error_code> with_timeout(asio::awaitable<std::error_code> op, std::chrono::milliseconds timeout,
                                              std::error_code on_timeout);

}  // namespace netpool
