// SMTP error codes: what an SMTP server (or an impossible envelope) can make a send fail with.
// Transport and parse failures stay in netpool's own category (connection_closed,
// protocol_error, frame_too_large, operation_timeout).
#pragma once

#include <system_error>

namespace netpool::smtp {

/// Error values of the "netpool.smtp" category. Zero is never used.
enum class errc {
    greeting_rejected = 1,   ///< the greeting was not 220 (e.g. 554)
    ehlo_rejected,           ///< both EHLO and the HELO fallback were refused
    starttls_unavailable,    ///< tls_mode::starttls, and the server does not offer STARTTLS
    starttls_rejected,       ///< the server answered STARTTLS with something other than 220
    starttls_injection,      ///< bytes arrived after the 220 to STARTTLS, before the TLS handshake
    plaintext_auth_refused,  ///< credentials would go in clear text and allow_plaintext_auth is false
    auth_unavailable,        ///< credentials were given; the server offers no mechanism we may use
    auth_failed,             ///< the server rejected the credentials (e.g. 535 5.7.8)
    service_closing,         ///< 421 at any stage: the server is closing the session
    transient_failure,       ///< a 4xx reply to MAIL, RCPT (every recipient), DATA or the final dot
    permanent_failure,       ///< a 5xx reply to the same
    message_too_large,       ///< the message exceeds the server's SIZE (checked before sending)
    no_recipients,           ///< the envelope has no recipient
    invalid_address,         ///< an address has CR, LF, '<', '>', a control character, or is empty
    unexpected_reply,        ///< a reply code the command does not allow (e.g. 354 to MAIL)
    /// The server sent a reply (or any bytes) after its 354 and before the final dot was
    /// written: a protocol violation. The message was not sent (the dot never went out) and
    /// the connection is discarded.
    reply_before_end_of_data,
    /// A line of the content is longer than 998 octets without its CRLF (RFC 5322 2.1.1,
    /// RFC 5321 4.5.3.1.6). Checked before anything is sent (stage "content").
    line_too_long,
    /// The final dot was written and no reply to it came (the connection closed, or
    /// data_timeout passed): the server may have taken the message or not. mailer::send does
    /// not send it again unless retry_policy::retry_unknown_outcome is set.
    outcome_unknown,
    /// XOAUTH2: the server refused the token. Not a refusal of the credentials
    /// (condition::credentials_rejected): the next session asks oauth_token(true) for a fresh one.
    token_rejected,
};

/// The category, named "netpool.smtp". Its default_error_condition() maps the handshake
/// failures (greeting_rejected, ehlo_rejected, starttls_*, plaintext_auth_refused,
/// auth_unavailable, auth_failed, token_rejected) to netpool::condition::handshake_rejected, so
/// a pool whose handshakes keep failing that way goes to errc::endpoint_down_handshake; and
/// auth_failed is netpool::condition::credentials_rejected: the pool never repeats that login.
const std::error_category& smtp_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), smtp_category()}; }

/// True for the values that are equivalent to netpool::condition::handshake_rejected.
bool is_handshake_failure(errc e) noexcept;

}  // namespace netpool::smtp

template <> struct std::is_error_code_enum<netpool::smtp::errc> : std::true_type {};
