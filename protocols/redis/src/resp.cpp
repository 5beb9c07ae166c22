// The RESP parser and encoder (types.hpp). No I/O.
#include <netpool/redis/types.hpp>

#include <netpool/error.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace netpool::redis {

namespace {

/// What the parser reserves at most for a declared length or count before the bytes come: a
/// header is a promise the server need not keep.
constexpr std::size_t reserve_cap = 64 * 1024;
constexpr std::size_t element_reserve_cap = 64;

template <class T> bool parse_number(std::string_view s, T& out) {
    if (s.empty()) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

std::string printable(std::string_view s, std::size_t max = 200) {
    std::string out;
    for (char ch : s.substr(0, max)) {
        const auto u = static_cast<unsigned char>(ch);
        if (u >= 0x20 && u < 0x7f) {
            out += ch;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        }
    }
    if (s.size() > max) out += "...";
    return out;
}

template <class String> void encode(std::span<const String> args, std::string& out) {
    out += '*';
    out += std::to_string(args.size());
    out += "\r\n";
    for (const auto& a : args) {
        out += '$';
        out += std::to_string(a.size());
        out += "\r\n";
        out.append(a.data(), a.size());
        out += "\r\n";
    }
}

}  // namespace

const char* to_string(reply_type t) noexcept {
    switch (t) {
    case reply_type::simple_string: return "simple string";
    case reply_type::error: return "error";
    case reply_type::integer: return "integer";
    case reply_type::bulk_string: return "bulk string";
    case reply_type::array: return "array";
    case reply_type::null: return "null";
    case reply_type::map: return "map";
    case reply_type::set: return "set";
    case reply_type::push: return "push";
    case reply_type::double_value: return "double";
    case reply_type::boolean: return "boolean";
    case reply_type::verbatim: return "verbatim string";
    case reply_type::big_number: return "big number";
    }
    return "unknown";
}

std::string reply::to_string() const {
    switch (type) {
    case reply_type::simple_string: return "+" + printable(str);
    case reply_type::error: return "-" + printable(str);
    case reply_type::integer: return ":" + std::to_string(integer);
    case reply_type::bulk_string:
    case reply_type::verbatim: return "\"" + printable(str) + "\"";
    case reply_type::big_number: return "(" + printable(str);
    case reply_type::null: return "(nil)";
    case reply_type::double_value: {
        char buf[64];
        std::snprintf(buf, sizeof buf, ",%.17g", number);
        return buf;
    }
    case reply_type::boolean: return boolean ? "#t" : "#f";
    case reply_type::map: return "{" + std::to_string(elements.size() / 2) + " pairs}";
    case reply_type::array:
    case reply_type::set:
    case reply_type::push:
        return std::string(type == reply_type::array ? "[" : type == reply_type::set ? "~[" : ">[") +
               std::to_string(elements.size()) + " elements]";
    }
    return "?";
}

reply simple(std::string s) {
    reply r;
    r.type = reply_type::simple_string;
    r.str = std::move(s);
    return r;
}
reply bulk(std::string s) {
    reply r;
    r.type = reply_type::bulk_string;
    r.str = std::move(s);
    return r;
}
reply integer(std::int64_t v) {
    reply r;
    r.type = reply_type::integer;
    r.integer = v;
    return r;
}

void encode_command(std::span<const std::string_view> args, std::string& out) { encode(args, out); }
void encode_command(std::span<const std::string> args, std::string& out) { encode(args, out); }

resp_parser::status resp_parser::fail(std::error_code ec, std::string detail) {
    error_ = ec;
    detail_ = std::move(detail);
    return status::error;
}

void resp_parser::reset() {
    *this = resp_parser(limits_);
}

reply resp_parser::take() {
    reply r = std::move(done_);
    done_ = reply{};
    reply_bytes_ = 0;
    declared_elements_ = 0;
    return r;
}

resp_parser::status resp_parser::feed(std::string_view in, std::size_t& used) {
    used = 0;
    if (error_) return status::error;
    // Only what is left of max_reply is parsed: however the bytes arrive (whole, or in reads
    // of any size), the parser sees the same ones before the limit is hit, so the outcome
    // (a reply, or which error) does not depend on the reads. Found by fuzz_redis_resp.
    const std::size_t room = limits_.max_reply - reply_bytes_;
    const status st = feed_some(in.substr(0, room), used);
    if (st == status::error) return st;
    reply_bytes_ += used;
    if (st == status::need_more && in.size() > room)
        return fail(errc::frame_too_large,
                    "RESP: reply longer than max_reply (" + std::to_string(limits_.max_reply) + " bytes)");
    return st;
}

resp_parser::status resp_parser::feed_some(std::string_view in, std::size_t& used) {
    while (used < in.size()) {
        if (in_bulk_) {
            if (bulk_left_ > 2) {
                const std::size_t n = std::min(bulk_left_ - 2, in.size() - used);
                bulk_.append(in.substr(used, n));
                used += n;
                bulk_left_ -= n;
                continue;
            }
            const char want = bulk_left_ == 2 ? '\r' : '\n';
            if (in[used++] != want)
                return fail(errc::protocol_error, std::string("RESP: ") + redis::to_string(bulk_type_) +
                                                      " not followed by CR LF");
            if (--bulk_left_ > 0) continue;
            in_bulk_ = false;
            reply r;
            r.type = bulk_type_;
            r.str = std::move(bulk_);
            bulk_.clear();
            if (r.type == reply_type::verbatim) {
                // "txt:" or "mkd:": a three-letter format and a colon before the text.
                if (r.str.size() < 4 || r.str[3] != ':')
                    return fail(errc::protocol_error, "RESP: verbatim string without its format prefix");
                r.str.erase(0, 4);
            }
            if (const status st = on_value(std::move(r)); st != status::need_more) return st;
            continue;
        }
        const std::string_view rest = in.substr(used);
        const std::size_t lf = rest.find('\n');
        const std::size_t take = lf == std::string_view::npos ? rest.size() : lf;
        // The CR before the LF may take one byte over the limit until the LF comes.
        if (line_.size() + take > limits_.max_line + 1)
            return fail(errc::frame_too_large,
                        "RESP: line longer than max_line (" + std::to_string(limits_.max_line) + " bytes)");
        line_.append(rest.substr(0, take));
        if (lf == std::string_view::npos) {
            used = in.size();
            return status::need_more;
        }
        used += lf + 1;
        if (line_.empty() || line_.back() != '\r')
            return fail(errc::protocol_error, "RESP: line ended by LF without CR: \"" + printable(line_) + "\"");
        line_.pop_back();
        if (line_.size() > limits_.max_line)
            return fail(errc::frame_too_large,
                        "RESP: line longer than max_line (" + std::to_string(limits_.max_line) + " bytes)");
        const std::string line = std::move(line_);
        line_.clear();
        if (const status st = on_line(line); st != status::need_more) return st;
    }
    return status::need_more;
}

resp_parser::status resp_parser::on_line(std::string_view line) {
    if (line.empty()) return fail(errc::protocol_error, "RESP: empty line where a type byte was expected");
    const char t = line[0];
    const std::string_view body = line.substr(1);
    reply r;
    switch (t) {
    case '+':
    case '-':
        r.type = t == '+' ? reply_type::simple_string : reply_type::error;
        r.str = body;
        return on_value(std::move(r));
    case ':':
        r.type = reply_type::integer;
        if (!parse_number(body, r.integer))
            return fail(errc::protocol_error, "RESP: bad integer \"" + printable(body) + "\"");
        return on_value(std::move(r));
    case '(':
        r.type = reply_type::big_number;
        if (body.empty() || !std::all_of(body.begin() + (body[0] == '-' ? 1 : 0), body.end(),
                                         [](char ch) { return ch >= '0' && ch <= '9'; }) ||
            body == "-")
            return fail(errc::protocol_error, "RESP: bad big number \"" + printable(body) + "\"");
        r.str = body;
        return on_value(std::move(r));
    case ',':
        r.type = reply_type::double_value;
        if (!parse_number(body, r.number))
            return fail(errc::protocol_error, "RESP: bad double \"" + printable(body) + "\"");
        return on_value(std::move(r));
    case '#':
        r.type = reply_type::boolean;
        if (body != "t" && body != "f")
            return fail(errc::protocol_error, "RESP: bad boolean \"" + printable(body) + "\"");
        r.boolean = body == "t";
        return on_value(std::move(r));
    case '_':
        if (!body.empty()) return fail(errc::protocol_error, "RESP: null with a value \"" + printable(body) + "\"");
        return on_value(std::move(r));
    case '$':
    case '!':
    case '=': {
        bulk_type_ = t == '$' ? reply_type::bulk_string : t == '!' ? reply_type::error : reply_type::verbatim;
        if (body == "?") return fail(errc::protocol_error, "RESP3 streamed strings are not supported");
        std::int64_t len = 0;
        if (!parse_number(body, len) || len < -1 || (len == -1 && t != '$'))
            return fail(errc::protocol_error, "RESP: bad length \"" + printable(body) + "\"");
        if (len == -1) return on_value(std::move(r));  // RESP2's null bulk string
        if (static_cast<std::uint64_t>(len) > limits_.max_bulk)
            return fail(errc::frame_too_large, "RESP: " + std::string(redis::to_string(bulk_type_)) + " of " +
                                                   std::to_string(len) + " bytes exceeds max_bulk (" +
                                                   std::to_string(limits_.max_bulk) + ")");
        in_bulk_ = true;
        bulk_left_ = static_cast<std::size_t>(len) + 2;
        bulk_.clear();
        bulk_.reserve(std::min(static_cast<std::size_t>(len), reserve_cap));
        return status::need_more;
    }
    case '*':
    case '%':
    case '~':
    case '>': {
        if (body == "?") return fail(errc::protocol_error, "RESP3 streamed aggregates are not supported");
        std::int64_t n = 0;
        if (!parse_number(body, n) || n < -1 || (n == -1 && t != '*'))
            return fail(errc::protocol_error, "RESP: bad element count \"" + printable(body) + "\"");
        if (n == -1) return on_value(std::move(r));  // RESP2's null array
        r.type = t == '*' ? reply_type::array : t == '%' ? reply_type::map : t == '~' ? reply_type::set : reply_type::push;
        const std::uint64_t per = t == '%' ? 2 : 1;
        const std::uint64_t count = static_cast<std::uint64_t>(n);
        if (count > limits_.max_elements || count * per > limits_.max_elements - declared_elements_)
            return fail(errc::frame_too_large,
                        "RESP: " + std::string(redis::to_string(r.type)) + " of " + std::to_string(n) +
                            (per == 2 ? " pairs" : " elements") + " takes the reply over max_elements (" +
                            std::to_string(limits_.max_elements) + ")");
        if (stack_.size() >= limits_.max_depth)
            return fail(errc::frame_too_large,
                        "RESP: aggregates nested deeper than max_depth (" + std::to_string(limits_.max_depth) + ")");
        declared_elements_ += static_cast<std::size_t>(count * per);
        if (count == 0) return on_value(std::move(r));
        r.elements.reserve(std::min<std::size_t>(static_cast<std::size_t>(count * per), element_reserve_cap));
        stack_.push_back(frame{std::move(r), static_cast<std::size_t>(count * per)});
        return status::need_more;
    }
    case '|': return fail(errc::protocol_error, "RESP3 attributes are not supported");
    default: {
        char buf[80];
        std::snprintf(buf, sizeof buf, "RESP: unknown type byte 0x%02x", static_cast<unsigned char>(t));
        return fail(errc::protocol_error, buf);
    }
    }
}

resp_parser::status resp_parser::on_value(reply r) {
    while (!stack_.empty()) {
        frame& top = stack_.back();
        top.value.elements.push_back(std::move(r));
        if (--top.remaining > 0) return status::need_more;
        r = std::move(top.value);
        stack_.pop_back();
    }
    done_ = std::move(r);
    return status::complete;
}

}  // namespace netpool::redis
