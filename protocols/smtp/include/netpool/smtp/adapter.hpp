// The SMTP protocol adapter: session set-up for the pool (greeting, EHLO, STARTTLS, AUTH),
// NOOP/RSET/QUIT, and one mail transaction on a leased connection. The types it takes and
// returns (client_options, envelope, send_result, reply...) are in types.hpp.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/kit/failure_record.hpp>
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/types.hpp>

#include <asio/awaitable.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace netpool::smtp {

/// Speaks SMTP for a pool. Satisfies netpool::protocol_adapter. One adapter object (and its
/// copies, which share the failure record) serves every connection of a pool; session state
/// (a kit::session, capabilities) lives in the connection's state.
///
/// Errors from the hooks: smtp::errc values (the handshake ones are equivalent to
/// netpool::condition::handshake_rejected), netpool::errc::protocol_error /
/// frame_too_large for replies that break the grammar or reply_limits,
/// connection_closed when the server goes away, operation_timeout when a reply does not
/// come within command_timeout, and socket/TLS errors as they come.
/// Thread safety: const member functions may run concurrently on different connections;
/// one connection is used by one coroutine at a time.
/// Cancellation: per-operation cancellation is supported; the connection is then in an
/// unknown state and must be discarded (the pool does that for its hooks).
class adapter {
public:
    /// Throws config_error if options.validate() does.
    explicit adapter(client_options options = {});

    std::string_view name() const noexcept { return "smtp"; }
    const client_options& options() const noexcept { return options_; }

    /// Greeting (220), EHLO (HELO fallback on 5xx), STARTTLS + EHLO again (tls_mode::starttls),
    /// AUTH when credentials are set. Without TLS support (NETPOOL_HAS_TLS 0), an endpoint
    /// with tls_mode::starttls throws config_error("endpoint.tls", ...).
    asio::awaitable<std::error_code> handshake(connection& c) const;
    /// NOOP, expecting 250.
    asio::awaitable<std::error_code> health_check(connection& c) const;
    /// RSET, expecting 250.
    asio::awaitable<std::error_code> reset(connection& c) const;
    /// QUIT; errors ignored.
    asio::awaitable<void> close(connection& c) const;
    /// After a failed transaction (send() calls connection::request_reset()).
    bool needs_reset(const connection& c) const noexcept { return c.reset_requested(); }

    /// The capabilities the last EHLO of this connection announced (null before handshake).
    static const capabilities* session_capabilities(const connection& c);

    /// One transaction on a leased, handshaken connection: MAIL FROM, RCPT TO (each), DATA,
    /// the content (dot-stuffed, CRLF-normalised by encode_data), the final dot. Pipelined
    /// (RFC 2920) when the server offers it and options().use_pipelining. Addresses, the
    /// recipient count, SIZE and the line length (errc::line_too_long, stage "content": no
    /// line over 998 octets) are checked before anything is sent. The verdict is the reply
    /// read after the final dot was written; anything the server sends between its 354 and
    /// the dot fails the send with errc::reply_before_end_of_data (the dot is not sent, the
    /// result says discard_connection()). On 421 or any I/O or
    /// parse error the result says discard_connection(); after any other failure the
    /// connection asks for reset() (RSET) before reuse. Never throws for anything the
    /// server does; throws std::logic_error if `c` was not handshaken by an smtp adapter.
    asio::awaitable<send_result> send(connection& c, const envelope& env, std::string_view content) const;

    /// The text of the last handshake failure of any connection of this adapter (and its
    /// copies), e.g. "AUTH PLAIN: 535 5.7.8 Authentication credentials invalid"; empty if
    /// none failed. Never credentials (a reply that echoes one is redacted). Thread-safe.
    std::string last_handshake_failure() const;
    /// The server reply behind last_handshake_failure(), when there was one. Thread-safe.
    std::optional<reply> last_handshake_reply() const;

private:
    client_options options_;
    // Shared by copies: the pool holds one copy, a mailer's handle may hold another. Mutable:
    // the const hooks record into it, and failure_record::record() is not const.
    kit::failure_record<std::optional<reply>> failures_;  // shared by copies
    std::shared_ptr<std::atomic<bool>> token_rejected_;  // XOAUTH2: ask for a fresh token next time
};

/// Adds "smtp" to `registry`. Parameters (all optional): helo, user, password_env (the name
/// of an environment variable that holds the secret), mechanisms (comma-separated),
/// allow_plaintext_auth, pipelining ("true"/"false"), command_timeout_ms, data_timeout_ms,
/// max_line, max_lines. Secrets are never parameters themselves: parameter maps come from
/// config files and command lines and end up in logs, `ps` and shell history; and pools are
/// keyed by credentials (registry::pool_for), which a factory cannot see. Unknown parameters
/// and bad values throw config_error naming the parameter.
void register_smtp_adapter(adapter_registry& registry);

}  // namespace netpool::smtp
