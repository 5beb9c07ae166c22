// The IMAP protocol adapter: session set-up for the pool (greeting, CAPABILITY, STARTTLS,
// LOGIN or AUTHENTICATE PLAIN), NOOP, LOGOUT; and the commands a lease holder runs on a
// leased connection (SELECT/EXAMINE, UID SEARCH, UID FETCH), with the selected mailbox
// remembered per connection.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/imap/error.hpp>
#include <netpool/imap/response.hpp>

#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::imap {

/// How credentials are presented. automatic: AUTHENTICATE PLAIN when the server offers
/// AUTH=PLAIN, else LOGIN. login: always LOGIN (user name and password as astrings: atoms,
/// quoted strings, or literals when they hold CR, LF or 8-bit bytes). authenticate_plain:
/// always AUTHENTICATE PLAIN; a server that does not offer it is a login_failed error.
enum class login_method { automatic, login, authenticate_plain };

/// How a client opens and uses a session. A plain struct with defaults; validate() checks it.
struct client_options {
    credentials cred;                     ///< empty user: no login (a PREAUTH server, or none needed)
    /// Credentials over a connection without TLS only when this is true (checked before a
    /// byte is sent; netpool never upgrades a tls_mode::none endpoint on its own).
    bool allow_plaintext_login = false;
    /// AUTHENTICATE PLAIN with the initial response on the command line when the server
    /// offers SASL-IR (RFC 4959); else the response goes after the server's continuation.
    bool use_sasl_ir = true;
    login_method method = login_method::automatic;
    response_limits limits;                            ///< line, literal, nesting, response size, values
    std::chrono::milliseconds command_timeout{30000};  ///< any one command, all its responses included
    /// UIDs one UID SEARCH may return, all its SEARCH/ESEARCH responses together (4 bytes
    /// each): more is limit_errc::too_many_search_results, at once, not at the timeout.
    std::size_t max_search_results = 1000000;
    /// Untagged responses one command may receive beyond those it asked for (one FETCH per
    /// UID of a UID FETCH, one SEARCH): flag updates of other messages, EXISTS, FETCH of UIDs
    /// never asked for (dropped as they come, never kept)... More is
    /// limit_errc::too_many_unsolicited: a server streaming without end is stopped at once.
    std::size_t max_unsolicited = 10000;

    /// Throws netpool::config_error naming the field ("cred.user", "command_timeout",
    /// "limits.max_line", "max_unsolicited", ...). Never puts a secret in the message.
    void validate() const;
};

/// What the server announced (CAPABILITY response or [CAPABILITY ...] code).
struct capabilities {
    std::vector<std::string> names;  ///< upper case, as announced ("IMAP4REV1", "AUTH=PLAIN", ...)
    bool imap4rev1 = false, imap4rev2 = false;
    bool starttls = false;
    bool login_disabled = false;  ///< LOGINDISABLED: LOGIN is refused (until TLS)
    bool sasl_ir = false;
    bool literal_plus = false;    ///< LITERAL+ (RFC 7888): every literal may be non-synchronizing
    bool literal_minus = false;   ///< LITERAL- : literals up to 4096 bytes may be
    bool unselect = false;        ///< UNSELECT (RFC 3691, part of IMAP4rev2)
    bool has(std::string_view name) const noexcept;   ///< case-insensitive
    bool has_auth(std::string_view mech) const noexcept { return has("AUTH=" + std::string(mech)); }
};

/// The selected mailbox, as SELECT/EXAMINE (and untagged updates since) described it.
struct mailbox_info {
    std::string name;
    bool read_only = false;        ///< EXAMINE, or [READ-ONLY] from SELECT
    std::uint32_t exists = 0;      ///< messages (updated by untagged EXISTS/EXPUNGE)
    std::uint32_t uidvalidity = 0;
    std::uint32_t uidnext = 0;     ///< 0 when the server did not say
    /// UIDVALIDITY differs from the last value this adapter (any connection of its pool, and
    /// copies of the adapter) saw for this mailbox: UIDs cached from before are void. A
    /// report (imap::errc::uidvalidity_changed in spirit), not a failure.
    bool uidvalidity_changed = false;
};

/// One message as UID FETCH (FLAGS ENVELOPE RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[]) gave it.
struct fetched_message {
    std::uint32_t uid = 0;
    std::vector<std::string> flags;  ///< as sent: "\\Seen", "$Forwarded"
    std::string envelope_subject;    ///< raw (RFC 2047 words are not decoded); "" for NIL
    std::string envelope_from;       ///< "Name <mailbox@host>" or "mailbox@host" (first From address)
    std::string envelope_date;       ///< the Date header's text
    std::uint64_t size = 0;          ///< RFC822.SIZE
    std::string header;              ///< BODY[HEADER]: the header bytes, blank line included
    std::string body;                ///< BODY[]: the whole message bytes
};

/// Per-connection session, in connection::state() (read it with adapter::session_state()).
struct session {
    capabilities caps;
    bool authenticated = false;      ///< LOGIN/AUTHENTICATE succeeded, or the greeting was PREAUTH
    bool ready = false;              ///< the handshake completed
    bool broken = false;             ///< BYE, I/O or parse error, timeout: discard the connection
    std::optional<mailbox_info> selected;  ///< the selected mailbox, if any
    /// The last tagged NO or BAD (response::to_string(), redacted), or the limit that
    /// stopped a command with its value (imap::limit_failure()), for error details.
    std::string last_failure;
    // Internal: bytes read but not yet parsed, and the tag counter.
    std::string in;
    std::uint32_t next_tag = 1;
};

/// Speaks IMAP for a pool. Satisfies netpool::protocol_adapter. One adapter object (and its
/// copies, which share the failure record and the UIDVALIDITY record) serves every
/// connection of a pool; session state lives in connection::state().
///
/// Errors: imap::errc values (the handshake ones are equivalent to
/// netpool::condition::handshake_rejected), netpool::errc::protocol_error /
/// frame_too_large for responses that break the grammar or response_limits,
/// imap::limit_errc when a server sends more than max_values, max_search_results or
/// max_unsolicited allow (session::last_failure names the limit and its value),
/// connection_closed when the server goes away, operation_timeout when a command does not
/// complete within command_timeout, and socket/TLS errors as they come. After any error
/// other than command_failed, command_rejected and mailbox_not_found the session is
/// broken (session::broken): the lease holder must lease::discard() the connection
/// (must_discard() says so).
/// Thread safety: const member functions may run concurrently on different connections;
/// one connection is used by one coroutine at a time.
class adapter {
public:
    /// Throws config_error if options.validate() does.
    explicit adapter(client_options options = {});

    std::string_view name() const noexcept { return "imap"; }
    const client_options& options() const noexcept { return options_; }

    /// Greeting (OK, PREAUTH; BYE -> greeting_bye), CAPABILITY (unless the greeting carried
    /// it), STARTTLS for tls_mode::starttls (pre-TLS capabilities discarded, CAPABILITY
    /// again; bytes after the OK before the TLS handshake -> starttls_injection), then
    /// AUTHENTICATE PLAIN when offered (SASL-IR when offered and use_sasl_ir) or LOGIN
    /// (astrings quoted, or literals). Without TLS support (NETPOOL_HAS_TLS 0), an endpoint
    /// with tls_mode::starttls throws config_error("endpoint.tls", ...).
    asio::awaitable<std::error_code> handshake(connection& c) const;
    /// NOOP, expecting OK (untagged EXISTS/EXPUNGE update the selected mailbox).
    asio::awaitable<std::error_code> health_check(connection& c) const;
    /// Only when requested (connection::request_reset()): UNSELECT when the server offers
    /// it and a mailbox is selected, else NOOP.
    asio::awaitable<std::error_code> reset(connection& c) const;
    /// LOGOUT; errors ignored.
    asio::awaitable<void> close(connection& c) const;
    bool needs_reset(const connection& c) const noexcept { return c.reset_requested(); }

    /// SELECT (or EXAMINE when read_only) `mailbox`, unless it is already selected on this
    /// connection in the same mode. Fills *out (if not null) with the mailbox's state.
    /// Errors: mailbox_not_found, command_failed, command_rejected (the connection stays
    /// usable; nothing is selected any more), or a broken session's errors.
    asio::awaitable<std::error_code> select(connection& c, std::string_view mailbox, bool read_only,
                                            mailbox_info* out) const;
    /// UID SEARCH `criteria` (sent as is, e.g. "ALL", "UNSEEN", "1:*"); fills `uids` in the
    /// server's order. Understands SEARCH and ESEARCH (IMAP4rev2) answers. At most
    /// max_search_results UIDs (else limit_errc::too_many_search_results).
    asio::awaitable<std::error_code> uid_search(connection& c, std::string_view criteria,
                                                std::vector<std::uint32_t>& uids) const;
    /// UID FETCH uids (FLAGS ENVELOPE RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[]); `out` gets one
    /// entry per UID the server returned, in the order of `uids` (expunged ones are missing).
    /// FETCH responses for UIDs not in `uids` (or without UID) are parsed and dropped: what
    /// is kept is bounded by the messages asked for.
    asio::awaitable<std::error_code> uid_fetch(connection& c, std::span<const std::uint32_t> uids,
                                               std::vector<fetched_message>& out) const;

    /// The session of a connection this adapter handshook (null before).
    static const session* session_state(const connection& c);
    /// True when `ec` from a command leaves the connection unusable (discard the lease).
    static bool must_discard(const std::error_code& ec) noexcept;

    /// The text of the last handshake failure of any connection of this adapter (and its
    /// copies), e.g. "LOGIN: a2 NO [AUTHENTICATIONFAILED] Authentication failed."; empty if
    /// none failed. Never credentials. Thread-safe.
    std::string last_handshake_failure() const;

    struct shared_state;  // failure record and UIDVALIDITY per mailbox, shared by copies

private:
    client_options options_;
    std::shared_ptr<shared_state> shared_;
};

/// Adds "imap" to `registry`. Parameters (all optional): user, password_env (the name of an
/// environment variable holding the secret), allow_plaintext_login, sasl_ir
/// ("true"/"false"), login ("automatic", "login", "plain"), command_timeout_ms, max_line,
/// max_literal, max_values, max_search_results, max_unsolicited. Unknown parameters and bad
/// values throw config_error naming the parameter.
void register_imap_adapter(adapter_registry& registry);

}  // namespace netpool::imap
