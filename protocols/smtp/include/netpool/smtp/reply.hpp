// Parsing SMTP replies (RFC 5321 section 4.2, RFC 3463 enhanced status codes) and EHLO
// capabilities, and the DATA transparency rules: plain functions over bytes, no sockets.
// The types they produce are in types.hpp.
#pragma once

#include <netpool/smtp/types.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace netpool::smtp {

/// Incremental reply parser. Feed it bytes as they arrive; take complete replies out.
/// Errors are final (the connection must be dropped): errc::protocol_error for a malformed
/// line (bad code, wrong separator, code changing within a reply, bare LF is accepted as a
/// line end for robustness), errc::frame_too_large for a line or reply over the limits.
class reply_parser {
public:
    explicit reply_parser(reply_limits limits = {}) : limits_(limits) {}

    enum class status { need_more, complete, error };
    /// Consumes from `in` what it can. On `complete`, take() returns the reply; the bytes
    /// after it stay in `in`'s unconsumed tail (returned through `consumed`).
    status feed(std::string_view in, std::size_t& consumed);
    /// The reply completed by the last feed().
    reply take() { return std::move(current_done_); }
    std::error_code error() const noexcept { return error_; }
    /// Bytes of a reply started but not complete.
    bool mid_reply() const noexcept { return !line_.empty() || !building_.lines.empty(); }
    void reset();

private:
    status fail(std::error_code ec);
    status finish_line();

    reply_limits limits_;
    std::string line_;  // the current line so far (without its terminator)
    reply building_;
    reply current_done_;
    std::error_code error_;
};

/// Parses a whole buffer holding exactly one reply (for tests and simple callers).
/// Errors as reply_parser; errc::protocol_error also for trailing bytes.
std::optional<reply> parse_reply(std::string_view text, std::error_code& ec, reply_limits limits = {});

/// Capabilities from a positive EHLO reply (the first line is the greeting and is skipped).
/// Unknown keywords are ignored; keywords are case-insensitive.
capabilities parse_ehlo(const reply& r);

/// DATA transparency: normalises bare CR and bare LF to CRLF, doubles a leading '.' on every
/// line (RFC 5321 4.5.2), ends the content with CRLF if it does not, and appends ".\r\n".
/// Appends to `out`.
void encode_data(std::string_view message, std::string& out);

}  // namespace netpool::smtp
