// Connecting a pooled connection: resolve, TCP connect, TCP_NODELAY, implicit TLS, and the
// STARTTLS upgrade adapters use. Every step bounded by a timeout.
#pragma once

#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>

#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>

#include <chrono>
#include <memory>
#include <system_error>

namespace netpool {

/// A client TLS context for `opts`: TLS 1.2+, peer verification on unless opts.verify is
/// false, CAs from opts.ca_file (or the system's default paths when empty).
/// Throws config_error("tls.ca_file", ...) if the CA file cannot be loaded.
std::shared_ptr<asio::ssl::context> make_client_tls_context(const tls_options& opts);

/// Resolves ep.host, connects c.io() to the first address that answers, sets TCP_NODELAY
/// and, for tls_mode::implicit, performs the TLS handshake (SNI and host-name check from
/// ep.tls_opts.server_name or ep.host).
/// Errors: errc::connect_timeout, errc::handshake_timeout, errc::tls_verify_failed,
/// errc::tls_handshake_failed, or the system error (connection_refused, host_not_found...).
/// Cancellation: per-operation cancellation of the awaiting coroutine closes the socket.
asio::awaitable<std::error_code> connect_transport(connection& c, std::chrono::milliseconds connect_timeout,
                                                   std::chrono::milliseconds handshake_timeout);

/// TLS handshake over an already connected plain stream (STARTTLS). Precondition:
/// !c.io().is_tls() and c.tls_context() != nullptr. Same errors as the TLS part above.
asio::awaitable<std::error_code> start_tls(connection& c, std::chrono::milliseconds handshake_timeout);

/// Runs `op` and fails with `on_timeout` if it has not finished within `timeout`: the
/// operation is cancelled (the one place a timer's operation_aborted becomes a timeout).
asio::awaitable<std::error_code> with_timeout(asio::awaitable<std::error_code> op, std::chrono::milliseconds timeout,
                                              std::error_code on_timeout);

}  // namespace netpool
