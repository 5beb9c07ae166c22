// IMAP server responses (RFC 9051 section 7, and RFC 3501 servers): an incremental parser
// over bytes, the values it produces, and astring quoting for commands. No sockets.
#pragma once

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

/// Incremental response parser. Feed it bytes as they arrive; take complete responses out.
/// A literal's announced size is checked against max_literal (and the response against
/// max_response) before a byte of it is buffered. Errors are final (drop the connection):
/// netpool::errc::frame_too_large for a line, literal or response over the limits,
/// limit_errc::too_many_values for a response with more than max_values values,
/// netpool::errc::protocol_error for anything the grammar does not allow (lists nested
/// deeper than max_depth included). A bare LF is accepted as a line end. A status response
/// (tagged, or untagged OK/NO/BAD/BYE/PREAUTH) and a continuation are one line: a "{n}" at
/// the end of their text is text, not a literal (RFC 3501/9051 resp-text).
class response_parser {
public:
    explicit response_parser(response_limits limits = {}) : limits_(limits) {}

    enum class status { need_more, complete, error };
    /// Consumes from `in` what it can. On `complete`, take() returns the response; the
    /// bytes after it stay in `in`'s unconsumed tail (`consumed` says how many were used).
    status feed(std::string_view in, std::size_t& consumed);
    /// The response completed by the last feed().
    response take() { return std::move(done_); }
    std::error_code error() const noexcept { return error_; }
    /// Bytes of a response started but not complete.
    std::size_t buffered() const noexcept { return buf_.size(); }
    /// The buffer's capacity (for tests: it never grows towards an announced size).
    std::size_t capacity() const noexcept { return buf_.capacity(); }
    bool mid_response() const noexcept { return !buf_.empty(); }
    void reset();

private:
    status fail(std::error_code ec);
    status end_of_line();

    response_limits limits_;
    std::string buf_;               // the response so far, as on the wire
    std::size_t line_start_ = 0;    // where the current line begins in buf_
    std::size_t literal_left_ = 0;  // bytes of a literal still to come
    bool in_literal_ = false;
    response done_;
    std::error_code error_;
};

/// Parses one whole response held in `wire` (its lines and literals, with the final CRLF).
/// Errors as response_parser; protocol_error also for trailing bytes or a missing CRLF.
std::optional<response> parse_response(std::string_view wire, std::error_code& ec, response_limits limits = {});

/// How to send `s` as an IMAP astring: the atom itself when every byte is an atom char,
/// a quoted string ("..." with \" and \\ escaped) when it holds only 7-bit text without
/// CR, LF or NUL, and otherwise the literal marker "{N}" (N = s.size()): the caller sends
/// the marker, CRLF, waits for a continuation (or uses "{N+}" with LITERAL+), then sends s.
/// The empty string is "\"\"".
std::string quote_astring(std::string_view s);
/// True when quote_astring(s) is a literal marker.
bool needs_literal(std::string_view s) noexcept;

}  // namespace netpool::imap
