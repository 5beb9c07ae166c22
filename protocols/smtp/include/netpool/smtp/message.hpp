// Building a message: the SMTP envelope and a small RFC 5322 builder (UTF-8 text/plain).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netpool::smtp {

/// What MAIL FROM and RCPT TO carry: addr-specs only ("user@example.org"), no display names
/// and no angle brackets.
struct envelope {
    std::string mail_from;              ///< reverse-path; "" = the null sender <>
    std::vector<std::string> rcpt_to;   ///< forward-paths
};

/// A plain-text message. Each entry of to/cc/bcc is one mailbox: "Name <addr>" or "addr".
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

/// The addr-spec of a mailbox: the text inside the last "<...>" if there is one, else the
/// text itself; surrounding spaces removed. "Ann <ann@x.org>" -> "ann@x.org".
std::string address_of(std::string_view mailbox);

/// "=?UTF-8?B?...?=" encoded words (each at most 75 bytes, split only on UTF-8 character
/// boundaries, separated by CRLF SP so they fold) when `text` is not printable ASCII or
/// contains "=?"; `text` unchanged otherwise.
std::string encode_header_word(std::string_view text);

}  // namespace netpool::smtp
