// The RFC 5322 builder: headers (with the injection guard and RFC 2047 words), a UTF-8
// text/plain body in 7bit, 8bit or quoted-printable, and the envelope.
#include <netpool/smtp/message.hpp>

#include <netpool/base64.hpp>
#include <netpool/smtp/protocol.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <random>
#include <stdexcept>

namespace netpool::smtp {

namespace {

constexpr std::size_t max_line_bytes = 998;  // RFC 5322 2.1.1, without CRLF
constexpr std::size_t max_word_payload = 45;  // 45 bytes -> 60 base64 chars -> 72-byte word (<= 75)

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

/// A value with CR or LF would end the header and start another of the sender's choosing.
void check_value(std::string_view header, std::string_view value) {
    if (value.find_first_of("\r\n") != std::string_view::npos)
        throw std::invalid_argument("message header '" + std::string(header) + "': the value contains CR or LF");
}

void check_name(std::string_view name) {
    bool ok = !name.empty();
    for (char c : name) ok = ok && c > 0x20 && c < 0x7F && c != ':';
    if (!ok) {
        std::string shown(name);
        for (auto& c : shown)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
        throw std::invalid_argument("message header name '" + shown + "': must be printable ASCII without ':' or spaces");
    }
}

bool printable_ascii(std::string_view s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c >= 0x7F) return false;
    }
    return true;
}

/// "Name <addr>" with a non-ASCII name gets the name encoded; anything else is kept.
std::string mailbox_header(std::string_view mailbox) {
    mailbox = trim(mailbox);
    const auto lt = mailbox.rfind('<');
    if (lt == std::string_view::npos || lt == 0) return std::string(mailbox);
    std::string_view name = trim(mailbox.substr(0, lt));
    if (printable_ascii(name)) return std::string(mailbox);
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
    return encode_header_word(name) + " " + std::string(mailbox.substr(lt));
}

/// "To: a, b" folded before an address that would take the line past 78 characters.
void address_header(std::string& out, std::string_view name, const std::vector<std::string>& boxes) {
    if (boxes.empty()) return;
    out += name;
    out += ": ";
    std::size_t line = name.size() + 2;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
        const std::string box = mailbox_header(boxes[i]);
        if (i > 0) {
            out += ',';
            ++line;
            if (line + 1 + box.size() > 78) {
                out += "\r\n";
                line = 0;
            }
            out += ' ';
            ++line;
        }
        out += box;
        const auto nl = box.rfind('\n');
        line = nl == std::string::npos ? line + box.size() : box.size() - nl - 1;
    }
    out += "\r\n";
}

std::string rfc5322_date(std::time_t t) {
    static constexpr std::array<const char*, 7> days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[static_cast<std::size_t>(tm.tm_wday) % 7],
                  tm.tm_mday, months[static_cast<std::size_t>(tm.tm_mon) % 12], tm.tm_year + 1900, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
    return buf;
}

std::string random_id() {
    thread_local std::mt19937_64 rng{std::random_device{}() ^
                                     static_cast<std::uint64_t>(std::time(nullptr))};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
}

/// The body's lines, whatever their ends (CRLF, bare LF, bare CR).
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\r' && text[i] != '\n') continue;
        lines.push_back(text.substr(start, i - start));
        if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
        start = i + 1;
    }
    if (start < text.size()) lines.push_back(text.substr(start));
    return lines;
}

/// RFC 2047 encoded words for any text (defined below, beside encode_header_word).
std::string encode_words(std::string_view text);

/// RFC 2045 6.7 for one line: output lines at most 76 characters, soft breaks "=".
void quoted_printable_line(std::string_view line, std::string& out) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::size_t len = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const auto c = static_cast<unsigned char>(line[i]);
        const bool last = i + 1 == line.size();
        char token[3];
        std::size_t n = 0;
        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
            token[n++] = static_cast<char>(c);
        } else {
            token[n++] = '=';
            token[n++] = hex[c >> 4];
            token[n++] = hex[c & 15];
        }
        if (len + n > 75) {  // room for the soft break's '='
            out += "=\r\n";
            len = 0;
        }
        out.append(token, n);
        len += n;
    }
    out += "\r\n";
}

}  // namespace

std::string address_of(std::string_view mailbox) {
    mailbox = trim(mailbox);
    const auto lt = mailbox.rfind('<');
    if (lt != std::string_view::npos) {
        const auto gt = mailbox.find('>', lt);
        if (gt != std::string_view::npos) return std::string(trim(mailbox.substr(lt + 1, gt - lt - 1)));
    }
    return std::string(mailbox);
}

std::string encode_header_word(std::string_view text) {
    if (printable_ascii(text) && text.find("=?") == std::string_view::npos) return std::string(text);
    return encode_words(text);
}

namespace {

std::string encode_words(std::string_view text) {
    std::string out;
    while (!text.empty()) {
        std::size_t n = std::min(text.size(), max_word_payload);
        if (n < text.size()) {
            // Never split a character: back off over continuation bytes (10xxxxxx) so the
            // next word starts on a lead byte. Invalid UTF-8 with no lead byte in reach is
            // cut where it is.
            std::size_t k = n;
            while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
            if (k > 0) n = k;
        }
        if (!out.empty()) out += "\r\n ";
        out += "=?UTF-8?B?";
        out += base64_encode(text.substr(0, n));
        out += "?=";
        text.remove_prefix(n);
    }
    return out;
}

/// "Name: value\r\n" with the value folded (CRLF before a space or tab, RFC 5322 2.2.3) when
/// the line would pass 998 octets; lines aim at 78. Throws std::invalid_argument naming the
/// header when a run without white space is too long to fold.
void folded_header(std::string& out, std::string_view name, std::string_view value) {
    if (name.size() + 2 + value.size() <= max_line_bytes) {
        out.append(name).append(": ").append(value).append("\r\n");
        return;
    }
    out.append(name).append(":");
    std::size_t line = name.size() + 1;
    std::string_view rest = value;
    bool first = true;
    while (!rest.empty()) {
        // The next piece: leading white space (where a fold may go) and the word after it.
        std::size_t ws = 0;
        while (ws < rest.size() && (rest[ws] == ' ' || rest[ws] == '\t')) ++ws;
        std::size_t end = ws;
        while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t') ++end;
        std::string_view piece = rest.substr(0, end);
        if (first) {
            out += ' ';  // the space after "Name:"
            ++line;
            piece = piece.substr(ws);  // the value's own leading blanks are not kept
        } else if (line + piece.size() > 78 && ws > 0 && end > ws) {  // never a blank-only line
            out += "\r\n";
            line = 0;
        }
        if (line + piece.size() > max_line_bytes)
            throw std::invalid_argument("message header '" + std::string(name) + "': a word of " +
                                        std::to_string(end - ws) + " octets cannot be folded into a line of at most " +
                                        std::to_string(max_line_bytes) + " (RFC 5322 2.1.1)");
        out += piece;
        line += piece.size();
        rest.remove_prefix(end);
        first = false;
    }
    out += "\r\n";
}

}  // namespace

std::string message::render(std::string_view id_domain) const {
    check_value("From", from);
    for (const auto& a : to) check_value("To", a);
    for (const auto& a : cc) check_value("Cc", a);
    for (const auto& a : bcc) check_value("Bcc", a);
    check_value("Subject", subject);
    check_value("Message-ID", id_domain);
    bool has_date = false, has_id = false;
    for (const auto& [name, value] : headers) {
        check_name(name);
        check_value(name, value);
        has_date = has_date || iequals(name, "Date");
        has_id = has_id || iequals(name, "Message-ID");
    }

    const auto lines = split_lines(text);
    std::size_t longest = 0;
    for (auto l : lines) longest = std::max(longest, l.size());
    const bool eight_bit = has_8bit(text);
    const char* cte = longest > max_line_bytes ? "quoted-printable" : eight_bit ? "8bit" : "7bit";

    std::string out;
    out.reserve(512 + text.size() + text.size() / 16);
    if (!has_date) out += "Date: " + rfc5322_date(std::time(nullptr)) + "\r\n";
    if (!has_id) {
        out += "Message-ID: <" + random_id() + "@";
        out += id_domain.empty() ? std::string_view("localhost") : id_domain;
        out += ">\r\n";
    }
    out += "From: " + mailbox_header(from) + "\r\n";
    address_header(out, "To", to);
    address_header(out, "Cc", cc);
    // A Subject whose line would pass 998 octets goes as encoded words, which fold.
    const bool long_subject = subject.size() + 9 > max_line_bytes;
    out += "Subject: " + (long_subject ? encode_words(subject) : encode_header_word(subject)) + "\r\n";
    out += "MIME-Version: 1.0\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\n";
    out += "Content-Transfer-Encoding: ";
    out += cte;
    out += "\r\n";
    for (const auto& [name, value] : headers) folded_header(out, name, value);
    out += "\r\n";
    for (auto l : lines) {
        if (longest > max_line_bytes) {
            quoted_printable_line(l, out);
        } else {
            out += l;
            out += "\r\n";
        }
    }
    return out;
}

envelope message::make_envelope() const {
    envelope e;
    e.mail_from = address_of(from);
    e.rcpt_to.reserve(to.size() + cc.size() + bcc.size());
    for (const auto* list : {&to, &cc, &bcc})
        for (const auto& a : *list) e.rcpt_to.push_back(address_of(a));
    return e;
}

}  // namespace netpool::smtp
