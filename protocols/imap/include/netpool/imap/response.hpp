// IMAP server responses (RFC 9051 section 7, and RFC 3501 servers): an incremental parser
// over bytes and astring quoting for commands. No sockets. The responses and values it
// produces are in types.hpp.
#pragma once

#include <netpool/imap/types.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace netpool::imap {

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
