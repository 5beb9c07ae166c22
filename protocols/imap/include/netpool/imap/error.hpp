// IMAP error codes: what an IMAP server can make a session or a command fail with.
// Transport and parse failures stay in netpool's own category (connection_closed,
// protocol_error, frame_too_large, operation_timeout).
#pragma once

#include <string>
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
    /// The server announces LOGINDISABLED and offers no AUTH=PLAIN: it takes no login on
    /// this connection (over clear text, until STARTTLS). Nothing was sent. As final as a
    /// refused password (netpool::condition::credentials_rejected): asking again is useless.
    login_disabled,
};

/// The category, named "netpool.imap". Its default_error_condition() maps the handshake
/// failures (greeting_bye, login_failed, login_disabled, plaintext_login_refused,
/// starttls_unavailable, starttls_injection) to netpool::condition::handshake_rejected, so a pool whose handshakes
/// keep failing that way goes to errc::endpoint_down_handshake.
const std::error_category& imap_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), imap_category()}; }

/// True for the values that are equivalent to netpool::condition::handshake_rejected.
bool is_handshake_failure(errc e) noexcept;

/// A bound on what a server can make the client hold or read was exceeded (category
/// "netpool.imap.limit"). Each value names its option; the session is broken (the lease must
/// be discarded) and session::last_failure says the command, the option and its value, e.g.
/// "UID FETCH: more than 10000 untagged responses the command did not ask for
/// (client_options::max_unsolicited = 10000)".
enum class limit_errc {
    too_many_values = 1,      ///< one response held more than response_limits::max_values values
    too_many_search_results,  ///< one UID SEARCH returned more than client_options::max_search_results UIDs
    too_many_unsolicited,     ///< one command got more than client_options::max_unsolicited responses it did not ask for
};

namespace detail {
class limit_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "netpool.imap.limit"; }
    std::string message(int v) const override {
        switch (static_cast<limit_errc>(v)) {
        case limit_errc::too_many_values:
            return "IMAP response holds more values than response_limits::max_values allows";
        case limit_errc::too_many_search_results:
            return "IMAP UID SEARCH returned more UIDs than client_options::max_search_results allows";
        case limit_errc::too_many_unsolicited:
            return "IMAP server sent more responses the command did not ask for than client_options::max_unsolicited "
                   "allows";
        }
        return "unknown netpool.imap.limit error " + std::to_string(v);
    }
};
}  // namespace detail

/// The category of limit_errc, named "netpool.imap.limit". Defined here (one instance per
/// program: an inline function's static) so the response parser can report max_values
/// without depending on the rest of the library.
inline const std::error_category& limit_category() noexcept {
    static const detail::limit_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(limit_errc e) noexcept { return {static_cast<int>(e), limit_category()}; }

}  // namespace netpool::imap

template <> struct std::is_error_code_enum<netpool::imap::errc> : std::true_type {};
template <> struct std::is_error_code_enum<netpool::imap::limit_errc> : std::true_type {};
