// SMTP replies (RFC 5321 section 4.2, RFC 3463 enhanced status codes), EHLO capabilities, and
// the DATA transparency rules: plain functions over bytes, no sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
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

/// Capabilities from a positive EHLO reply (the first line is the greeting and is skipped).
/// Unknown keywords are ignored; keywords are case-insensitive.
capabilities parse_ehlo(const reply& r);

/// DATA transparency: normalises bare CR and bare LF to CRLF, doubles a leading '.' on every
/// line (RFC 5321 4.5.2), ends the content with CRLF if it does not, and appends ".\r\n".
/// Appends to `out`.
void encode_data(std::string_view message, std::string& out);

}  // namespace netpool::smtp
