// IMAP response parser: tagged, untagged and continuation responses, literals, quoted
// strings, nested lists, limits, and random input in random pieces.
#include <netpool/imap/response.hpp>
#include <netpool/imap/error.hpp>
#include <netpool/error.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <ostream>
#include <random>
#include <string>
#include <vector>

using namespace netpool;
using namespace netpool::imap;

namespace {

response must_parse(std::string_view wire, response_limits lim = {}) {
    std::error_code ec;
    auto r = parse_response(wire, ec, lim);
    INFO("wire: ", std::string(wire), " error: ", ec.message());
    REQUIRE(r);
    REQUIRE_FALSE(ec);
    return *r;
}

std::error_code parse_error(std::string_view wire, response_limits lim = {}) {
    std::error_code ec;
    auto r = parse_response(wire, ec, lim);
    CHECK_FALSE(r);
    return ec;
}

/// Feeds `wire` in pieces of the given sizes (cycled), collecting complete responses.
std::vector<response> feed_in_pieces(std::string_view wire, const std::vector<std::size_t>& sizes,
                                     std::error_code& ec, response_limits lim = {}) {
    std::vector<response> out;
    response_parser p(lim);
    std::size_t pos = 0, k = 0;
    while (pos < wire.size()) {
        std::string_view piece = wire.substr(pos, std::min(sizes[k++ % sizes.size()], wire.size() - pos));
        pos += piece.size();
        while (!piece.empty()) {
            std::size_t used = 0;
            const auto st = p.feed(piece, used);
            piece.remove_prefix(used);
            if (st == response_parser::status::error) {
                ec = p.error();
                return out;
            }
            if (st == response_parser::status::complete) {
                out.push_back(p.take());
                p = response_parser(lim);
            }
        }
    }
    return out;
}

}  // namespace

TEST_SUITE("imap_response") {

TEST_CASE("greetings and status responses") {
    auto r = must_parse("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.\r\n");
    CHECK(r.is_untagged());
    CHECK(r.status == "OK");
    CHECK(r.code == "CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN");
    CHECK(r.code_name() == "CAPABILITY");
    CHECK(r.code_argument() == "IMAP4rev1 STARTTLS AUTH=PLAIN");
    CHECK(r.text == "Dovecot ready.");

    r = must_parse("* PREAUTH IMAP4rev1 server logged in as Smith\r\n");
    CHECK(r.status == "PREAUTH");
    CHECK(r.code.empty());
    CHECK(r.text == "IMAP4rev1 server logged in as Smith");

    r = must_parse("* BYE Autologout; idle for too long\r\n");
    CHECK(r.status == "BYE");

    r = must_parse("a002 NO [NONEXISTENT] Mailbox doesn't exist: Foo\r\n");
    CHECK(r.is_tagged());
    CHECK(r.tag == "a002");
    CHECK(r.status == "NO");
    CHECK(r.code_name() == "NONEXISTENT");
    CHECK(r.to_string() == "a002 NO [NONEXISTENT] Mailbox doesn't exist: Foo");

    r = must_parse("A1 ok\r\n");  // status is case-insensitive, text optional
    CHECK(r.status == "OK");
    CHECK(r.text.empty());

    r = must_parse("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n");
    CHECK(r.code_name() == "UIDVALIDITY");
    CHECK(r.code_argument() == "3857529045");

    r = must_parse("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n");
    CHECK(r.code == "PERMANENTFLAGS (\\Deleted \\Seen \\*)");

    r = must_parse("* OK [ALERT]\r\n");
    CHECK(r.code == "ALERT");
    CHECK(r.text.empty());
}

TEST_CASE("continuations") {
    auto r = must_parse("+ Ready for literal data\r\n");
    CHECK(r.is_continuation());
    CHECK(r.text == "Ready for literal data");
    r = must_parse("+\r\n");
    CHECK(r.is_continuation());
    CHECK(r.text.empty());
    r = must_parse("+ \r\n");
    CHECK(r.text.empty());
    CHECK(must_parse("+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzBeBiVHeceP2CWY0SR0fAQAgAAQEBAQ=\r\n").text.size() == 72);
}

TEST_CASE("untagged data: numbers, atoms, lists") {
    auto r = must_parse("* 23 EXISTS\r\n");
    REQUIRE(r.number);
    CHECK(*r.number == 23);
    CHECK(r.name == "EXISTS");
    CHECK(r.data.empty());

    r = must_parse("* 3 expunge\r\n");
    CHECK(r.name == "EXPUNGE");

    r = must_parse("* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR AUTH=PLAIN\r\n");
    CHECK(r.name == "CAPABILITY");
    REQUIRE(r.data.size() == 5);
    CHECK(r.data[2].is_atom("literal+"));

    r = must_parse("* SEARCH 2 84 882\r\n");
    REQUIRE(r.data.size() == 3);
    CHECK(r.data[1].is_number());
    CHECK(r.data[1].number == 84);

    r = must_parse("* SEARCH\r\n");
    CHECK(r.name == "SEARCH");
    CHECK(r.data.empty());

    r = must_parse("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n");
    REQUIRE(r.data.size() == 1);
    REQUIRE(r.data[0].is_list());
    CHECK(r.data[0].items.size() == 5);
    CHECK(r.data[0].items[0].text == "\\Answered");

    r = must_parse("* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n");
    REQUIRE(r.data.size() == 3);
    CHECK(r.data[1].is_string());
    CHECK(r.data[1].text == "/");
    CHECK(r.data[2].text == "Sent Items");

    r = must_parse("* LIST () NIL inbox\r\n");
    CHECK(r.data[0].is_list());
    CHECK(r.data[0].items.empty());
    CHECK(r.data[1].is_nil());
    CHECK(r.data[1].str().empty());

    r = must_parse("* ESEARCH (TAG \"A5\") UID ALL 1:3,5\r\n");
    REQUIRE(r.data.size() == 4);
    CHECK(r.data[3].text == "1:3,5");

    r = must_parse("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
    REQUIRE(r.data[0].is_list());
    REQUIRE(r.data[0].items[0].is_list());
    CHECK(r.data[0].items[0].items[1].text == "/");
}

TEST_CASE("quoted strings with escapes") {
    auto r = must_parse("* LIST () \"/\" \"a \\\"quoted\\\" \\\\ name\"\r\n");
    CHECK(r.data[2].text == "a \"quoted\" \\ name");
    CHECK(parse_error("* LIST () \"/\" \"unterminated\r\n") == netpool::errc::protocol_error);
}

TEST_CASE("FETCH with literals, sections and nested lists") {
    const std::string header = "Subject: hi\r\nFrom: a@b\r\n\r\n";
    const std::string body = header + "Body line {5}\r\n(with) \"specials\"\r\n";
    const std::string wire = "* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded) RFC822.SIZE " +
                             std::to_string(body.size()) +
                             " ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700\" \"IMAP4rev1 WG mtg\" "
                             "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL NIL NIL NIL NIL "
                             "\"<B27397-0100000@cac.washington.edu>\") BODY[HEADER] {" +
                             std::to_string(header.size()) + "}\r\n" + header + " BODY[] {" +
                             std::to_string(body.size()) + "}\r\n" + body + ")\r\n";
    auto r = must_parse(wire);
    CHECK(*r.number == 12);
    CHECK(r.name == "FETCH");
    REQUIRE(r.data.size() == 1);
    const auto& items = r.data[0].items;
    REQUIRE(items.size() == 12);
    CHECK(items[0].is_atom("UID"));
    CHECK(items[1].number == 4827313);
    CHECK(items[3].items[1].text == "$Forwarded");
    CHECK(items[7].items[2].items[0].items[0].text == "Terry Gray");
    CHECK(items[8].text == "BODY[HEADER]");
    CHECK(items[9].is_string());
    CHECK(items[9].text == header);
    CHECK(items[10].text == "BODY[]");
    CHECK(items[11].text == body);

    // The same in every split: one byte at a time, odd sizes, everything at once.
    for (const auto& sizes : std::vector<std::vector<std::size_t>>{{1}, {2, 3, 7}, {13}, {wire.size()}}) {
        std::error_code ec;
        const auto got = feed_in_pieces(wire, sizes, ec);
        CHECK_FALSE(ec);
        REQUIRE(got.size() == 1);
        CHECK(got[0].data[0].items[11].text == body);
    }
}

TEST_CASE("section atoms keep their brackets, spaces and partial origin") {
    auto r = must_parse("* 1 FETCH (BODY[HEADER.FIELDS (DATE FROM)] {4}\r\nab\r\n BODY[]<0> \"x\")\r\n");
    const auto& items = r.data[0].items;
    REQUIRE(items.size() == 4);
    CHECK(items[0].text == "BODY[HEADER.FIELDS (DATE FROM)]");
    CHECK(items[1].text == "ab\r\n");
    CHECK(items[2].text == "BODY[]<0>");
}

TEST_CASE("LITERAL+ and literal8 markers, empty literals") {
    auto r = must_parse("* 1 FETCH (BODY[] {3+}\r\nabc)\r\n");
    CHECK(r.data[0].items[1].text == "abc");
    r = must_parse("* 1 FETCH (BINARY[] ~{2}\r\n\x01\x02)\r\n");
    CHECK(r.data[0].items[1].text == "\x01\x02");
    r = must_parse("* 1 FETCH (BODY[] {0}\r\n)\r\n");
    CHECK(r.data[0].items[1].is_string());
    CHECK(r.data[0].items[1].text.empty());
}

TEST_CASE("several responses in one buffer: the tail stays unconsumed") {
    const std::string wire = "* 2 EXISTS\r\n* 1 RECENT\r\nA3 OK [READ-WRITE] SELECT completed\r\n";
    response_parser p;
    std::string_view rest = wire;
    std::vector<response> got;
    while (!rest.empty()) {
        std::size_t used = 0;
        REQUIRE(p.feed(rest, used) == response_parser::status::complete);
        rest.remove_prefix(used);
        got.push_back(p.take());
        p.reset();
    }
    REQUIRE(got.size() == 3);
    CHECK(got[1].name == "RECENT");
    CHECK(got[2].code == "READ-WRITE");
    std::error_code ec;
    CHECK_FALSE(parse_response(wire, ec));
    CHECK(ec == netpool::errc::protocol_error);  // trailing bytes
}

TEST_CASE("bare LF line ends are accepted") {
    auto r = must_parse("* 1 FETCH (BODY[] {2}\nab)\n");
    CHECK(r.data[0].items[1].text == "ab");
}

TEST_CASE("malformed responses are protocol errors") {
    for (const char* bad : {"\r\n", "*\r\n", "* \r\n", "*OK\r\n", "A1\r\n", "A1 FOO bar\r\n", "A1 BYE x\r\n",
                            "* 99999999999 EXISTS\r\n", "* 3\r\n", "* 1 FETCH (UID 1\r\n",
                            "* 1 FETCH UID 1)\r\n", "* LIST () \"/\" \"a\r\n", "* OK [UNCLOSED code\r\n",
                            "* X {3}abc\r\n", "* X \x01\r\n", "* X [a\r\n", "* OK no line end",
                            "* 1 FETCH (BODY[] {5}\r\nab)\r\n"}) {
        const std::string text = bad;
        CAPTURE(text);
        std::error_code ec;
        CHECK_FALSE(parse_response(bad, ec));
        CHECK(ec);
    }
}

TEST_CASE("limits: line, literal, depth, response") {
    response_limits lim;
    lim.max_line = 64;
    CHECK(parse_error("* OK " + std::string(100, 'x') + "\r\n", lim) == netpool::errc::frame_too_large);
    CHECK(must_parse("* OK " + std::string(57, 'x') + "\r\n", lim).text.size() == 57);  // 64 with CRLF

    // A literal's contents do not count against the line, its size against max_literal.
    lim.max_literal = 100;
    CHECK(must_parse("* 1 FETCH (BODY[] {100}\r\n" + std::string(100, 'y') + ")\r\n", lim).data[0].items[1].text.size() ==
          100);
    CHECK(parse_error("* 1 FETCH (BODY[] {101}\r\n" + std::string(101, 'y') + ")\r\n", lim) ==
          netpool::errc::frame_too_large);

    lim.max_depth = 3;
    CHECK(must_parse("* X (((a)))\r\n", lim).data[0].items[0].items[0].items[0].text == "a");
    CHECK(parse_error("* X ((((a))))\r\n", lim) == netpool::errc::protocol_error);

    lim = {};
    lim.max_response = 200;
    CHECK(parse_error("* 1 FETCH (A {90}\r\n" + std::string(90, 'a') + " B {90}\r\n" + std::string(90, 'b') + ")\r\n",
                      lim) == netpool::errc::frame_too_large);
}

TEST_CASE("a {n} at the end of a status response's text is text, not a literal (RFC 3501 resp-text)") {
    // resp-text is ["[" resp-text-code "]" SP] text, and text is 1*TEXT-CHAR: no literals.
    // Read as a literal, "{5}" would swallow the next 5 bytes and the line after them: the
    // tagged NO would be lost and the command would wait for its timeout.
    auto r = must_parse("A1 NO [ALERT] quota {5}\r\n");
    CHECK(r.is_tagged());
    CHECK(r.status == "NO");
    CHECK(r.code == "ALERT");
    CHECK(r.text == "quota {5}");
    CHECK(must_parse("A2 BAD {0}\r\n").text == "{0}");
    CHECK(must_parse("A3 OK done {12+}\r\n").text == "done {12+}");
    CHECK(must_parse("* NO disk full {3}\r\n").text == "disk full {3}");
    CHECK(must_parse("* BYE see you {2}\r\n").status == "BYE");
    CHECK(must_parse("* OK [UNSEEN 3] ~{7}\r\n").text == "~{7}");
    CHECK(must_parse("* PREAUTH hello {1}\r\n").text == "hello {1}");
    CHECK(must_parse("+ send {4}\r\n").text == "send {4}");
    // In pieces, the response after it is its own response.
    for (const std::vector<std::size_t>& sizes : {std::vector<std::size_t>{1}, {3, 7}, {1000}}) {
        std::error_code ec;
        const auto out = feed_in_pieces("A1 NO [ALERT] quota {5}\r\n* 3 EXISTS\r\nA2 OK x\r\n", sizes, ec);
        CHECK_FALSE(ec);
        REQUIRE(out.size() == 3);
        CHECK(out[0].text == "quota {5}");
        CHECK(out[1].name == "EXISTS");
        CHECK(out[2].tag == "A2");
    }
    // Untagged data keeps its literals.
    CHECK(must_parse("* 1 FETCH (BODY[] {5}\r\nhello)\r\n").data[0].items[1].text == "hello");
    CHECK(must_parse("* LIST () \"/\" {3}\r\nOK!\r\n").data[2].text == "OK!");
    CHECK(must_parse("* OKAY {2}\r\nab\r\n").data[0].text == "ab");  // a data name, not the status OK
}

TEST_CASE("limits: values per response") {
    response_limits lim;
    lim.max_values = 10;
    // "(UID 1 FLAGS (a b c))" is the list, UID, 1, FLAGS, the inner list and its 3 atoms: 8.
    CHECK(must_parse("* 1 FETCH (UID 1 FLAGS (a b c))\r\n", lim).data[0].items.size() == 4);
    CHECK(must_parse("* SEARCH 1 2 3 4 5 6 7 8 9 10\r\n", lim).data.size() == 10);
    CHECK(parse_error("* SEARCH 1 2 3 4 5 6 7 8 9 10 11\r\n", lim) == imap::limit_errc::too_many_values);
    CHECK(parse_error("* 1 FETCH (UID 1 FLAGS (a b c d e f))\r\n", lim) == imap::limit_errc::too_many_values);
    CHECK(parse_error("* X (((((((((((a)))))))))))\r\n", lim) == imap::limit_errc::too_many_values);
    // Many short lines joined by empty literals: every value counts, whatever the line.
    std::string many = "* 1 FETCH (UID 1 X (";
    for (int i = 0; i < 4; ++i) many += "a a {0}\r\n ";
    many += "))\r\n";
    CHECK(parse_error(many, lim) == imap::limit_errc::too_many_values);
    lim.max_values = 17;
    CHECK(must_parse(many, lim).data[0].items[3].items.size() == 12);

    // The default bounds a response that the other default limits allow: 4 MiB of lines of
    // 32,000 values each (under 64 KiB a line), joined by empty literals: 2 million values,
    // about 150 MB once parsed without the limit.
    const response_limits def;
    CHECK(def.max_values == 100000);
    std::string line;
    for (int i = 0; i < 32000; ++i) line += "a ";
    std::string huge = "* 1 FETCH (UID 1 X (";
    for (int i = 0; i < 2000 && huge.size() < 4 * 1024 * 1024; ++i) huge += line + "{0}\r\n";
    huge += "))\r\n";
    CHECK(parse_error(huge) == imap::limit_errc::too_many_values);
}

TEST_CASE("a literal announced over the limit fails before anything is allocated for it") {
    response_limits lim;
    lim.max_literal = 1024;
    for (const char* marker : {"{1025}", "{4294967296}", "{99999999999999999999999999}", "{18446744073709551615+}",
                               "~{2000}"}) {
        CAPTURE(marker);
        response_parser p(lim);
        const std::string head = std::string("* 1 FETCH (BODY[] ") + marker + "\r\n";
        std::size_t used = 0;
        CHECK(p.feed(head, used) == response_parser::status::error);
        CHECK(p.error() == netpool::errc::frame_too_large);
        CHECK(p.capacity() < 1024);  // nothing grew towards the announced size
        // Errors are final.
        CHECK(p.feed("abc", used) == response_parser::status::error);
    }
}

TEST_CASE("quote_astring: atom, quoted, literal marker") {
    CHECK(quote_astring("INBOX") == "INBOX");
    CHECK(quote_astring("user@example.com") == "user@example.com");
    CHECK(quote_astring("") == "\"\"");
    CHECK(quote_astring("Sent Items") == "\"Sent Items\"");
    CHECK(quote_astring("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(quote_astring("p(a)ss{1}%*") == "\"p(a)ss{1}%*\"");
    CHECK(quote_astring("line\r\nbreak") == "{11}");
    CHECK(quote_astring("caf\xc3\xa9") == "{5}");
    CHECK(quote_astring(std::string("nul\0x", 5)) == "{5}");
    CHECK(needs_literal("x\ny"));
    CHECK_FALSE(needs_literal("plain"));
    // Quoted output parses back to the same bytes.
    for (const std::string s : {"Sent Items", "a\"b\\c", "(x) {y}", "]"}) {
        const auto q = quote_astring(s);
        auto r = must_parse("* LIST () \"/\" " + q + "\r\n");
        CHECK(r.data[2].str() == s);
    }
}

TEST_CASE("random responses survive random splits") {
    std::mt19937 rng(20261124);
    for (int round = 0; round < 300; ++round) {
        std::string wire;
        std::vector<std::string> literals;
        const int n = 1 + static_cast<int>(rng() % 6);
        for (int i = 0; i < n; ++i) {
            std::string lit(rng() % 200, '\0');
            for (auto& ch : lit) ch = static_cast<char>(rng());
            wire += "* " + std::to_string(i + 1) + " FETCH (UID " + std::to_string(100 + i) + " FLAGS (\\Seen) BODY[] {" +
                    std::to_string(lit.size()) + (rng() % 2 ? "+" : "") + "}\r\n" + lit + ")\r\n";
            literals.push_back(std::move(lit));
        }
        wire += "A7 OK done\r\n";
        std::vector<std::size_t> sizes;
        for (int i = 0; i < 5; ++i) sizes.push_back(1 + rng() % 64);
        std::error_code ec;
        const auto got = feed_in_pieces(wire, sizes, ec);
        REQUIRE_FALSE(ec);
        REQUIRE(got.size() == literals.size() + 1);
        for (std::size_t i = 0; i < literals.size(); ++i) CHECK(got[i].data[0].items[5].text == literals[i]);
        CHECK(got.back().is_tagged());
    }
}

TEST_CASE("random bytes in random pieces never crash and never buffer beyond the limits") {
    std::mt19937 rng(7);
    const std::string pieces[] = {"* ", "A1 ", "+ ", "OK ", "NO ", "BYE ", "FETCH ", "EXISTS", "(", ")", "((", "\"",
                                  "\\", "{", "}", "{3}\r\n", "{999999}\r\n", "{12+}\r\n", "~{2}\r\n", "[", "]",
                                  "NIL ", "12 ", " ", "\r\n", "\n", "\r", "BODY[] ", "x", "\x00", "\xff"};
    response_limits lim;
    lim.max_line = 128;
    lim.max_literal = 64;
    lim.max_depth = 5;
    lim.max_response = 512;
    int completes = 0, errors = 0;
    for (int round = 0; round < 4000; ++round) {
        std::string wire;
        const int len = static_cast<int>(rng() % 60);
        for (int i = 0; i < len; ++i) {
            if (rng() % 5 == 0) wire += static_cast<char>(rng());
            else wire += pieces[rng() % std::size(pieces)];
        }
        response_parser p(lim);
        std::size_t pos = 0;
        while (pos < wire.size()) {
            std::string_view piece = std::string_view(wire).substr(pos, 1 + rng() % 17);
            pos += piece.size();
            bool stop = false;
            while (!piece.empty() && !stop) {
                std::size_t used = 0;
                const auto st = p.feed(piece, used);
                CHECK(used <= piece.size());
                piece.remove_prefix(used);
                // Never more than one response, itself bounded, is held.
                CHECK(p.buffered() <= lim.max_response);
                CHECK(p.capacity() <= 2 * lim.max_response);
                if (st == response_parser::status::error) {
                    CHECK((p.error() == netpool::errc::protocol_error || p.error() == netpool::errc::frame_too_large));
                    ++errors;
                    stop = true;
                } else if (st == response_parser::status::complete) {
                    const response r = p.take();
                    for (const auto& v : r.data) CHECK(v.text.size() <= lim.max_response);
                    ++completes;
                    p.reset();
                }
            }
            if (stop) break;
        }
        // The whole-buffer parser agrees with itself on the same bytes: no crash, an answer.
        std::error_code ec;
        const auto whole = parse_response(wire, ec, lim);
        CHECK((whole.has_value() != static_cast<bool>(ec)));
    }
    CHECK(completes > 20);  // the generator does produce valid responses
    CHECK(errors > 100);
}

}  // TEST_SUITE
