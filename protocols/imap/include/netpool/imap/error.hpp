// IMAP error codes: what an IMAP server can make a session or a command fail with.
// Transport and parse failures stay in netpool's own category (connection_closed,
// protocol_error, frame_too_large, operation_timeout).
#pragma once

#include <system_error>

namespace netpool::imap {

/// Error values of the "netpool.imap" category. Zero is never used.
enum class errc {
    greeting_bye = 1,          ///< the server greeted with BYE (it refuses the session)
    login_failed,              ///< LOGIN / AUTHENTICATE answered NO or BAD, or no usable mechanism
    plaintext_login_refused,   ///< credentials would go in clear text and allow_plaintext_login is false
    starttls_unavailable,      ///< tls_mode::starttls, and the server does not offer STARTTLS (or greeted PREAUTH)
    starttls_injection,        ///< bytes arrived after the OK to STARTTLS, before the TLS handshake
    mailbox_not_found,         ///< SELECT/EXAMINE answered NO [NONEXISTENT] (or NO without a code)
    command_failed,            ///< a command answered NO
    command_rejected,          ///< a command answered BAD
    server_bye,                ///< an untagged BYE at any other moment: the server is closing the session
    uidvalidity_changed,       ///< the mailbox's UIDVALIDITY differs from the last one seen (a report, not a failure)
    unexpected_response,       ///< a response the command does not allow (e.g. a continuation, a foreign tag)
};

/// The category, named "netpool.imap". Its default_error_condition() maps the handshake
/// failures (greeting_bye, login_failed, plaintext_login_refused, starttls_unavailable,
/// starttls_injection) to netpool::condition::handshake_rejected, so a pool whose handshakes
/// keep failing that way goes to errc::endpoint_down_handshake.
const std::error_category& imap_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), imap_category()}; }

/// True for the values that are equivalent to netpool::condition::handshake_rejected.
bool is_handshake_failure(errc e) noexcept;

}  // namespace netpool::imap

template <> struct std::is_error_code_enum<netpool::imap::errc> : std::true_type {};
