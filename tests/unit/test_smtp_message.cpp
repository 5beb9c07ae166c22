// SMTP message builder: rendering, RFC 2047 words, header injection, envelopes, and the
// transfer encodings. Strings in, strings out.
#include <netpool/base64.hpp>
#include <netpool/smtp/message.hpp>
#include <netpool/smtp/protocol.hpp>

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

using namespace netpool::smtp;
using netpool::base64_decode;

namespace {

/// The header block (up to the blank line) and the body of rendered bytes.
std::pair<std::string, std::string> split(const std::string& raw) {
    const auto blank = raw.find("\r\n\r\n");
    REQUIRE(blank != std::string::npos);
    return {raw.substr(0, blank + 2), raw.substr(blank + 4)};
}

bool only_crlf_line_ends(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
        if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
    }
    return true;
}

/// Decodes "=?UTF-8?B?...?=" words separated by CRLF SP back to the text.
std::string decode_words(std::string s) {
    std::string out;
    std::size_t pos = 0;
    while ((pos = s.find("=?UTF-8?B?", pos)) != std::string::npos) {
        const auto end = s.find("?=", pos + 10);
        REQUIRE(end != std::string::npos);
        auto bytes = base64_decode(s.substr(pos + 10, end - pos - 10));
        REQUIRE(bytes);
        out += *bytes;
        pos = end + 2;
    }
    return out;
}

std::string header_value(const std::string& headers, const std::string& name) {
    std::size_t at = 0;
    if (headers.rfind(name + ": ", 0) != 0) {
        at = headers.find("\r\n" + name + ": ");
        if (at == std::string::npos) return "<none>";
        at += 2;
    }
    const auto start = at + name.size() + 2;
    std::string v;
    for (auto i = start; i < headers.size(); ++i) {
        if (headers.compare(i, 3, "\r\n ") == 0) {  // folded continuation
            v += "\r\n ";
            i += 2;
            continue;
        }
        if (headers.compare(i, 2, "\r\n") == 0) break;
        v += headers[i];
    }
    return v;
}

/// Every character complete: lead bytes followed by as many continuation bytes as they say.
bool whole_utf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

}  // namespace

TEST_SUITE("smtp_message") {

TEST_CASE("render: headers in order, CRLF, 7bit ASCII body") {
    message m;
    m.from = "Ann Example <ann@example.org>";
    m.to = {"bob@example.org", "Carol <carol@example.org>"};
    m.cc = {"dave@example.org"};
    m.bcc = {"secret-bcc@example.org"};
    m.subject = "Hello";
    m.text = "line one\nline two\r\n.dot line\rlast";
    m.headers = {{"X-Mailer", "netpool"}};
    const std::string raw = m.render("client.example");
    CHECK(only_crlf_line_ends(raw));
    const auto [headers, body] = split(raw);
    CHECK(headers.rfind("Date: ", 0) == 0);
    CHECK(header_value(headers, "From") == "Ann Example <ann@example.org>");
    CHECK(header_value(headers, "To") == "bob@example.org, Carol <carol@example.org>");
    CHECK(header_value(headers, "Cc") == "dave@example.org");
    CHECK(header_value(headers, "Subject") == "Hello");
    CHECK(header_value(headers, "MIME-Version") == "1.0");
    CHECK(header_value(headers, "Content-Type") == "text/plain; charset=utf-8");
    CHECK(header_value(headers, "Content-Transfer-Encoding") == "7bit");
    CHECK(header_value(headers, "X-Mailer") == "netpool");
    CHECK(raw.find("secret-bcc") == std::string::npos);  // never Bcc
    CHECK(raw.find("Bcc") == std::string::npos);
    const std::string id = header_value(headers, "Message-ID");
    CHECK(id.front() == '<');
    CHECK(id.back() == '>');
    CHECK(id.find("@client.example>") != std::string::npos);
    CHECK(body == "line one\r\nline two\r\n.dot line\r\nlast\r\n");  // dot-stuffing is DATA's job
    // Order: Date, Message-ID, From, To, Cc, Subject, MIME-Version, Content-Type, CTE, extras.
    const char* order[] = {"Date:", "Message-ID:", "From:", "To:", "Cc:", "Subject:", "MIME-Version:",
                           "Content-Type:", "Content-Transfer-Encoding:", "X-Mailer:"};
    std::size_t last = 0;
    for (const char* h : order) {
        const auto at = headers.find(h);
        CAPTURE(h);
        REQUIRE(at != std::string::npos);
        CHECK(at >= last);
        last = at;
    }
}

TEST_CASE("render: Date is RFC 5322, Message-IDs differ, given Date/Message-ID are kept") {
    message m;
    m.from = "a@b.c";
    m.to = {"d@e.f"};
    const auto [h1, b1] = split(m.render());
    const std::string date = header_value(h1, "Date");
    // "Tue, 24 Nov 2026 17:32:16 +0000"
    REQUIRE(date.size() == 31);
    CHECK(date[3] == ',');
    CHECK(date.substr(25) == " +0000");
    CHECK(date[19] == ':');
    CHECK(header_value(h1, "Message-ID").find("@localhost>") != std::string::npos);
    const auto [h2, b2] = split(m.render());
    CHECK(header_value(h1, "Message-ID") != header_value(h2, "Message-ID"));

    m.headers = {{"Date", "Mon, 01 Jan 2024 00:00:00 +0000"}, {"Message-ID", "<fixed@x>"}};
    const auto [h3, b3] = split(m.render());
    CHECK(h3.find("Date: ") == h3.rfind("Date: "));  // once
    CHECK(h3.find("Message-ID: ") == h3.rfind("Message-ID: "));
    CHECK(header_value(h3, "Message-ID") == "<fixed@x>");
}

TEST_CASE("render: UTF-8 body is 8bit; a line over 998 bytes makes it quoted-printable") {
    message m;
    m.from = "a@b.c";
    m.text = "Grüße\n";
    CHECK(header_value(split(m.render()).first, "Content-Transfer-Encoding") == "8bit");

    m.text = "short\n" + std::string(1200, 'x') + " =end \nnext\n";
    const auto [h, body] = split(m.render());
    CHECK(header_value(h, "Content-Transfer-Encoding") == "quoted-printable");
    CHECK(only_crlf_line_ends(body));
    // Every encoded line fits in 76 characters.
    std::size_t start = 0;
    for (auto nl = body.find("\r\n"); nl != std::string::npos; nl = body.find("\r\n", start)) {
        CHECK(nl - start <= 76);
        start = nl + 2;
    }
    // Decode: soft breaks removed, =XX decoded, gives the original lines.
    std::string decoded;
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (body.compare(i, 3, "=\r\n") == 0) {
            i += 2;
        } else if (body[i] == '=') {
            decoded += static_cast<char>(std::stoi(body.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            decoded += body[i];
        }
    }
    CHECK(decoded == "short\r\n" + std::string(1200, 'x') + " =end \r\nnext\r\n");
    CHECK(body.find(" \r\n") == std::string::npos);  // trailing space is encoded
}

TEST_CASE("render: header injection is refused, naming the header") {
    message m;
    m.from = "a@b.c";
    m.to = {"d@e.f"};
    auto text_of = [](const message& msg) -> std::string {
        try {
            (void)msg.render();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "<no throw>";
    };
    message s = m;
    s.subject = "hi\r\nBcc: victim@example.org";
    CHECK(text_of(s).find("'Subject'") != std::string::npos);
    s = m;
    s.subject = "hi\nX: y";
    CHECK(text_of(s).find("'Subject'") != std::string::npos);
    s = m;
    s.to.push_back("x@y.z\r\nBcc: v@w");
    CHECK(text_of(s).find("'To'") != std::string::npos);
    s = m;
    s.from = "a@b.c\r";
    CHECK(text_of(s).find("'From'") != std::string::npos);
    s = m;
    s.cc = {"c@d\n"};
    CHECK(text_of(s).find("'Cc'") != std::string::npos);
    s = m;
    s.bcc = {"c@d\n"};
    CHECK(text_of(s).find("'Bcc'") != std::string::npos);
    s = m;
    s.headers = {{"X-Tag", "a\r\nb: c"}};
    CHECK(text_of(s).find("'X-Tag'") != std::string::npos);
    s = m;
    s.headers = {{"X Bad", "v"}};
    CHECK(text_of(s).find("'X Bad'") != std::string::npos);
    s = m;
    s.headers = {{"", "v"}};
    CHECK(text_of(s) != "<no throw>");
    s = m;
    s.headers = {{"X:Y", "v"}};
    CHECK(text_of(s) != "<no throw>");
    CHECK(text_of(m) == "<no throw>");
}

TEST_CASE("encode_header_word: ASCII unchanged, UTF-8 in B words of at most 75 bytes") {
    CHECK(encode_header_word("Plain subject, 100% ASCII") == "Plain subject, 100% ASCII");
    CHECK(encode_header_word("") == "");
    CHECK(encode_header_word("Grüße") == "=?UTF-8?B?R3LDvMOfZQ==?=");
    // "=?" in ASCII text would be read as an encoded word by a client: encode it.
    CHECK(encode_header_word("a =?b?= c").rfind("=?UTF-8?B?", 0) == 0);
    CHECK(decode_words(encode_header_word("a =?b?= c")) == "a =?b?= c");

    // Many multi-byte characters (2, 3 and 4 bytes) at every alignment: no word splits one.
    for (int shift = 0; shift < 4; ++shift) {
        std::string text(static_cast<std::size_t>(shift), 'a');
        for (int i = 0; i < 30; ++i) text += "é€😀";
        CAPTURE(shift);
        const std::string enc = encode_header_word(text);
        CHECK(decode_words(enc) == text);
        std::size_t start = 0;
        while (start < enc.size()) {
            auto sep = enc.find("\r\n ", start);
            const std::string word = enc.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
            CHECK(word.size() <= 75);
            REQUIRE(word.rfind("=?UTF-8?B?", 0) == 0);
            auto bytes = base64_decode(word.substr(10, word.size() - 12));
            REQUIRE(bytes);
            // Each word decodes to whole characters: starts on a lead byte, ends complete.
            CHECK(whole_utf8(*bytes));
            start = sep == std::string::npos ? enc.size() : sep + 3;
        }
    }
}

TEST_CASE("render: non-ASCII subject and display names are encoded") {
    message m;
    m.from = "Jürgen <j@example.org>";
    m.to = {"\"Zoë\" <z@example.org>"};
    m.subject = std::string("Ünïcödé ") + std::string(80, 'x');
    const auto [h, b] = split(m.render());
    CHECK(has_8bit(h) == false);
    CHECK(decode_words(header_value(h, "Subject")) == m.subject);
    CHECK(header_value(h, "From") == "=?UTF-8?B?SsO8cmdlbg==?= <j@example.org>");
    CHECK(decode_words(header_value(h, "To")) == "Zoë");
    CHECK(header_value(h, "To").find("<z@example.org>") != std::string::npos);
}

TEST_CASE("make_envelope and address_of") {
    CHECK(address_of("Ann <ann@x.org>") == "ann@x.org");
    CHECK(address_of("  ann@x.org  ") == "ann@x.org");
    CHECK(address_of("\"Doe, <J>\" <jd@x.org>") == "jd@x.org");
    CHECK(address_of("<>") == "");
    CHECK(address_of("< spaced@x.org >") == "spaced@x.org");

    message m;
    m.from = "Ann <ann@x.org>";
    m.to = {"Bob <bob@x.org>", "carol@x.org"};
    m.cc = {"Dave <dave@x.org>"};
    m.bcc = {"eve@x.org"};
    const envelope e = m.make_envelope();
    CHECK(e.mail_from == "ann@x.org");
    CHECK(e.rcpt_to == std::vector<std::string>{"bob@x.org", "carol@x.org", "dave@x.org", "eve@x.org"});
}

// Issue 10, suspicion: lines over 998 octets. The builder never renders one: the body goes
// quoted-printable (test above), a long Subject as encoded words, a long extra header folded.
TEST_CASE("render: no line over 998 octets, whatever the subject, headers and body") {
    message m;
    m.from = "a@b.c";
    m.to = {"r@b.c"};
    m.subject = std::string(1500, 's');  // ASCII, no spaces: cannot be folded as it is
    std::string words;
    for (int i = 0; i < 300; ++i) words += "word" + std::to_string(i) + ' ';
    m.headers = {{"X-Long", words}, {"X-Short", "kept as it is"}};
    m.text = std::string(3000, 'b') + "\nshort\n";
    const std::string raw = m.render();
    std::string detail;
    CHECK_MESSAGE(!check_line_lengths(raw, detail), detail);
    CHECK(only_crlf_line_ends(raw));
    const auto [h, body] = split(raw);
    CHECK(decode_words(header_value(h, "Subject")) == m.subject);
    // Unfolded (CRLF before white space removed), the header is the value again.
    std::string x_long = header_value(h, "X-Long");
    for (auto p = x_long.find("\r\n"); p != std::string::npos; p = x_long.find("\r\n")) x_long.erase(p, 2);
    CHECK(x_long == words);
    CHECK(h.find("\r\nX-Short: kept as it is\r\n") != std::string::npos);
    // A subject that fits stays readable.
    m.subject = "plain subject";
    m.headers.clear();
    CHECK(header_value(split(m.render()).first, "Subject") == "plain subject");
}

TEST_CASE("render: an extra header with a word too long to fold is refused, naming the header") {
    message m;
    m.from = "a@b.c";
    m.headers = {{"X-Blob", std::string(1200, 'z')}};
    std::string what;
    try {
        (void)m.render();
    } catch (const std::invalid_argument& e) {
        what = e.what();
    }
    CHECK(what.find("X-Blob") != std::string::npos);
    CHECK(what.find("998") != std::string::npos);
}

}  // TEST_SUITE
