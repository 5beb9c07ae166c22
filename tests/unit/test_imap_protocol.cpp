// IMAP pure helpers: command building with literals, SASL PLAIN, capabilities, SELECT
// state, SEARCH/ESEARCH, UID sets, FETCH interpretation, errors.
#include <netpool/sasl.hpp>
#include <netpool/imap/adapter.hpp>
#include <netpool/imap/protocol.hpp>
#include <netpool/imap/error.hpp>
#include <netpool/error.hpp>
#include <netpool/options.hpp>

#include <doctest/doctest.h>

#include <array>
#include <initializer_list>
#include <utility>
#include <ostream>
#include <string>
#include <vector>

using namespace netpool;
using namespace netpool::imap;

namespace {
response must_parse(std::string_view wire) {
    std::error_code ec;
    auto r = parse_response(wire, ec);
    INFO("wire: ", std::string(wire), " error: ", ec.message());
    REQUIRE(r);
    return *r;
}
}  // namespace

TEST_SUITE("imap_protocol") {

TEST_CASE("error category and handshake condition") {
    const std::error_code ec = imap::errc::login_failed;
    CHECK(std::string(ec.category().name()) == "netpool.imap");
    CHECK(ec == netpool::condition::handshake_rejected);
    CHECK(std::error_code(imap::errc::greeting_bye) == netpool::condition::handshake_rejected);
    CHECK(std::error_code(imap::errc::starttls_injection) == netpool::condition::handshake_rejected);
    CHECK_FALSE(std::error_code(imap::errc::server_bye) == netpool::condition::handshake_rejected);
    CHECK_FALSE(std::error_code(imap::errc::mailbox_not_found) == netpool::condition::handshake_rejected);
    CHECK(netpool::endpoint_down_for(imap::errc::plaintext_login_refused) == netpool::errc::endpoint_down_handshake);
    for (int v = 1; v <= static_cast<int>(imap::errc::unexpected_response); ++v)
        CHECK(std::error_code(v, imap_category()).message().rfind("IMAP", 0) == 0);
}

TEST_CASE("SASL PLAIN") {
    CHECK(netpool::sasl::plain_response("tim", "tanstaaftanstaaf") == "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
}

TEST_CASE("build_command: atoms, quoted strings, synchronizing and non-synchronizing literals") {
    std::array<command_arg, 2> login{command_arg{"fred"}, command_arg{"s3cr\"et"}};
    auto parts = build_command("A1", "LOGIN", login, false);
    REQUIRE(parts.size() == 1);
    CHECK(parts[0] == "A1 LOGIN fred \"s3cr\\\"et\"\r\n");

    std::array<command_arg, 2> eightbit{command_arg{"jos\xc3\xa9"}, command_arg{"pa\r\nss"}};
    parts = build_command("A2", "LOGIN", eightbit, false);
    REQUIRE(parts.size() == 3);
    CHECK(parts[0] == "A2 LOGIN {5}\r\n");
    CHECK(parts[1] == "jos\xc3\xa9 {6}\r\n");
    CHECK(parts[2] == "pa\r\nss\r\n");
    parts = build_command("A2", "LOGIN", eightbit, true);
    REQUIRE(parts.size() == 1);
    CHECK(parts[0] == "A2 LOGIN {5+}\r\njos\xc3\xa9 {6+}\r\npa\r\nss\r\n");

    std::array<command_arg, 2> fetch{command_arg{"1:3,7", false}, command_arg{"(FLAGS)", false}};
    CHECK(build_command("A3", "UID FETCH", fetch, false)[0] == "A3 UID FETCH 1:3,7 (FLAGS)\r\n");
    CHECK(build_command("A4", "NOOP", {}, false)[0] == "A4 NOOP\r\n");

    capabilities caps;
    CHECK_FALSE(can_use_nonsync_literals(caps, eightbit));
    caps.literal_minus = true;
    CHECK(can_use_nonsync_literals(caps, eightbit));
    const std::string big(5000, '\n');
    std::array<command_arg, 1> large{command_arg{big}};
    CHECK_FALSE(can_use_nonsync_literals(caps, large));
    caps.literal_plus = true;
    CHECK(can_use_nonsync_literals(caps, large));
}

TEST_CASE("capabilities from a response and from a code") {
    auto caps = parse_capabilities(must_parse("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=PLAIN sasl-ir\r\n").data);
    CHECK(caps.imap4rev1);
    CHECK(caps.starttls);
    CHECK(caps.login_disabled);
    CHECK(caps.sasl_ir);
    CHECK(caps.has_auth("PLAIN"));
    CHECK(caps.has_auth("plain"));
    CHECK_FALSE(caps.has_auth("LOGIN"));
    CHECK_FALSE(caps.literal_plus);

    caps = parse_capabilities("IMAP4rev2 LITERAL- ENABLE");
    CHECK(caps.imap4rev2);
    CHECK(caps.unselect);
    CHECK(caps.literal_minus);
    CHECK(caps.has("enable"));
    CHECK(caps.names.size() == 3);
}

TEST_CASE("SELECT responses fill the mailbox state") {
    mailbox_info m;
    for (const char* line : {"* 172 EXISTS\r\n", "* 1 RECENT\r\n", "* OK [UNSEEN 12] Message 12 is first unseen\r\n",
                             "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n", "* OK [UIDNEXT 4392] Predicted next UID\r\n",
                             "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
                             "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"})
        apply_untagged(must_parse(line), m);
    CHECK(m.exists == 172);
    CHECK(m.uidvalidity == 3857529045u);
    CHECK(m.uidnext == 4392);
    CHECK_FALSE(m.read_only);
    CHECK(apply_untagged(must_parse("* 3 EXPUNGE\r\n"), m));
    CHECK(m.exists == 171);
    CHECK(apply_untagged(must_parse("* OK [READ-ONLY] x\r\n"), m));
    CHECK(m.read_only);
    CHECK_FALSE(apply_untagged(must_parse("A1 OK [UIDVALIDITY 5] tagged\r\n"), m));
    CHECK_FALSE(apply_untagged(must_parse("* OK [UIDVALIDITY x] bad\r\n"), m));
    CHECK(m.uidvalidity == 3857529045u);
}

TEST_CASE("SEARCH and ESEARCH results, sequence sets") {
    std::vector<std::uint32_t> uids;
    CHECK(collect_search(must_parse("* SEARCH 2 84 882\r\n"), uids));
    CHECK(uids == std::vector<std::uint32_t>{2, 84, 882});
    uids.clear();
    CHECK(collect_search(must_parse("* SEARCH\r\n"), uids));
    CHECK(uids.empty());
    CHECK(collect_search(must_parse("* ESEARCH (TAG \"A5\") UID ALL 4:6,9\r\n"), uids));
    CHECK(uids == std::vector<std::uint32_t>{4, 5, 6, 9});
    uids.clear();
    CHECK(collect_search(must_parse("* ESEARCH (TAG \"A5\") UID COUNT 0\r\n"), uids));
    CHECK(uids.empty());
    CHECK_FALSE(collect_search(must_parse("* SEARCH x\r\n"), uids));
    CHECK_FALSE(collect_search(must_parse("* 3 EXISTS\r\n"), uids));

    std::vector<std::uint32_t> out;
    CHECK(expand_sequence_set("3:1,7", out));
    CHECK(out == std::vector<std::uint32_t>{1, 2, 3, 7});
    for (const char* bad : {"", "0", "1:", ":3", "1,,2", "1,", "a", "1:*", "4294967296"}) {
        CAPTURE(bad);
        out.clear();
        if (std::string_view(bad).empty()) CHECK(expand_sequence_set(bad, out));  // nothing
        else CHECK_FALSE(expand_sequence_set(bad, out));
    }
    out.clear();
    CHECK_FALSE(expand_sequence_set("1:4294967295", out, 1000));  // bounded before expanding

    out.clear();
    CHECK_FALSE(expand_sequence_set("1:5,1:4294967295", out, 1000));
    CHECK(out.empty());  // nothing appended for a set over the bound

    const std::vector<std::uint32_t> some{9, 1, 2, 3, 7, 3, 10, 12};
    CHECK(format_uid_set(some) == "1:3,7,9:10,12");
    CHECK(format_uid_set({}) == "");
}

TEST_CASE("SEARCH results are bounded over all responses of a command") {
    std::vector<std::uint32_t> uids;
    CHECK(collect_search(must_parse("* SEARCH 1 2 3\r\n"), uids, 5) == search_status::ok);
    CHECK(collect_search(must_parse("* SEARCH 4 5\r\n"), uids, 5) == search_status::ok);
    CHECK(uids.size() == 5);
    CHECK(collect_search(must_parse("* SEARCH\r\n"), uids, 5) == search_status::ok);
    CHECK(collect_search(must_parse("* SEARCH 6\r\n"), uids, 5) == search_status::too_many);
    CHECK(uids.size() == 5);
    CHECK(collect_search(must_parse("* SEARCH x\r\n"), uids, 5) == search_status::malformed);
    CHECK(collect_search(must_parse("* 3 EXISTS\r\n"), uids, 5) == search_status::malformed);

    // ESEARCH sets are counted before they are expanded.
    std::vector<std::uint32_t>().swap(uids);
    CHECK(collect_search(must_parse("* ESEARCH (TAG \"A5\") UID ALL 1:4294967295\r\n"), uids, 1000000) ==
          search_status::too_many);
    CHECK(uids.empty());
    CHECK(uids.capacity() == 0);
    CHECK(collect_search(must_parse("* ESEARCH (TAG \"A5\") UID ALL 1:3,7\r\n"), uids, 4) == search_status::ok);
    CHECK(uids == std::vector<std::uint32_t>{1, 2, 3, 7});
    CHECK(collect_search(must_parse("* ESEARCH (TAG \"A5\") UID ALL 9\r\n"), uids, 4) == search_status::too_many);
    CHECK(collect_search(must_parse("* ESEARCH (TAG \"A5\") UID ALL 1:x\r\n"), uids, 100) ==
          search_status::malformed);
    // The unbounded form keeps its per-response bound of 2^20.
    uids.clear();
    CHECK_FALSE(collect_search(must_parse("* ESEARCH UID ALL 1:2000000\r\n"), uids));
    CHECK(collect_search(must_parse("* ESEARCH UID ALL 1:1000\r\n"), uids));
    CHECK(uids.size() == 1000);
}

TEST_CASE("limit failures name the option and its value") {
    client_options o;
    CHECK(limit_failure("UID FETCH", limit_errc::too_many_unsolicited, o) ==
          "UID FETCH: more than max_unsolicited = 10000 untagged responses the command did not ask for");
    CHECK(limit_failure("UID SEARCH", limit_errc::too_many_search_results, o) ==
          "UID SEARCH: more than max_search_results = 1000000 UIDs");
    o.limits.max_values = 5000;
    CHECK(limit_failure("SELECT", limit_errc::too_many_values, o) ==
          "SELECT: one response holds more than limits.max_values = 5000 values");
    const std::error_code ec = limit_errc::too_many_values;
    CHECK(std::string(ec.category().name()) == "netpool.imap.limit");
    CHECK(ec.message().find("max_values") != std::string::npos);
    CHECK(std::error_code(limit_errc::too_many_search_results).message().find("max_search_results") != std::string::npos);
    CHECK(std::error_code(limit_errc::too_many_unsolicited).message().find("max_unsolicited") != std::string::npos);
    CHECK(ec != netpool::condition::handshake_rejected);
    CHECK(adapter::must_discard(ec));
}

TEST_CASE("FETCH interpretation") {
    const std::string header = "From: Terry Gray <gray@cac.washington.edu>\r\nSubject: hi\r\n\r\n";
    const std::string body = header + "text\r\n";
    const std::string wire = "* 12 FETCH (UID 44 FLAGS (\\Seen $Forwarded) RFC822.SIZE " + std::to_string(body.size()) +
                             " ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700\" \"IMAP4rev1 WG mtg\" "
                             "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL NIL NIL NIL NIL NIL) "
                             "BODY[HEADER] {" + std::to_string(header.size()) + "}\r\n" + header + " BODY[] {" +
                             std::to_string(body.size()) + "}\r\n" + body + ")\r\n";
    auto m = parse_fetch(must_parse(wire));
    REQUIRE(m);
    CHECK(m->uid == 44);
    CHECK(m->flags == std::vector<std::string>{"\\Seen", "$Forwarded"});
    CHECK(m->size == body.size());
    CHECK(m->envelope_date == "Wed, 17 Jul 1996 02:23:25 -0700");
    CHECK(m->envelope_subject == "IMAP4rev1 WG mtg");
    CHECK(m->envelope_from == "Terry Gray <gray@cac.washington.edu>");
    CHECK(m->header == header);
    CHECK(m->body == body);

    // Unsolicited FETCH without UID: not ours.
    CHECK_FALSE(parse_fetch(must_parse("* 3 FETCH (FLAGS (\\Seen))\r\n")));
    CHECK_FALSE(fetch_uid(must_parse("* 3 FETCH (FLAGS (\\Seen))\r\n")));
    CHECK(fetch_uid(must_parse(wire)) == 44u);
    CHECK_FALSE(fetch_uid(must_parse("* 3 FETCH (UID 0)\r\n")));
    CHECK_FALSE(fetch_uid(must_parse("* 3 FETCH (UID 4294967296)\r\n")));
    CHECK_FALSE(fetch_uid(must_parse("* 3 EXISTS\r\n")));
    // A second response for the same UID is merged.
    auto more = parse_fetch(must_parse("* 12 FETCH (UID 44 FLAGS (\\Seen \\Flagged))\r\n"));
    REQUIRE(more);
    merge_fetch(*m, std::move(*more));
    CHECK(m->flags.size() == 2);
    CHECK(m->body == body);

    CHECK(format_address(must_parse("* X (NIL NIL \"a\" \"b.example\")\r\n").data[0]) == "a@b.example");
    CHECK(format_address(must_parse("* X (NIL NIL \"group\" NIL)\r\n").data[0]) == "group");
    const value list = must_parse("* X (UID 5 uid 6)\r\n").data[0];
    REQUIRE(fetch_item(list, "uid"));
    CHECK(fetch_item(list, "uid")->number == 5);
    CHECK_FALSE(fetch_item(list, "FLAGS"));
}

TEST_CASE("must_discard") {
    CHECK_FALSE(adapter::must_discard({}));
    CHECK_FALSE(adapter::must_discard(imap::errc::mailbox_not_found));
    CHECK_FALSE(adapter::must_discard(imap::errc::command_failed));
    CHECK_FALSE(adapter::must_discard(imap::errc::command_rejected));
    CHECK(adapter::must_discard(imap::errc::server_bye));
    CHECK(adapter::must_discard(netpool::errc::protocol_error));
    CHECK(adapter::must_discard(netpool::errc::operation_timeout));
}

TEST_CASE("client_options::validate names the field") {
    client_options o;
    CHECK_NOTHROW(o.validate());
    o.command_timeout = std::chrono::milliseconds(0);
    CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("command_timeout"), netpool::config_error);
    o = {};
    o.limits.max_line = 10;
    CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("limits.max_line"), netpool::config_error);
    for (auto [field, set] : std::initializer_list<std::pair<const char*, void (*)(client_options&)>>{
             {"limits.max_values", [](client_options& c) { c.limits.max_values = 255; }},
             {"max_search_results", [](client_options& c) { c.max_search_results = 0; }},
             {"max_unsolicited", [](client_options& c) { c.max_unsolicited = 99; }}}) {
        CAPTURE(field);
        o = {};
        set(o);
        CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains(field), netpool::config_error);
    }
    o = {};
    o.limits.max_values = 256;
    o.max_search_results = 1;
    o.max_unsolicited = 100;
    CHECK_NOTHROW(o.validate());
    o = {};
    o.cred.secret = std::string("a\0b", 3);
    try {
        o.validate();
        FAIL("no throw");
    } catch (const netpool::config_error& e) {
        CHECK(e.field() == "cred.secret");
        CHECK(std::string(e.what()).find(std::string("a\0b", 3)) == std::string::npos);
    }
}

}  // TEST_SUITE
