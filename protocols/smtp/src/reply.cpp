#include <netpool/smtp/reply.hpp>

#include <netpool/error.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace netpool::smtp {

namespace {

bool digit(char c, char lo, char hi) noexcept { return c >= lo && c <= hi; }

/// "x.y.z" at the start of `text`, followed by a space or the end, with x the reply's class.
std::optional<enhanced_status> leading_status(std::string_view text, int code) {
    enhanced_status s;
    int* parts[3] = {&s.klass, &s.subject, &s.detail};
    const char* p = text.data();
    const char* end = text.data() + text.size();
    for (int i = 0; i < 3; ++i) {
        // RFC 3463: class 1 digit, subject and detail 1-3 digits each.
        const char* limit = p + std::min<std::size_t>(static_cast<std::size_t>(end - p), i == 0 ? 1 : 3);
        // Digits only: std::from_chars would take a leading '-' ("2.1.-5").
        if (p == limit || !digit(*p, '0', '9')) return std::nullopt;
        auto [q, ec] = std::from_chars(p, limit, *parts[i]);
        if (ec != std::errc{} || q == p) return std::nullopt;
        p = q;
        if (i < 2) {
            if (p == end || *p != '.') return std::nullopt;
            ++p;
        }
    }
    if (p != end && *p != ' ') return std::nullopt;
    if (s.klass != code / 100) return std::nullopt;
    return s;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::string enhanced_status::to_string() const {
    return std::to_string(klass) + '.' + std::to_string(subject) + '.' + std::to_string(detail);
}

std::string reply::to_string() const {
    std::string s = std::to_string(code);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        s += i == 0 ? " " : " / ";
        s += lines[i];
    }
    return s;
}

void reply_parser::reset() {
    line_.clear();
    building_ = {};
    current_done_ = {};
    error_.clear();
}

reply_parser::status reply_parser::fail(std::error_code ec) {
    error_ = ec;
    return status::error;
}

reply_parser::status reply_parser::feed(std::string_view in, std::size_t& consumed) {
    consumed = 0;
    if (error_) return status::error;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c != '\n') {
            // The terminator counts against the limit: a line may hold max_line - 2 bytes of text.
            if (line_.size() + 2 >= limits_.max_line) return fail(errc::frame_too_large);
            line_.push_back(c);
            continue;
        }
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        const status s = finish_line();
        if (s != status::need_more) {
            consumed = i + 1;
            return s;
        }
    }
    consumed = in.size();
    return status::need_more;
}

reply_parser::status reply_parser::finish_line() {
    std::string line = std::move(line_);
    line_.clear();
    if (line.size() < 3 || !digit(line[0], '2', '5') || !digit(line[1], '0', '5') || !digit(line[2], '0', '9'))
        return fail(errc::protocol_error);
    bool last = true;
    if (line.size() > 3) {
        if (line[3] == '-') last = false;
        else if (line[3] != ' ') return fail(errc::protocol_error);
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!building_.lines.empty() && code != building_.code) return fail(errc::protocol_error);
    if (building_.lines.size() >= limits_.max_lines) return fail(errc::frame_too_large);
    std::string text = line.size() > 4 ? line.substr(4) : std::string();
    if (building_.lines.empty()) {
        building_.code = code;
        building_.status = leading_status(text, code);
    }
    building_.lines.push_back(std::move(text));
    if (!last) return status::need_more;
    current_done_ = std::move(building_);
    building_ = {};
    return status::complete;
}

std::optional<reply> parse_reply(std::string_view text, std::error_code& ec, reply_limits limits) {
    reply_parser p(limits);
    std::size_t used = 0;
    switch (p.feed(text, used)) {
    case reply_parser::status::complete:
        if (used != text.size()) {
            ec = errc::protocol_error;
            return std::nullopt;
        }
        ec.clear();
        return p.take();
    case reply_parser::status::error: ec = p.error(); return std::nullopt;
    case reply_parser::status::need_more: ec = errc::connection_closed; return std::nullopt;  // truncated
    }
    return std::nullopt;
}

bool capabilities::has_auth(std::string_view mech) const {
    const std::string m = upper(mech);
    return std::find(auth.begin(), auth.end(), m) != auth.end();
}

capabilities parse_ehlo(const reply& r) {
    capabilities caps;
    caps.esmtp = r.code == 250;
    for (std::size_t i = 1; i < r.lines.size(); ++i) {
        std::string_view line = r.lines[i];
        std::vector<std::string_view> words;
        while (!line.empty()) {
            const auto sp = line.find_first_of(" =");  // "AUTH=PLAIN" is an old, common form
            words.push_back(line.substr(0, sp));
            if (sp == std::string_view::npos) break;
            line.remove_prefix(sp + 1);
        }
        if (words.empty() || words[0].empty()) continue;
        const std::string key = upper(words[0]);
        if (key == "PIPELINING") caps.pipelining = true;
        else if (key == "STARTTLS") caps.starttls = true;
        else if (key == "8BITMIME") caps.eight_bit_mime = true;
        else if (key == "SMTPUTF8") caps.smtputf8 = true;
        else if (key == "ENHANCEDSTATUSCODES") caps.enhanced_status_codes = true;
        else if (key == "CHUNKING") caps.chunking = true;
        else if (key == "SIZE") {
            std::uint64_t n = 0;
            if (words.size() > 1) {
                auto [p, ec] = std::from_chars(words[1].data(), words[1].data() + words[1].size(), n);
                if (ec != std::errc{} || p != words[1].data() + words[1].size()) n = 0;
            }
            caps.size = n;
        } else if (key == "AUTH") {
            for (std::size_t w = 1; w < words.size(); ++w) {
                if (words[w].empty()) continue;
                std::string m = upper(words[w]);
                if (std::find(caps.auth.begin(), caps.auth.end(), m) == caps.auth.end()) caps.auth.push_back(std::move(m));
            }
        }
    }
    return caps;
}

void encode_data(std::string_view message, std::string& out) {
    out.reserve(out.size() + message.size() + message.size() / 64 + 5);
    bool line_start = true;
    for (std::size_t i = 0; i < message.size(); ++i) {
        const char c = message[i];
        if (c == '\r' || c == '\n') {
            // CRLF, bare CR and bare LF all end a line: SMTP knows only CRLF.
            if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') ++i;
            out += "\r\n";
            line_start = true;
            continue;
        }
        if (line_start && c == '.') out += '.';  // transparency: the server removes one dot
        out += c;
        line_start = false;
    }
    if (!line_start) out += "\r\n";
    out += ".\r\n";
}

}  // namespace netpool::smtp
