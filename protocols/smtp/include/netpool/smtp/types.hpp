// The SMTP client's data: replies, capabilities, the envelope and message, the options a
// session is opened with, and the outcome of a transaction. No Asio and no OpenSSL here
// (tests/unit/test_smtp_types.cpp checks it), so parsers, protocol helpers, the message
// builder and their users compile without the I/O layer.
#pragma once

#include <netpool/endpoint.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace netpool::smtp {

/// An RFC 3463 enhanced status code, e.g. 5.7.8.
struct enhanced_status {
    int klass = 0, subject = 0, detail = 0;
    bool operator==(const enhanced_status&) const = default;
    std::string to_string() const;
};

/// One complete reply: every line had the same code; the last line ended the reply.
struct reply {
    int code = 0;                           ///< 200..599
    std::optional<enhanced_status> status;  ///< when the first line carries one
    std::vector<std::string> lines;         ///< text of each line, without code, separator, CRLF

    bool positive() const noexcept { return code >= 200 && code < 400; }
    bool transient() const noexcept { return code >= 400 && code < 500; }  ///< 4xx: may retry
    bool permanent() const noexcept { return code >= 500; }                ///< 5xx: do not retry
    /// "250 2.0.0 Ok" style, lines joined with " / " (for error messages; never credentials:
    /// a server reply holds none).
    std::string to_string() const;
};

/// Limits that bound what a server can make us buffer.
struct reply_limits {
    std::size_t max_line = 2048;   ///< bytes in one line with CRLF (RFC 5321 says 512; some servers exceed it)
    std::size_t max_lines = 256;   ///< lines in one multi-line reply (a long EHLO has ~20)
};

/// What EHLO told us (RFC 5321 4.1.1.1 and the extensions' RFCs).
struct capabilities {
    bool esmtp = false;  ///< EHLO was answered (else HELO fallback)
    bool pipelining = false;
    bool starttls = false;
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool enhanced_status_codes = false;
    bool chunking = false;
    std::optional<std::uint64_t> size;  ///< SIZE limit; 0 = announced without a limit
    std::vector<std::string> auth;      ///< AUTH mechanisms, upper case
    bool has_auth(std::string_view mech) const;
};

/// What MAIL FROM and RCPT TO carry: addr-specs only ("user@example.org"), no display names
/// and no angle brackets.
struct envelope {
    std::string mail_from;              ///< reverse-path; "" = the null sender <>
    std::vector<std::string> rcpt_to;   ///< forward-paths
};

/// A plain-text message. Each entry of to/cc/bcc is one mailbox: "Name <addr>" or "addr".
/// Its builder functions are in message.cpp (see also message.hpp).
struct message {
    std::string from;                    ///< "Name <addr>" or "addr"
    std::vector<std::string> to, cc, bcc;
    std::string subject;                 ///< UTF-8; encoded per RFC 2047 when not printable ASCII
    std::string text;                    ///< UTF-8 body, text/plain; any line ending
    std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers, in order

    /// RFC 5322 bytes with CRLF line ends: Date (unless given in `headers`), Message-ID
    /// (unless given; "<random@id_domain>"), From, To, Cc (never Bcc), Subject, MIME-Version
    /// 1.0, Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding (7bit for ASCII,
    /// 8bit for other UTF-8, quoted-printable when a line exceeds 998 bytes), the extra
    /// headers, a blank line, the body. Display names that are not ASCII are RFC 2047 encoded.
    /// No line is longer than 998 octets (RFC 5322 2.1.1): a Subject that would be goes as
    /// encoded words (which fold), an extra header that would be is folded at white space.
    /// Errors: throws std::invalid_argument naming the header when a header name or value
    /// would let text inject headers (CR or LF in a value; a name that is empty or has
    /// characters other than printable ASCII without ':'), or when an extra header has a
    /// word too long to fold under 998 octets. Thread safety: const, reentrant.
    std::string render(std::string_view id_domain = "localhost") const;

    /// mail_from from `from`'s address, rcpt_to from to + cc + bcc (addr-specs, in order).
    envelope make_envelope() const;
};

/// How a client opens and uses a session. A plain struct with defaults; validate() checks it.
struct client_options {
    std::string helo_name = "localhost";  ///< EHLO/HELO argument
    credentials cred;                      ///< empty user: no AUTH
    /// Mechanisms in order of preference; the first the server offers is used. Known:
    /// "PLAIN", "LOGIN" (and "XOAUTH2", which oauth_token adds by itself).
    std::vector<std::string> mechanisms = {"PLAIN", "LOGIN"};
    /// XOAUTH2 (Google/Microsoft): called for the token at each AUTH; `refresh` is true
    /// when the previous token was rejected. Setting it puts "XOAUTH2" first; PLAIN and
    /// LOGIN are then used only if cred.secret is not empty. Called on the connection's
    /// executor; it must not block for long.
    std::function<std::string(bool refresh)> oauth_token;
    /// Credentials over a connection without TLS only when this is true.
    bool allow_plaintext_auth = false;
    bool use_pipelining = true;                        ///< when the server offers PIPELINING
    reply_limits limits;                               ///< line length and lines per reply
    std::chrono::milliseconds command_timeout{30000};  ///< any one command's reply
    std::chrono::milliseconds data_timeout{120000};    ///< sending the content and the reply to the final dot

    /// Throws netpool::config_error naming the field ("helo_name", "mechanisms",
    /// "command_timeout", "cred.user", ...). Never puts a secret in the message. A NUL byte
    /// in cred.user or cred.secret is refused (it would change the AUTH PLAIN message), and
    /// ^A in cred.user with XOAUTH2.
    void validate() const;
};

/// Per-recipient outcome.
struct recipient_result {
    std::string address;
    int code = 0;                           ///< the RCPT reply code (0: no reply was read)
    std::optional<enhanced_status> status;
    std::string text;                       ///< the reply text (from the server; no secrets)
    bool accepted() const noexcept { return code >= 200 && code < 300; }
};

/// When mailer::send tries a message again, and for how long (docs/smtp.md#retries). What is
/// retried is what cannot deliver twice: a failed checkout (not a refused login), a lost or
/// closing session (421) before the final dot went out, a 4xx to MAIL, DATA or the final dot
/// (the message as a whole), a 4xx to RCPT (that recipient alone, in a new transaction for
/// the recipients still owed it). Not retried: 5xx, a message refused before sending (size,
/// lines, addresses), and by default an unknown outcome (errc::outcome_unknown: the dot went
/// out and no reply came).
struct retry_policy {
    unsigned max_attempts = 3;                         ///< transactions tried, 1 = no retry (>= 1)
    std::chrono::milliseconds backoff_initial{250};    ///< delay before the 2nd attempt, doubling after (> 0)
    std::chrono::milliseconds backoff_max{4000};       ///< cap on that delay (>= backoff_initial)
    double backoff_jitter = 0.5;                       ///< fraction of each delay drawn at random, in [0, 1]
    /// From the call: no attempt starts after it and a checkout waits at most until it (an
    /// attempt already under way is bounded by the client's command and data timeouts).
    /// While the endpoint is down, checkouts that fail at once do not use up attempts: the
    /// send waits for the pool's probe within this deadline.
    std::chrono::milliseconds deadline{60000};
    /// At-least-once: send a message whose outcome is unknown again. The server may then
    /// deliver it twice. Default false: at-most-once for that case, reported as unknown.
    bool retry_unknown_outcome = false;

    /// Throws netpool::config_error naming the field ("retry.max_attempts", ...).
    void validate() const;
};

/// The outcome of one transaction, or of mailer::send with its retries. `sent` only after
/// 250 to the final dot.
struct send_result {
    bool sent = false;
    /// Empty when sent (even if some recipients were refused), unless the outcome for some
    /// recipients is unknown (errc::outcome_unknown).
    std::error_code ec;
    /// Transactions tried: 1 for adapter::send; with mailer::send's retries, how many (0 if
    /// no checkout succeeded).
    unsigned attempts = 1;
    /// Where it ended: "checkout", "envelope" or "content" (checked before sending), "SIZE",
    /// "MAIL FROM", "RCPT TO", "DATA", "end of data", or "" when sent.
    std::string stage;
    std::optional<reply> last_reply;  ///< the reply that decided the outcome, if any
    std::vector<recipient_result> recipients;
    /// More about the failure when there is more to say (e.g. the handshake failure behind
    /// an endpoint_down checkout: "AUTH PLAIN: 535 5.7.8 ..."). Never credentials.
    std::string detail;
    /// The connection is in an unknown state or closing (421, I/O or parse error, timeout):
    /// the lease holder must lease::discard() it.
    bool discard = false;

    bool discard_connection() const noexcept { return discard; }
    /// One line for logs: "sent to 2/3 recipients" or "failed at RCPT TO: <message>
    /// (550 5.1.1 ...)". Never credentials.
    std::string to_string() const;
};

}  // namespace netpool::smtp
