// RESP (the Redis serialization protocol, versions 2 and 3): reply values, an incremental
// parser with limits, and command encoding. Plain code over bytes: no Asio, no OpenSSL, so
// it can be tested with strings and fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::redis {

/// The kind of a reply: RESP2's five, and RESP3's (HELLO 3) additions.
enum class reply_type {
    simple_string,  ///< +OK
    error,          ///< -ERR ... (RESP2), and RESP3's blob error !<len>
    integer,        ///< :42
    bulk_string,    ///< $<len> payload
    array,          ///< *<n> elements
    null,           ///< $-1, *-1 (RESP2) and _ (RESP3)
    map,            ///< %<n> key/value pairs (RESP3), kept as 2n elements: key, value, key, value...
    set,            ///< ~<n> (RESP3)
    push,           ///< ><n> out-of-band data (RESP3): pub/sub messages, client tracking
    double_value,   ///< ,3.14 ,inf ,-inf ,nan (RESP3)
    boolean,        ///< #t #f (RESP3)
    verbatim,       ///< =<len> "txt:..." (RESP3); `str` holds the text without the "txt:" prefix
    big_number,     ///< (12345678901234567890 (RESP3); `str` holds the digits
};

const char* to_string(reply_type t) noexcept;

/// One reply. Which members are meaningful depends on `type`: `str` for the string kinds
/// (simple, error, bulk, verbatim, big number), `integer`, `number` (double), `boolean`,
/// `elements` for the aggregates (array, map, set, push).
struct reply {
    reply_type type = reply_type::null;
    std::string str;
    std::int64_t integer = 0;
    double number = 0;
    bool boolean = false;
    std::vector<reply> elements;

    bool is_error() const noexcept { return type == reply_type::error; }
    bool is_null() const noexcept { return type == reply_type::null; }
    /// One line for logs and error details: "+OK", "-ERR unknown command", ":42",
    /// "\"value\"" (bulk, cut after 200 bytes), "(nil)", "[3 elements]", "{2 pairs}".
    std::string to_string() const;
};

reply simple(std::string s);
reply bulk(std::string s);
reply integer(std::int64_t v);

/// Bounds on what one reply may make the parser hold. Every value must be > 0.
struct resp_limits {
    std::size_t max_line = 64 * 1024;              ///< a simple string, error, number or header line
    std::size_t max_bulk = 64 * 1024 * 1024;       ///< one bulk string (also blob error, verbatim)
    /// Elements of one reply, all its aggregates together (a map's pairs count twice): a
    /// reply of many tiny elements costs far more memory than its bytes.
    std::size_t max_elements = 1024 * 1024;
    std::size_t max_depth = 32;                    ///< aggregates nested in one another
    std::size_t max_reply = 128 * 1024 * 1024;     ///< bytes of one reply on the wire, all of it
};

/// Parses replies from bytes given in any pieces. The shape of netpool::kit::incremental_parser:
/// feed() consumes every byte it is given unless a reply completes (then `used` says how many
/// were its own). It never reserves memory for a declared length or count beyond a small
/// cap: what it holds grows with the bytes that actually came.
///
/// Errors (error(), sticky until reset()): netpool::errc::protocol_error for bytes RESP does
/// not allow (an unknown type byte, a bad number, a missing CR LF, a RESP3 attribute or
/// streamed string, which this parser does not support); netpool::errc::frame_too_large when
/// a limit of resp_limits is exceeded, as soon as it is (a declared bulk length or element
/// count above the limit fails at its header). error_detail() says which, with the value.
/// Thread safety: none (one reader).
class resp_parser {
public:
    enum class status { need_more, complete, error };

    explicit resp_parser(resp_limits limits = {}) noexcept : limits_(limits) {}

    status feed(std::string_view in, std::size_t& used);
    /// The completed reply; the parser is ready for the next one.
    reply take();
    std::error_code error() const noexcept { return error_; }
    /// What was wrong, e.g. "RESP: bulk string of 1000000000 bytes exceeds max_bulk (67108864)".
    const std::string& error_detail() const noexcept { return detail_; }
    /// Forgets any partial reply and the error.
    void reset();

private:
    struct frame {
        reply value;
        std::size_t remaining;  // elements still to come
    };
    status feed_some(std::string_view in, std::size_t& used);
    status fail(std::error_code ec, std::string detail);
    status on_line(std::string_view line);
    status on_value(reply r);  // a complete value: into its aggregate, or the reply itself

    resp_limits limits_;
    std::string line_;             // the header or simple line read so far
    bool in_bulk_ = false;         // reading a bulk payload and its CR LF
    reply_type bulk_type_ = reply_type::bulk_string;
    std::size_t bulk_left_ = 0;    // payload bytes still to come, then 2 for CR LF
    std::string bulk_;
    std::vector<frame> stack_;     // open aggregates, outermost first
    std::size_t reply_bytes_ = 0;        // bytes of the current reply so far
    std::size_t declared_elements_ = 0;  // elements its aggregates declared so far
    reply done_;
    std::error_code error_;
    std::string detail_;
};

/// A command: its name and arguments, each sent as a bulk string.
using command = std::vector<std::string>;

/// Appends `args` as a RESP array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") to `out`.
void encode_command(std::span<const std::string_view> args, std::string& out);
void encode_command(std::span<const std::string> args, std::string& out);

}  // namespace netpool::redis
