// The pure parts of an SMTP client: AUTH responses, address checks, MAIL/RCPT command
// lines, and the verdict over a transaction's replies. No sockets (no Asio), so the
// adapter's decisions are unit-tested with strings.
#pragma once

#include <netpool/smtp/types.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::smtp {

/// An addr-spec we may put in MAIL FROM:<...> / RCPT TO:<...>: no CR, LF, '<', '>', other
/// control characters or spaces; not empty unless allow_empty (the null reverse-path).
bool valid_address(std::string_view address, bool allow_empty) noexcept;
/// Any byte >= 0x80.
bool has_8bit(std::string_view bytes) noexcept;

/// What a MAIL FROM carries besides the address.
struct mail_parameters {
    std::optional<std::uint64_t> size;  ///< SIZE= (RFC 1870) when the server offers SIZE
    bool body_8bitmime = false;         ///< BODY=8BITMIME (RFC 6152)
    bool smtputf8 = false;              ///< SMTPUTF8 (RFC 6531)
};

/// Checks an envelope and content against the session before anything is sent, and
/// chooses the MAIL parameters. `message_size` is the content's size with CRLF line ends.
/// Errors: errc::invalid_address (an address is not valid, or is not ASCII and the server
/// does not offer SMTPUTF8), errc::no_recipients, errc::message_too_large (over a
/// non-zero SIZE). `stage` says which check failed ("envelope" or "SIZE").
std::error_code plan_transaction(const envelope& env, const capabilities& caps, std::size_t message_size,
                                 bool content_8bit, mail_parameters& out, std::string& stage);

/// The longest line RFC 5322 2.1.1 allows, without its CRLF (RFC 5321 4.5.3.1.6: 1000 with
/// CRLF, not counting a dot added for transparency).
inline constexpr std::size_t max_content_line = 998;

/// Checks that no line of `content` (lines end at CRLF, bare LF or bare CR, as encode_data
/// treats them) is longer than max_content_line octets. Returns errc::line_too_long and sets
/// `detail` to "line N (byte offset O) has L octets; at most 998 are allowed (RFC 5322 2.1.1)
/// ..." for the first such line; an empty code and `detail` untouched otherwise. The content
/// is not rewritten: a raw message is the caller's bytes (MIME structure, DKIM signature),
/// and encoding a long line means changing its part's Content-Transfer-Encoding.
std::error_code check_line_lengths(std::string_view content, std::string& detail);

/// "MAIL FROM:<addr> SIZE=n BODY=8BITMIME SMTPUTF8\r\n" (only the parameters that apply).
std::string mail_from_command(std::string_view address, const mail_parameters& p);
/// "RCPT TO:<addr>\r\n".
std::string rcpt_to_command(std::string_view address);

/// What the client does after the replies it has so far to MAIL, RCPT and DATA.
enum class envelope_next {
    proceed,        ///< nothing decided: send the next command (or, after 354, the content)
    send_dot_only,  ///< failed, but the server said 354 to a pipelined DATA: end it with "."
    done,           ///< failed; the session is intact (RSET before reuse)
    abort,          ///< 421 or a reply the command does not allow: discard the connection
};

/// The verdict over a prefix of a transaction's replies: `mail`, then the replies to the
/// first rcpt.size() recipients of `env`, then `data` if one was read. Lock-step clients
/// call it after each step; pipelining clients once after reading everything (or after a
/// 421, with what they have). Fills r.recipients, and on failure r.ec, r.stage,
/// r.last_reply and r.discard. Rules: 421 anywhere -> service_closing, abort; MAIL 4xx/5xx
/// -> transient/permanent_failure at "MAIL FROM"; no recipient accepted (after all were
/// answered) -> transient_failure if any refusal was 4xx, else permanent_failure, at
/// "RCPT TO"; DATA 4xx/5xx -> failure at "DATA"; a code the command never gives
/// (1xx/3xx to MAIL or RCPT, other than 354 to DATA) -> unexpected_reply, abort.
envelope_next judge_envelope(const envelope& env, const reply& mail, const std::vector<reply>& rcpt,
                             const reply* data, send_result& r);

/// The verdict on the reply to the final dot: 2xx -> sent; 421 -> service_closing (discard);
/// 4xx/5xx -> transient/permanent_failure at "end of data"; else unexpected_reply (discard).
void judge_end_of_data(const reply& final_reply, send_result& r);

}  // namespace netpool::smtp
