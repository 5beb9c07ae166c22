// The IMAP protocol adapter: session set-up for the pool (greeting, CAPABILITY, STARTTLS,
// LOGIN or AUTHENTICATE PLAIN), NOOP, LOGOUT; and the commands a lease holder runs on a
// leased connection (SELECT/EXAMINE, UID SEARCH, UID FETCH), with the selected mailbox
// remembered per connection. The types it takes and returns (client_options, mailbox_info,
// fetched_message, response...) are in types.hpp.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/imap/error.hpp>
#include <netpool/imap/types.hpp>
#include <netpool/kit/failure_record.hpp>
#include <netpool/kit/session.hpp>

#include <asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::imap {

/// Per-connection session, in the connection's state (read it with adapter::session_state()).
struct session {
    capabilities caps;
    bool authenticated = false;      ///< LOGIN/AUTHENTICATE succeeded, or the greeting was PREAUTH
    bool ready = false;              ///< the handshake completed
    bool broken = false;             ///< BYE, I/O or parse error, timeout: discard the connection
    std::optional<mailbox_info> selected;  ///< the selected mailbox, if any
    /// The last tagged NO or BAD (response::to_string(), redacted), or the limit that
    /// stopped a command with its value (imap::limit_failure()), for error details.
    std::string last_failure;
    // Internal: the reads and writes (with the bytes read but not yet parsed), and the tag
    // counter.
    kit::session io{std::numeric_limits<std::size_t>::max(), 16384};  // the parser bounds a response
    std::uint32_t next_tag = 1;
};

/// Speaks IMAP for a pool. Satisfies netpool::protocol_adapter. One adapter object (and its
/// copies, which share the failure record and the UIDVALIDITY record) serves every
/// connection of a pool; session state lives in the connection's state.
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
    /// UID FETCH uids (UID FLAGS ENVELOPE RFC822.SIZE, and BODY.PEEK[HEADER] or BODY.PEEK[] as
    /// `parts` says: the header by default, never the body unless asked); `out` gets one
    /// entry per UID the server returned, in the order of `uids` (expunged ones are missing).
    /// With fetch_parts::full, `header` is cut from the body. FETCH responses for UIDs not in
    /// `uids` (or without UID) are parsed and dropped: what is kept is bounded by the
    /// messages asked for.
    asio::awaitable<std::error_code> uid_fetch(connection& c, std::span<const std::uint32_t> uids,
                                               std::vector<fetched_message>& out,
                                               fetch_parts parts = fetch_parts::header) const;

    /// The session of a connection this adapter handshook (null before).
    static const session* session_state(const connection& c);
    /// True when `ec` from a command leaves the connection unusable (discard the lease).
    static bool must_discard(const std::error_code& ec) noexcept;

    /// The text of the last handshake failure of any connection of this adapter (and its
    /// copies), e.g. "LOGIN: a2 NO [AUTHENTICATIONFAILED] Authentication failed."; empty if
    /// none failed. Never credentials. Thread-safe.
    std::string last_handshake_failure() const;

private:
    client_options options_;
    // Shared by copies (the pool holds one, a client's handle may hold another). Mutable:
    // the const hooks record into it, and failure_record::record() is not const.
    kit::failure_record<> failures_;  // shared by copies
    struct uidvalidity_record;  // the last UIDVALIDITY seen per mailbox
    std::shared_ptr<uidvalidity_record> uidvalidity_;
};

/// Adds "imap" to `registry`. Parameters (all optional): user, password_env (the name of an
/// environment variable holding the secret), allow_plaintext_login, sasl_ir
/// ("true"/"false"), login ("automatic", "login", "plain"), command_timeout_ms, max_line,
/// max_literal, max_values, max_search_results, max_unsolicited. Unknown parameters and bad
/// values throw config_error naming the parameter.
void register_imap_adapter(adapter_registry& registry);

}  // namespace netpool::imap
