// The IMAP client's data: parsed responses and their values, capabilities, the selected
// mailbox, fetched messages, the options a session is opened with, and the outcome of a
// fetch. No Asio and no OpenSSL here (tests/unit/test_imap_types.cpp checks it), so the
// parser, the protocol helpers and their users compile without the I/O layer.
#pragma once

#include <netpool/endpoint.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::imap {

/// Limits that bound what a server can make us buffer.
struct response_limits {
    std::size_t max_line = 64 * 1024;            ///< bytes of one line (between CRLFs, literal contents excluded), CRLF included
    std::size_t max_literal = 64 * 1024 * 1024;  ///< bytes of one literal {n}; checked before anything is allocated
    std::size_t max_depth = 32;                  ///< nesting of parenthesised lists
    /// Bytes of one whole response (its lines and literals). A FETCH of one message with
    /// BODY[] and BODY[HEADER] is one response: keep this above 2 * max_literal.
    std::size_t max_response = 160 * 1024 * 1024;
    /// Values (atoms, numbers, strings, NILs and lists, at every depth) in one response. A
    /// parsed value costs about 72 bytes however short it is on the wire, so without this a
    /// response within max_response ("a a a ..." over lines joined by {0} literals) could
    /// take gigabytes. One line within max_line holds at most max_line / 2 values.
    std::size_t max_values = 100000;
};

/// One parsed IMAP datum.
struct value {
    enum class type {
        nil,     ///< NIL
        atom,    ///< an atom, e.g. FLAGS, \Seen, BODY[HEADER], IMAP4rev1 (text as sent)
        number,  ///< digits only (fits 64 bits); `text` holds the digits as well
        string,  ///< a quoted string (unescaped) or a literal {n} / {n+} / ~{n}: the bytes
        list,    ///< ( ... )
    };
    type kind = type::nil;
    std::string text;            ///< atom, number digits, or string bytes
    std::uint64_t number = 0;    ///< for type::number
    std::vector<value> items;    ///< for type::list

    bool is_nil() const noexcept { return kind == type::nil; }
    bool is_atom() const noexcept { return kind == type::atom; }
    bool is_number() const noexcept { return kind == type::number; }
    bool is_string() const noexcept { return kind == type::string; }
    bool is_list() const noexcept { return kind == type::list; }
    /// An atom equal to `name`, ignoring ASCII case.
    bool is_atom(std::string_view name) const noexcept;
    /// The text of an atom, number or string; "" for NIL and lists (an nstring's value).
    std::string_view str() const noexcept { return kind == type::list ? std::string_view{} : std::string_view(text); }
};

/// One complete response.
struct response {
    enum class kind { tagged, untagged, continuation };
    kind k = kind::untagged;
    std::string tag;                       ///< tagged only
    /// Upper case: "OK", "NO", "BAD" (tagged or untagged), "BYE", "PREAUTH" (untagged), or ""
    /// for untagged data (EXISTS, FETCH...) and continuations.
    std::string status;
    std::optional<std::uint32_t> number;   ///< "* 23 EXISTS" -> 23
    /// Untagged data name, upper case: EXISTS, EXPUNGE, RECENT, FETCH, CAPABILITY, SEARCH,
    /// ESEARCH, FLAGS, LIST, STATUS, ENABLED...; "" for status responses and continuations.
    std::string name;
    std::vector<value> data;               ///< what follows the name (e.g. the FETCH list)
    std::string code;                      ///< response code without brackets: "UIDVALIDITY 3"
    std::string text;                      ///< human-readable text (or the continuation's base64)

    bool is_tagged() const noexcept { return k == kind::tagged; }
    bool is_untagged() const noexcept { return k == kind::untagged; }
    bool is_continuation() const noexcept { return k == kind::continuation; }
    /// The response code's first word, upper case ("UIDVALIDITY"), and the rest ("3").
    std::string code_name() const;
    std::string_view code_argument() const noexcept;
    /// "a1 NO [NONEXISTENT] Unknown mailbox" style, for error details (never literals'
    /// contents; a server's text holds no secret we sent, but redact() it anyway).
    std::string to_string() const;
};

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
    /// The greeting (at most command_timeout). Servers greet at once; a port that expects
    /// TLS at once (993, implicit) says nothing to a client that waits for a clear-text
    /// greeting, so this is short: netpool::errc::no_greeting after it, and when it is the
    /// endpoint's first connect, the endpoint goes down at once with that cause.
    std::chrono::milliseconds greeting_timeout{5000};
    /// UIDs one UID SEARCH may return, all its SEARCH/ESEARCH responses together (4 bytes
    /// each): more is limit_errc::too_many_search_results, at once, not at the timeout.
    std::size_t max_search_results = 1000000;
    /// Untagged responses one command may receive beyond those it asked for (one FETCH per
    /// UID of a UID FETCH, one SEARCH): flag updates of other messages, EXISTS, FETCH of UIDs
    /// never asked for (dropped as they come, never kept)... More is
    /// limit_errc::too_many_unsolicited: a server streaming without end is stopped at once.
    std::size_t max_unsolicited = 10000;

    /// Throws netpool::config_error naming the field ("cred.user", "command_timeout", "greeting_timeout",
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
/// What a UID FETCH brings beyond UID, FLAGS, ENVELOPE and RFC822.SIZE, which it always
/// asks for. A listing needs no body: whole messages cross the network only when asked.
enum class fetch_parts : std::uint8_t {
    summary,  ///< nothing more: date, sender, subject, size and flags (a listing)
    header,   ///< + BODY.PEEK[HEADER]: the header bytes (the default)
    full,     ///< + BODY.PEEK[]: the whole message; `header` is cut from it, not fetched twice
};
/// "summary", "header" or "full".
const char* to_string(fetch_parts p) noexcept;
/// The inverse of to_string; nullopt for anything else.
std::optional<fetch_parts> parse_fetch_parts(std::string_view s) noexcept;

struct fetched_message {
    std::uint32_t uid = 0;
    std::vector<std::string> flags;  ///< as sent: "\\Seen", "$Forwarded"
    std::string envelope_subject;    ///< raw (RFC 2047 words are not decoded); "" for NIL
    std::string envelope_from;       ///< "Name <mailbox@host>" or "mailbox@host" (first From address)
    std::string envelope_date;       ///< the Date header's text
    std::uint64_t size = 0;          ///< RFC822.SIZE
    std::string header;              ///< BODY[HEADER]: the header bytes, blank line included (header, full)
    std::string body;                ///< BODY[]: the whole message bytes (fetch_parts::full only)
};

/// The outcome of one fetch_latest.
struct fetch_result {
    std::error_code ec;  ///< empty on success
    /// More about a failure: the server's words ("a3 NO [NONEXISTENT] ..."), or the handshake
    /// failure behind an endpoint_down checkout. Never credentials.
    std::string detail;
    /// Where it ended: "checkout", "SELECT", "EXAMINE", "UID SEARCH", "UID FETCH", or "" on success.
    std::string stage;
    std::vector<fetched_message> messages;  ///< newest (highest UID) first
    mailbox_info mailbox;                   ///< the mailbox as examined (uidvalidity_changed included)
    /// Bytes read from the server by this fetch's commands (every attempt), after TLS.
    std::uint64_t bytes_read = 0;
    bool ok() const noexcept { return !ec; }
    /// One line for logs: "fetched 3 messages from INBOX" or "failed at EXAMINE: ...".
    std::string to_string() const;
};

}  // namespace netpool::imap
