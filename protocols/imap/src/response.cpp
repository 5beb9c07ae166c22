// The IMAP response parser. Two layers: a framer that follows lines and literals as bytes
// arrive (so it knows when a response is complete, and checks every announced literal size
// before buffering a byte of it), and a recursive-descent parser over one complete response.
#include <netpool/imap/response.hpp>

#include <netpool/error.hpp>
#include <netpool/imap/error.hpp>

#include <charconv>
#include <cstring>

namespace netpool::imap {

namespace {

char ascii_upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = ascii_upper(c);
    return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_upper(a[i]) != ascii_upper(b[i])) return false;
    return true;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// If `line` (without its line end) ends with a literal marker "{n}", "{n+}" or "~{n}",
/// returns true and the announced size (saturated at SIZE_MAX when it does not fit).
bool literal_marker(std::string_view line, std::size_t& n) noexcept {
    if (line.empty() || line.back() != '}') return false;
    std::size_t end = line.size() - 1;  // position of '}'
    std::size_t digits_end = end;
    if (digits_end > 0 && line[digits_end - 1] == '+') --digits_end;
    std::size_t start = digits_end;
    while (start > 0 && is_digit(line[start - 1])) --start;
    if (start == digits_end || start == 0 || line[start - 1] != '{') return false;
    n = 0;
    const auto [ptr, ec] = std::from_chars(line.data() + start, line.data() + digits_end, n);
    if (ec == std::errc::result_out_of_range) n = static_cast<std::size_t>(-1);
    else if (ec != std::errc{} || ptr != line.data() + digits_end) return false;
    return true;
}

/// True when `line`, the first line of a response, starts a response that is one line by
/// the grammar: a continuation, a tagged status (OK, NO, BAD) or an untagged OK, NO, BAD,
/// BYE or PREAUTH. Their resp-text is TEXT-CHARs: a "{n}" at its end is text, not a literal.
bool one_line_response(std::string_view line) noexcept {
    if (line.empty()) return false;
    if (line[0] == '+') return true;
    const auto sp = line.find(' ');
    if (line.substr(0, sp) != "*") return true;  // tagged: a status response or nothing valid
    if (sp == std::string_view::npos) return false;
    const auto rest = line.substr(sp + 1);
    const auto word = rest.substr(0, rest.find(' '));
    return iequals(word, "OK") || iequals(word, "NO") || iequals(word, "BAD") || iequals(word, "BYE") ||
           iequals(word, "PREAUTH");
}

/// Recursive descent over one complete response: `s` holds its lines and literals, and
/// ends with the final line end.
class reader {
public:
    reader(std::string_view s, const response_limits& lim) : s_(s), lim_(lim) {
        end_ = s_.size();
        if (end_ > 0 && s_[end_ - 1] == '\n') {
            --end_;
            if (end_ > 0 && s_[end_ - 1] == '\r') --end_;
        } else {
            end_ = npos;  // no final line end
        }
    }

    std::error_code parse(response& r) {
        if (end_ == npos) return netpool::errc::protocol_error;
        if (at_end()) return netpool::errc::protocol_error;
        if (s_[p_] == '+') {
            r.k = response::kind::continuation;
            ++p_;
            if (!at_end() && s_[p_] == ' ') ++p_;
            r.text = std::string(rest());
            return {};
        }
        if (s_[p_] == '*') {
            r.k = response::kind::untagged;
            ++p_;
            if (!space()) return netpool::errc::protocol_error;
            if (!at_end() && is_digit(s_[p_])) {
                std::string_view digits = word();
                std::uint32_t n = 0;
                const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
                if (ec != std::errc{} || ptr != digits.data() + digits.size()) return netpool::errc::protocol_error;
                r.number = n;
                if (!space()) return netpool::errc::protocol_error;
                const std::string_view name = word();
                if (name.empty()) return netpool::errc::protocol_error;
                r.name = upper(name);
                return values(r.data);
            }
            const std::string_view w = word();
            if (w.empty()) return netpool::errc::protocol_error;
            std::string up = upper(w);
            if (up == "OK" || up == "NO" || up == "BAD" || up == "BYE" || up == "PREAUTH") {
                r.status = std::move(up);
                return resp_text(r);
            }
            r.name = std::move(up);
            return values(r.data);
        }
        r.k = response::kind::tagged;
        const std::string_view tag = tag_word();
        if (tag.empty()) return netpool::errc::protocol_error;
        r.tag = std::string(tag);
        if (!space()) return netpool::errc::protocol_error;
        std::string up = upper(word());
        if (up != "OK" && up != "NO" && up != "BAD") return netpool::errc::protocol_error;
        r.status = std::move(up);
        return resp_text(r);
    }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    bool at_end() const noexcept { return p_ >= end_; }
    std::string_view rest() noexcept {
        const auto out = s_.substr(p_, end_ - p_);
        p_ = end_;
        return out;
    }
    bool space() noexcept {
        if (at_end() || s_[p_] != ' ') return false;
        ++p_;
        return true;
    }
    /// Bytes up to the next space or the end of the response.
    std::string_view word() noexcept {
        const std::size_t b = p_;
        while (!at_end() && s_[p_] != ' ' && s_[p_] != '\r' && s_[p_] != '\n') ++p_;
        return s_.substr(b, p_ - b);
    }
    std::string_view tag_word() noexcept {
        const std::size_t b = p_;
        while (!at_end()) {
            const unsigned char c = static_cast<unsigned char>(s_[p_]);
            if (c <= 0x20 || c >= 0x7f || std::strchr("(){%*\"\\+", c) != nullptr) break;
            ++p_;
        }
        return s_.substr(b, p_ - b);
    }

    std::error_code resp_text(response& r) {
        if (at_end()) return {};
        if (!space()) return netpool::errc::protocol_error;
        if (!at_end() && s_[p_] == '[') {
            const std::size_t close = s_.find(']', p_);
            if (close == std::string_view::npos || close >= end_) return netpool::errc::protocol_error;
            r.code = std::string(s_.substr(p_ + 1, close - p_ - 1));
            if (r.code.find_first_of("\r\n") != std::string::npos) return netpool::errc::protocol_error;
            p_ = close + 1;
            if (!at_end() && s_[p_] == ' ') ++p_;
        }
        r.text = std::string(rest());
        return {};
    }

    std::error_code values(std::vector<value>& out) {
        for (;;) {
            while (!at_end() && s_[p_] == ' ') ++p_;
            if (at_end()) return {};
            value v;
            if (auto ec = parse_value(v, 0)) return ec;
            out.push_back(std::move(v));
        }
    }

    std::error_code parse_value(value& v, std::size_t depth) {
        if (at_end()) return netpool::errc::protocol_error;
        if (++values_ > lim_.max_values) return limit_errc::too_many_values;
        const char c = s_[p_];
        if (c == '(') {
            if (depth + 1 > lim_.max_depth) return netpool::errc::protocol_error;
            v.kind = value::type::list;
            ++p_;
            for (;;) {
                while (!at_end() && s_[p_] == ' ') ++p_;
                if (at_end()) return netpool::errc::protocol_error;
                if (s_[p_] == ')') {
                    ++p_;
                    return {};
                }
                value item;
                if (auto ec = parse_value(item, depth + 1)) return ec;
                v.items.push_back(std::move(item));
            }
        }
        if (c == '"') return quoted(v);
        if (c == '{' || (c == '~' && p_ + 1 < end_ && s_[p_ + 1] == '{')) return literal(v);
        return atom(v);
    }

    std::error_code quoted(value& v) {
        v.kind = value::type::string;
        ++p_;
        for (;;) {
            if (at_end()) return netpool::errc::protocol_error;
            const char ch = s_[p_++];
            if (ch == '"') return {};
            if (ch == '\r' || ch == '\n') return netpool::errc::protocol_error;
            if (ch == '\\') {
                if (at_end()) return netpool::errc::protocol_error;
                const char esc = s_[p_++];
                if (esc == '\r' || esc == '\n') return netpool::errc::protocol_error;
                v.text.push_back(esc);
                continue;
            }
            v.text.push_back(ch);
        }
    }

    std::error_code literal(value& v) {
        if (s_[p_] == '~') ++p_;
        ++p_;  // '{'
        const std::size_t b = p_;
        while (!at_end() && is_digit(s_[p_])) ++p_;
        if (p_ == b) return netpool::errc::protocol_error;
        std::size_t n = 0;
        const auto [ptr, ec] = std::from_chars(s_.data() + b, s_.data() + p_, n);
        if (ec == std::errc::result_out_of_range) return netpool::errc::frame_too_large;
        if (ec != std::errc{} || ptr != s_.data() + p_) return netpool::errc::protocol_error;
        if (!at_end() && s_[p_] == '+') ++p_;
        if (at_end() || s_[p_] != '}') return netpool::errc::protocol_error;
        ++p_;
        if (p_ < s_.size() && s_[p_] == '\r') ++p_;
        if (p_ >= s_.size() || s_[p_] != '\n') return netpool::errc::protocol_error;
        ++p_;
        if (n > lim_.max_literal) return netpool::errc::frame_too_large;
        // The literal must leave room for the rest of the response and its final line end.
        if (end_ < p_ || n > end_ - p_) return netpool::errc::protocol_error;
        v.kind = value::type::string;
        v.text.assign(s_.data() + p_, n);
        p_ += n;
        return {};
    }

    std::error_code atom(value& v) {
        const std::size_t b = p_;
        std::size_t brackets = 0;
        while (!at_end()) {
            const unsigned char ch = static_cast<unsigned char>(s_[p_]);
            if (ch == '\r' || ch == '\n') break;
            if (brackets > 0) {
                if (ch == '[') ++brackets;
                else if (ch == ']') --brackets;
                ++p_;
                continue;
            }
            if (ch == ' ' || ch == '(' || ch == ')' || ch == '"' || ch == '{') break;  // ']' is an ASTRING-CHAR
            if (ch < 0x20 || ch == 0x7f) return netpool::errc::protocol_error;
            if (ch == '[') ++brackets;
            ++p_;
        }
        if (brackets > 0 || p_ == b) return netpool::errc::protocol_error;
        const std::string_view t = s_.substr(b, p_ - b);
        if (iequals(t, "NIL")) {
            v.kind = value::type::nil;
            return {};
        }
        bool digits = true;
        for (char ch : t) digits = digits && is_digit(ch);
        if (digits) {
            std::uint64_t n = 0;
            const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
            if (ec == std::errc{} && ptr == t.data() + t.size()) {
                v.kind = value::type::number;
                v.number = n;
                v.text = std::string(t);
                return {};
            }
        }
        v.kind = value::type::atom;
        v.text = std::string(t);
        return {};
    }

    std::string_view s_;
    const response_limits& lim_;
    std::size_t p_ = 0;
    std::size_t end_ = 0;
    std::size_t values_ = 0;  // parsed so far, at every depth: bounded by max_values
};

}  // namespace

bool value::is_atom(std::string_view name) const noexcept { return kind == type::atom && iequals(text, name); }

std::string response::code_name() const {
    const auto sp = code.find(' ');
    return upper(std::string_view(code).substr(0, sp));
}

std::string_view response::code_argument() const noexcept {
    const auto sp = code.find(' ');
    if (sp == std::string::npos) return {};
    return std::string_view(code).substr(sp + 1);
}

std::string response::to_string() const {
    std::string s;
    switch (k) {
    case kind::continuation: return text.empty() ? "+" : "+ " + text;
    case kind::tagged: s = tag; break;
    case kind::untagged: s = "*"; break;
    }
    // Appended piece by piece: `" " + std::to_string(n)` (a literal plus a temporary string)
    // makes GCC 12 at -O3 warn -Wrestrict about the insert it inlines (a false positive, but
    // appending is also one allocation less).
    const auto word = [&s](std::string_view w) {
        s += ' ';
        s += w;
    };
    if (number) word(std::to_string(*number));
    if (!status.empty()) word(status);
    if (!name.empty()) word(name);
    if (!code.empty()) {
        s += " [";
        s += code;
        s += ']';
    }
    if (!text.empty()) word(text);
    return s;
}

void response_parser::reset() {
    buf_.clear();
    line_start_ = 0;
    literal_left_ = 0;
    in_literal_ = false;
    done_ = {};
    error_.clear();
}

response_parser::status response_parser::fail(std::error_code ec) {
    error_ = ec;
    buf_.clear();
    return status::error;
}

response_parser::status response_parser::feed(std::string_view in, std::size_t& consumed) {
    consumed = 0;
    if (error_) return status::error;
    std::size_t i = 0;
    while (i < in.size()) {
        if (in_literal_) {
            const std::size_t take = std::min(literal_left_, in.size() - i);
            buf_.append(in.data() + i, take);
            i += take;
            literal_left_ -= take;
            if (literal_left_ == 0) {
                in_literal_ = false;
                line_start_ = buf_.size();
            }
            continue;
        }
        const void* nl = std::memchr(in.data() + i, '\n', in.size() - i);
        const std::size_t stop = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - in.data()) + 1 : in.size();
        const std::size_t n = stop - i;
        if (buf_.size() - line_start_ + n > limits_.max_line) return fail(netpool::errc::frame_too_large);
        if (buf_.size() + n > limits_.max_response) return fail(netpool::errc::frame_too_large);
        buf_.append(in.data() + i, n);
        i = stop;
        if (!nl) break;
        const status s = end_of_line();
        if (s != status::need_more) {
            consumed = i;
            return s;
        }
    }
    consumed = in.size();
    return status::need_more;
}

response_parser::status response_parser::end_of_line() {
    std::string_view line(buf_.data() + line_start_, buf_.size() - line_start_);
    line.remove_suffix(1);  // '\n'
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::size_t n = 0;
    if (literal_marker(line, n) && !(line_start_ == 0 && one_line_response(line))) {
        // Checked before a byte of the literal is buffered, whatever size it announces.
        if (n > limits_.max_literal) return fail(netpool::errc::frame_too_large);
        if (n > limits_.max_response - buf_.size()) return fail(netpool::errc::frame_too_large);
        literal_left_ = n;
        in_literal_ = n > 0;
        line_start_ = buf_.size();
        return status::need_more;
    }
    response r;
    reader rd(buf_, limits_);
    if (auto ec = rd.parse(r)) return fail(ec);
    done_ = std::move(r);
    buf_.clear();
    line_start_ = 0;
    return status::complete;
}

std::optional<response> parse_response(std::string_view wire, std::error_code& ec, response_limits limits) {
    ec.clear();
    response_parser p(limits);
    std::size_t used = 0;
    switch (p.feed(wire, used)) {
    case response_parser::status::complete:
        if (used != wire.size()) {
            ec = netpool::errc::protocol_error;
            return std::nullopt;
        }
        return p.take();
    case response_parser::status::error: ec = p.error(); return std::nullopt;
    case response_parser::status::need_more: break;
    }
    ec = netpool::errc::protocol_error;
    return std::nullopt;
}

namespace {
bool atom_char(unsigned char c) noexcept {
    return c > 0x20 && c < 0x7f && std::strchr("(){%*\"\\", c) == nullptr;
}
}  // namespace

bool needs_literal(std::string_view s) noexcept {
    for (unsigned char c : s)
        if (c == 0 || c == '\r' || c == '\n' || c >= 0x80) return true;
    return false;
}

std::string quote_astring(std::string_view s) {
    if (s.empty()) return "\"\"";
    if (needs_literal(s)) {
        std::string marker = "{";  // appended, not "{" + to_string(...): see response::to_string
        marker += std::to_string(s.size());
        marker += '}';
        return marker;
    }
    bool atom = true;
    for (unsigned char c : s) atom = atom && atom_char(c);
    if (atom) return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

}  // namespace netpool::imap
