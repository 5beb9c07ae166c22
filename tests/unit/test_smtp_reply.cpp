// SMTP reply parser, EHLO capabilities and DATA transparency: strings in, values out.
#include <netpool/smtp/reply.hpp>
#include <netpool/error.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <random>
#include <string>

using namespace netpool;
using namespace netpool::smtp;

TEST_SUITE("smtp_reply") {

TEST_CASE("single and multi-line replies") {
    std::error_code ec;
    auto r = parse_reply("220 mail.example ESMTP ready\r\n", ec);
    REQUIRE(r);
    CHECK(r->code == 220);
    CHECK(r->lines == std::vector<std::string>{"mail.example ESMTP ready"});
    CHECK(r->positive());

    r = parse_reply("250-mail.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 AUTH PLAIN LOGIN\r\n", ec);
    REQUIRE(r);
    CHECK(r->code == 250);
    CHECK(r->lines.size() == 4);

    r = parse_reply("354\r\n", ec);  // a bare code is a complete reply
    REQUIRE(r);
    CHECK(r->code == 354);
    CHECK(r->lines == std::vector<std::string>{""});
}

TEST_CASE("enhanced status codes and classes") {
    std::error_code ec;
    auto r = parse_reply("550 5.7.1 Relaying denied\r\n", ec);
    REQUIRE(r);
    REQUIRE(r->status);
    CHECK(*r->status == enhanced_status{5, 7, 1});
    CHECK(r->permanent());
    r = parse_reply("451 4.3.0 Try again later\r\n", ec);
    REQUIRE(r);
    CHECK(r->transient());
    CHECK(r->status->to_string() == "4.3.0");
    // A status whose class disagrees with the code is not one.
    r = parse_reply("250 5.0.0 odd\r\n", ec);
    REQUIRE(r);
    CHECK_FALSE(r->status);
    r = parse_reply("250 2.1.5x not a status\r\n", ec);
    REQUIRE(r);
    CHECK_FALSE(r->status);
    CHECK(r->to_string() == "250 2.1.5x not a status");
}

TEST_CASE("enhanced status: subject and detail are digits only (found by fuzz_smtp_reply)") {
    // std::from_chars reads a leading '-' for an int: "2.1.-5" once gave detail -5.
    std::error_code ec;
    for (const std::string wire : {"250 2.1.-5 Ok\r\n", "250 2.-1.5 Ok\r\n", "250 2.+1.5 Ok\r\n", "250 -2.1.5 Ok\r\n"}) {
        CAPTURE(wire);
        const auto r = parse_reply(wire, ec);
        REQUIRE(r);
        CHECK(r->code == 250);
        CHECK_FALSE(r->status);
    }
}

TEST_CASE("malformed replies are errors") {
    std::error_code ec;
    for (const char* bad : {"25 short\r\n", "abc text\r\n", "650 bad class\r\n", "260 bad second digit\r\n",
                            "250_bad separator\r\n", "250-one\r\n251 two\r\n", "250 one\r\nextra"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_reply(bad, ec));
        CHECK(ec == errc::protocol_error);
    }
    CHECK_FALSE(parse_reply("250-incomplete\r\n", ec));
    CHECK(ec == errc::connection_closed);
}

TEST_CASE("limits: a line or a reply too long is an error before it is buffered") {
    reply_limits lim;
    lim.max_line = 64;
    lim.max_lines = 3;
    reply_parser p(lim);
    std::size_t used = 0;
    const std::string huge = "250 " + std::string(10000, 'x');
    CHECK(p.feed(huge, used) == reply_parser::status::error);
    CHECK(p.error() == errc::frame_too_large);

    reply_parser q(lim);
    CHECK(q.feed("250-a\r\n250-b\r\n250-c\r\n250-d\r\n250 e\r\n", used) == reply_parser::status::error);
    CHECK(q.error() == errc::frame_too_large);
}

TEST_CASE("incremental: byte by byte, and bytes after a reply stay unread") {
    const std::string wire = "250-first\r\n250 second\r\n220 next";
    reply_parser p;
    std::size_t total = 0;
    reply_parser::status s = reply_parser::status::need_more;
    while (total < wire.size()) {
        std::size_t used = 0;
        s = p.feed(std::string_view(wire).substr(total, 1), used);
        total += used;
        if (s != reply_parser::status::need_more) break;
    }
    REQUIRE(s == reply_parser::status::complete);
    CHECK(total == std::string("250-first\r\n250 second\r\n").size());
    auto r = p.take();
    CHECK(r.lines == std::vector<std::string>{"first", "second"});
    CHECK_FALSE(p.mid_reply());
}

TEST_CASE("EHLO capabilities") {
    std::error_code ec;
    auto r = parse_reply(
        "250-smtp.example Hello\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
        "250-AUTH LOGIN PLAIN XOAUTH2\r\n250-AUTH=LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-smtputf8\r\n250 CHUNKING\r\n",
        ec);
    REQUIRE(r);
    auto caps = parse_ehlo(*r);
    CHECK(caps.esmtp);
    CHECK(caps.pipelining);
    CHECK(caps.starttls);
    CHECK(caps.eight_bit_mime);
    CHECK(caps.smtputf8);
    CHECK(caps.enhanced_status_codes);
    CHECK(caps.chunking);
    REQUIRE(caps.size);
    CHECK(*caps.size == 35882577u);
    CHECK(caps.auth == std::vector<std::string>{"LOGIN", "PLAIN", "XOAUTH2"});
    CHECK(caps.has_auth("plain"));
    CHECK_FALSE(caps.has_auth("CRAM-MD5"));

    auto bare = parse_ehlo(*parse_reply("250 tiny.example\r\n", ec));
    CHECK_FALSE(bare.starttls);
    CHECK_FALSE(bare.size);
    CHECK(bare.auth.empty());
}

TEST_CASE("DATA transparency: dot-stuffing and line ends") {
    auto enc = [](std::string_view in) {
        std::string out;
        encode_data(in, out);
        return out;
    };
    CHECK(enc("hello\r\n") == "hello\r\n.\r\n");
    CHECK(enc("hello") == "hello\r\n.\r\n");
    CHECK(enc("") == ".\r\n");
    CHECK(enc(".starts with a dot\r\n..two\r\n") == "..starts with a dot\r\n...two\r\n.\r\n");
    CHECK(enc("a\nb\rc\r\nd") == "a\r\nb\r\nc\r\nd\r\n.\r\n");
    CHECK(enc("line\n.\nend") == "line\r\n..\r\nend\r\n.\r\n");  // a lone dot cannot end the data early
}

TEST_CASE("random input never crashes, never over-buffers, and every complete reply is well-formed") {
    std::mt19937 rng(12345);
    const std::string alphabet = "0123456789 -\r\n.abcXYZ";
    reply_limits lim;
    lim.max_line = 128;
    lim.max_lines = 8;
    for (int round = 0; round < 3000; ++round) {
        std::string input;
        const int len = static_cast<int>(rng() % 300);
        for (int i = 0; i < len; ++i) {
            // Mostly plausible replies, sometimes noise.
            if (rng() % 4 == 0) input += alphabet[rng() % alphabet.size()];
            else input += "250" + std::string(rng() % 2 ? "-" : " ") + "x\r\n";
        }
        reply_parser p(lim);
        std::string_view rest = input;
        for (int guard = 0; guard < 1000 && !rest.empty(); ++guard) {
            std::size_t used = 0;
            const auto s = p.feed(rest, used);
            CHECK(used <= rest.size());
            rest.remove_prefix(used);
            if (s == reply_parser::status::error) break;
            if (s == reply_parser::status::complete) {
                auto r = p.take();
                CHECK(r.code >= 200);
                CHECK(r.code <= 559);
                CHECK_FALSE(r.lines.empty());
                CHECK(r.lines.size() <= lim.max_lines);
            }
            if (s == reply_parser::status::need_more) break;
        }
    }
}

}  // TEST_SUITE
