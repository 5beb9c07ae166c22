// SMTP client logic without sockets: error category, AUTH encodings, envelope
// checks, command lines, the verdict over (pipelined) replies, options and the registry.
#include <netpool/sasl.hpp>
#include <netpool/smtp/adapter.hpp>
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/protocol.hpp>
#include <netpool/smtp/reply.hpp>

#include <netpool/base64.hpp>
#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/redact.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

using namespace netpool::smtp;
using netpool::base64_decode;

namespace {

reply rep(const char* text) {
    std::error_code ec;
    auto r = parse_reply(text, ec);
    REQUIRE(r);
    return *r;
}

std::vector<reply> reps(std::initializer_list<const char*> texts) {
    std::vector<reply> out;
    for (auto t : texts) out.push_back(rep(t));
    return out;
}

envelope env3() { return envelope{"me@x.org", {"a@x.org", "b@x.org", "c@x.org"}}; }

template <class F> std::string thrown_text(F f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "<no throw>";
}

}  // namespace

TEST_SUITE("smtp_protocol") {

TEST_CASE("error category: names, messages, handshake_rejected equivalence") {
    CHECK(std::string(smtp_category().name()) == "netpool.smtp");
    for (int v = static_cast<int>(errc::greeting_rejected); v <= static_cast<int>(errc::line_too_long); ++v) {
        CAPTURE(v);
        CHECK(smtp_category().message(v).find("unknown") == std::string::npos);
    }
    CHECK(smtp_category().message(999).find("unknown") != std::string::npos);

    using netpool::condition;
    for (auto e : {errc::greeting_rejected, errc::ehlo_rejected, errc::starttls_unavailable, errc::starttls_rejected,
                   errc::starttls_injection, errc::plaintext_auth_refused, errc::auth_unavailable, errc::auth_failed}) {
        const std::error_code ec = e;
        CAPTURE(ec.message());
        CHECK(ec == condition::handshake_rejected);
        CHECK(netpool::endpoint_down_for(ec) == netpool::errc::endpoint_down_handshake);
    }
    for (auto e : {errc::service_closing, errc::transient_failure, errc::permanent_failure, errc::message_too_large,
                   errc::no_recipients, errc::invalid_address, errc::unexpected_reply,
                   errc::reply_before_end_of_data, errc::line_too_long}) {
        const std::error_code ec = e;
        CAPTURE(ec.message());
        CHECK(ec != condition::handshake_rejected);
        CHECK(netpool::endpoint_down_for(ec) == netpool::errc::endpoint_down_other);
    }
    const std::error_code auth = errc::auth_failed;
    CHECK(auth == errc::auth_failed);
    CHECK(auth != netpool::errc::handshake_rejected);  // a different code, the same condition
}

TEST_CASE("AUTH PLAIN and XOAUTH2 responses") {
    // RFC 4616: authzid empty, NUL, user, NUL, password.
    CHECK(netpool::sasl::plain_response("tim", "tanstaaftanstaaf") == "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    CHECK(base64_decode(netpool::sasl::plain_response("u", "p")) == std::string("\0u\0p", 4));
    CHECK(base64_decode(netpool::sasl::xoauth2_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")) ==
          "user=someuser@example.com\x01" "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01");
}

TEST_CASE("addresses and 8-bit detection") {
    CHECK(valid_address("a@b.c", false));
    CHECK(valid_address("", true));
    CHECK_FALSE(valid_address("", false));
    for (const char* bad : {"a@b.c\r\nRCPT TO:<x@y>", "a@b.c\n", "<a@b.c>", "a>b@c", "a b@c", "a\tb@c", "a\x7f@b"})
        CHECK_FALSE(valid_address(bad, false));
    CHECK(valid_address("us\xc3\xa9r@exampl\xc3\xa9.org", false));  // UTF-8 is an address; SMTPUTF8 decides
    CHECK_FALSE(has_8bit("plain"));
    CHECK(has_8bit("caf\xc3\xa9"));
}

TEST_CASE("plan_transaction: checks before sending, MAIL parameters") {
    capabilities caps;
    mail_parameters p;
    std::string stage;
    CHECK(plan_transaction({"me@x.org", {}}, caps, 10, false, p, stage) == errc::no_recipients);
    CHECK(plan_transaction({"me@x.org\r\n", {"a@x.org"}}, caps, 10, false, p, stage) == errc::invalid_address);
    CHECK(plan_transaction({"me@x.org", {"a@x.org", "<b>"}}, caps, 10, false, p, stage) == errc::invalid_address);
    CHECK(plan_transaction({"me@x.org", {""}}, caps, 10, false, p, stage) == errc::invalid_address);
    CHECK(stage == "envelope");
    CHECK_FALSE(plan_transaction({"", {"a@x.org"}}, caps, 10, false, p, stage));  // null sender
    CHECK(mail_from_command("", p) == "MAIL FROM:<>\r\n");

    // SIZE: refused before sending when over a non-zero limit; parameter when offered.
    caps.size = 1000;
    CHECK(plan_transaction({"me@x.org", {"a@x.org"}}, caps, 1001, false, p, stage) == errc::message_too_large);
    CHECK(stage == "SIZE");
    CHECK_FALSE(plan_transaction({"me@x.org", {"a@x.org"}}, caps, 1000, false, p, stage));
    CHECK(stage.empty());
    CHECK(mail_from_command("me@x.org", p) == "MAIL FROM:<me@x.org> SIZE=1000\r\n");
    caps.size = 0;  // SIZE without a limit
    CHECK_FALSE(plan_transaction({"me@x.org", {"a@x.org"}}, caps, 1u << 30, false, p, stage));

    // 8BITMIME only when the content needs it and the server offers it.
    caps = {};
    CHECK_FALSE(plan_transaction({"me@x.org", {"a@x.org"}}, caps, 10, true, p, stage));
    CHECK_FALSE(p.body_8bitmime);
    caps.eight_bit_mime = true;
    CHECK_FALSE(plan_transaction({"me@x.org", {"a@x.org"}}, caps, 10, true, p, stage));
    CHECK(p.body_8bitmime);
    CHECK(mail_from_command("me@x.org", p) == "MAIL FROM:<me@x.org> BODY=8BITMIME\r\n");
    CHECK_FALSE(plan_transaction({"me@x.org", {"a@x.org"}}, caps, 10, false, p, stage));
    CHECK_FALSE(p.body_8bitmime);

    // SMTPUTF8 for non-ASCII addresses, refused when the server lacks it.
    const envelope intl{"me@x.org", {"j\xc3\xbcrgen@x.org"}};
    CHECK(plan_transaction(intl, caps, 10, false, p, stage) == errc::invalid_address);
    caps.smtputf8 = true;
    caps.size = 0;
    CHECK_FALSE(plan_transaction(intl, caps, 10, true, p, stage));
    CHECK(p.smtputf8);
    CHECK(mail_from_command("me@x.org", p) == "MAIL FROM:<me@x.org> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n");
    CHECK(rcpt_to_command("a@x.org") == "RCPT TO:<a@x.org>\r\n");
}

TEST_CASE("judge_envelope: pipelined replies, all in order") {
    const envelope e = env3();
    SUBCASE("all accepted, DATA 354: send the content") {
        send_result r;
        const auto rc = reps({"250 ok\r\n", "250 ok\r\n", "250 ok\r\n"});
        const reply data = rep("354 go\r\n");
        CHECK(judge_envelope(e, rep("250 ok\r\n"), rc, &data, r) == envelope_next::proceed);
        CHECK_FALSE(r.ec);
        REQUIRE(r.recipients.size() == 3);
        CHECK(r.recipients[1].address == "b@x.org");
        CHECK(r.recipients[1].accepted());
    }
    SUBCASE("some refused: send, with per-recipient results") {
        send_result r;
        const auto rc = reps({"250 ok\r\n", "550 5.1.1 no such user\r\n", "251 forwarded\r\n"});
        const reply data = rep("354 go\r\n");
        CHECK(judge_envelope(e, rep("250 ok\r\n"), rc, &data, r) == envelope_next::proceed);
        REQUIRE(r.recipients.size() == 3);
        CHECK_FALSE(r.recipients[1].accepted());
        CHECK(r.recipients[1].code == 550);
        REQUIRE(r.recipients[1].status);
        CHECK(r.recipients[1].status->to_string() == "5.1.1");
        CHECK(r.recipients[1].text == "5.1.1 no such user");
        CHECK(r.recipients[2].accepted());
    }
    SUBCASE("every recipient refused and DATA got 354: end with the dot only (RFC 2920)") {
        send_result r;
        const auto rc = reps({"550 no\r\n", "450 later\r\n", "550 no\r\n"});
        const reply data = rep("354 go\r\n");
        CHECK(judge_envelope(e, rep("250 ok\r\n"), rc, &data, r) == envelope_next::send_dot_only);
        CHECK(r.ec == errc::transient_failure);  // one refusal was 4xx: retrying may help
        CHECK(r.stage == "RCPT TO");
        CHECK_FALSE(r.sent);
        CHECK_FALSE(r.discard);
    }
    SUBCASE("every recipient refused, DATA refused: done, permanent") {
        send_result r;
        const auto rc = reps({"550 no\r\n", "553 no\r\n", "550 no\r\n"});
        const reply data = rep("554 5.5.1 no valid recipients\r\n");
        CHECK(judge_envelope(e, rep("250 ok\r\n"), rc, &data, r) == envelope_next::done);
        CHECK(r.ec == errc::permanent_failure);
        CHECK(r.stage == "RCPT TO");
        REQUIRE(r.last_reply);
        CHECK(r.last_reply->code == 550);
    }
    SUBCASE("MAIL refused: failure at MAIL FROM; a 354 to DATA is still ended") {
        send_result r;
        const auto rc = reps({"503 no\r\n", "503 no\r\n", "503 no\r\n"});
        const reply data = rep("503 no\r\n");
        CHECK(judge_envelope(e, rep("452 4.3.1 full\r\n"), rc, &data, r) == envelope_next::done);
        CHECK(r.ec == errc::transient_failure);
        CHECK(r.stage == "MAIL FROM");
        const reply go = rep("354 go\r\n");
        CHECK(judge_envelope(e, rep("552 too big\r\n"), rc, &go, r) == envelope_next::send_dot_only);
        CHECK(r.ec == errc::permanent_failure);
    }
    SUBCASE("DATA refused after accepted recipients") {
        send_result r;
        const auto rc = reps({"250 ok\r\n", "250 ok\r\n", "250 ok\r\n"});
        const reply data = rep("451 4.3.0 try later\r\n");
        CHECK(judge_envelope(e, rep("250 ok\r\n"), rc, &data, r) == envelope_next::done);
        CHECK(r.ec == errc::transient_failure);
        CHECK(r.stage == "DATA");
    }
    SUBCASE("421 anywhere: service_closing and discard, even with fewer replies") {
        send_result r;
        const auto rc = reps({"250 ok\r\n", "421 4.3.2 shutting down\r\n"});
        CHECK(judge_envelope(e, rep("250 ok\r\n"), rc, nullptr, r) == envelope_next::abort);
        CHECK(r.ec == errc::service_closing);
        CHECK(r.stage == "RCPT TO");
        CHECK(r.discard_connection());
        send_result r2;
        CHECK(judge_envelope(e, rep("421 bye\r\n"), {}, nullptr, r2) == envelope_next::abort);
        CHECK(r2.ec == errc::service_closing);
        CHECK(r2.stage == "MAIL FROM");
    }
    SUBCASE("codes a command never gives: unexpected_reply, discard") {
        send_result r;
        CHECK(judge_envelope(e, rep("354 what\r\n"), {}, nullptr, r) == envelope_next::abort);
        CHECK(r.ec == errc::unexpected_reply);
        CHECK(r.discard);
        send_result r2;
        const auto rc = reps({"250 ok\r\n", "250 ok\r\n", "250 ok\r\n"});
        const reply data = rep("250 not 354\r\n");
        CHECK(judge_envelope(e, rep("250 ok\r\n"), rc, &data, r2) == envelope_next::abort);
        CHECK(r2.ec == errc::unexpected_reply);
        CHECK(r2.stage == "DATA");
    }
}

TEST_CASE("judge_envelope: lock-step prefixes") {
    const envelope e = env3();
    send_result r;
    CHECK(judge_envelope(e, rep("250 ok\r\n"), {}, nullptr, r) == envelope_next::proceed);  // send RCPTs
    CHECK(judge_envelope(e, rep("550 no\r\n"), {}, nullptr, r) == envelope_next::done);      // stop at MAIL
    CHECK(r.stage == "MAIL FROM");
    send_result r2;
    CHECK(judge_envelope(e, rep("250 ok\r\n"), reps({"550 no\r\n", "550 no\r\n"}), nullptr, r2) ==
          envelope_next::proceed);  // one recipient still to ask
    CHECK(judge_envelope(e, rep("250 ok\r\n"), reps({"550 no\r\n", "550 no\r\n", "550 no\r\n"}), nullptr, r2) ==
          envelope_next::done);  // nobody: no DATA at all
    CHECK(r2.ec == errc::permanent_failure);
    send_result r3;
    CHECK(judge_envelope(e, rep("250 ok\r\n"), reps({"550 no\r\n", "250 ok\r\n", "550 no\r\n"}), nullptr, r3) ==
          envelope_next::proceed);  // send DATA
    CHECK_FALSE(r3.ec);
}

TEST_CASE("judge_end_of_data") {
    send_result r;
    judge_end_of_data(rep("250 2.0.0 queued as X\r\n"), r);
    CHECK(r.sent);
    CHECK_FALSE(r.ec);
    CHECK(r.to_string().rfind("sent", 0) == 0);
    send_result t;
    judge_end_of_data(rep("452 4.2.2 mailbox full\r\n"), t);
    CHECK(t.ec == errc::transient_failure);
    CHECK(t.stage == "end of data");
    CHECK_FALSE(t.discard);
    send_result p;
    judge_end_of_data(rep("554 5.6.0 rejected\r\n"), p);
    CHECK(p.ec == errc::permanent_failure);
    send_result c;
    judge_end_of_data(rep("421 bye\r\n"), c);
    CHECK(c.ec == errc::service_closing);
    CHECK(c.discard);
    send_result u;
    judge_end_of_data(rep("354 again?\r\n"), u);
    CHECK(u.ec == errc::unexpected_reply);
    CHECK(u.discard);
}

TEST_CASE("secrets stay out of options errors, results and redacted text") {
    const std::string secret = "hunter2-Sup3rSecret";
    client_options o;
    o.cred = {"alice", secret};
    o.mechanisms = {"CRAM-MD5"};
    const std::string e1 = thrown_text([&] { o.validate(); });
    CHECK(e1.find("mechanisms") != std::string::npos);
    CHECK(e1.find(secret) == std::string::npos);
    o.mechanisms = {};
    CHECK(thrown_text([&] { o.validate(); }).find(secret) == std::string::npos);
    o.mechanisms = {"PLAIN"};
    o.helo_name = "bad name";
    CHECK(thrown_text([&] { adapter a(o); }).find("helo_name") != std::string::npos);
    o.helo_name = "client.example";
    CHECK(thrown_text([&] { adapter a(o); }) == "<no throw>");

    send_result r;
    r.ec = errc::auth_failed;
    r.stage = "checkout";
    netpool::redactor redact;  // as the adapter records a handshake failure
    redact.add_credential("alice", secret);
    r.detail = redact("AUTH PLAIN: 535 5.7.8 bad " + secret + " and " + netpool::sasl::plain_response("alice", secret));
    r.last_reply = rep("535 5.7.8 Authentication credentials invalid\r\n");
    const std::string line = r.to_string();
    CHECK(line.find(secret) == std::string::npos);
    CHECK(line.find(netpool::sasl::plain_response("alice", secret)) == std::string::npos);
    CHECK(line.find("[redacted]") != std::string::npos);
    CHECK(line.find("535 5.7.8") != std::string::npos);
    CHECK(line.find("checkout") != std::string::npos);
    CHECK(std::error_code(errc::auth_failed).message().find(secret) == std::string::npos);
}

TEST_CASE("client_options::validate names the field") {
    client_options o;
    CHECK(thrown_text([&] { o.validate(); }) == "<no throw>");
    o.command_timeout = std::chrono::milliseconds(0);
    CHECK(thrown_text([&] { o.validate(); }).rfind("command_timeout", 0) == 0);
    o = {};
    o.data_timeout = std::chrono::milliseconds(-1);
    CHECK(thrown_text([&] { o.validate(); }).rfind("data_timeout", 0) == 0);
    o = {};
    o.limits.max_line = 10;
    CHECK(thrown_text([&] { o.validate(); }).rfind("limits.max_line", 0) == 0);
    o = {};
    o.oauth_token = [](bool) { return std::string("t"); };
    CHECK(thrown_text([&] { o.validate(); }).rfind("cred.user", 0) == 0);
    o.cred.user = "u";
    CHECK(thrown_text([&] { o.validate(); }) == "<no throw>");
    o = {};
    o.helo_name = "a\r\nMAIL FROM:<x>";
    CHECK(thrown_text([&] { o.validate(); }).rfind("helo_name", 0) == 0);
}

// Issue 10, suspicion: an AUTH PLAIN user name (or password) with a NUL was accepted. The
// PLAIN message is "authzid NUL authcid NUL passwd" (RFC 4616): a NUL in the user name moves
// the boundaries, so "admin\0x" would log in as someone else's authorisation identity.
TEST_CASE("client_options::validate refuses a NUL in the user name or the secret, naming the field") {
    const std::string nul_user("alice\0admin", 11);
    // What such a user name would do to the PLAIN message: four fields instead of three.
    const auto decoded = base64_decode(netpool::sasl::plain_response(nul_user, "pw"));
    REQUIRE(decoded);
    CHECK(std::count(decoded->begin(), decoded->end(), '\0') == 3);

    const auto field_of = [](const client_options& o) {
        try {
            o.validate();
        } catch (const netpool::config_error& e) {
            return e.field();
        }
        return std::string("<no throw>");
    };
    client_options o;
    o.cred = {nul_user, "pw"};
    CHECK(field_of(o) == "cred.user");
    CHECK(thrown_text([&] { o.validate(); }).find("NUL") != std::string::npos);
    CHECK(thrown_text([&] { adapter a(o); }).find("cred.user") != std::string::npos);  // the constructor validates

    const std::string nul_secret("S3cret\0-tail-xyzzy", 18);
    o.cred = {"alice", nul_secret};
    CHECK(field_of(o) == "cred.secret");
    const std::string text = thrown_text([&] { o.validate(); });
    CHECK(text.find("NUL") != std::string::npos);
    CHECK(text.find("S3cret") == std::string::npos);  // the value is never in the message
    CHECK(text.find("xyzzy") == std::string::npos);
    o.mechanisms = {"LOGIN"};  // refused whatever the mechanism: no SASL field may hold a NUL
    CHECK(field_of(o) == "cred.secret");

    // XOAUTH2 separates its fields with ^A.
    o = {};
    o.cred.user = "alice\x01" "auth=Bearer forged";
    o.oauth_token = [](bool) { return std::string("t"); };
    CHECK(field_of(o) == "cred.user");
    o.cred.user = "alice@example.org";
    CHECK(field_of(o) == "<no throw>");
    o = {};
    o.cred = {"alice@example.org", "ordinary secret with spaces"};
    CHECK(field_of(o) == "<no throw>");
}

// Issue 10, suspicion: body lines over 998 octets. smtp::message encodes them (see
// test_smtp_message.cpp); a raw message with such a line is refused before anything is sent.
TEST_CASE("check_line_lengths: 998 octets pass, 999 are refused with the line and its length") {
    std::string detail;
    CHECK_FALSE(check_line_lengths("", detail));
    CHECK_FALSE(check_line_lengths(std::string(998, 'x'), detail));
    CHECK_FALSE(check_line_lengths("a\r\n" + std::string(998, 'x') + "\r\nb\r\n", detail));
    CHECK(detail.empty());
    // The line end does not count, whatever it is; encode_data turns each into CRLF.
    CHECK_FALSE(check_line_lengths(std::string(998, 'x') + "\n" + std::string(998, 'y') + "\r" +
                                       std::string(998, 'z'), detail));

    CHECK(check_line_lengths(std::string(999, 'x'), detail) == errc::line_too_long);
    CHECK(detail.find("line 1 ") != std::string::npos);
    CHECK(detail.find("999 octets") != std::string::npos);
    CHECK(detail.find("998") != std::string::npos);

    detail.clear();
    const std::string raw = "Subject: s\r\n\r\nshort\nalso short\r" + std::string(5000, 'q') + "\r\nend\r\n";
    CHECK(check_line_lengths(raw, detail) == errc::line_too_long);
    CHECK(detail.find("line 5 ") != std::string::npos);  // CRLF, CRLF, LF, CR: the fifth line
    CHECK(detail.find("byte offset " + std::to_string(raw.find('q'))) != std::string::npos);
    CHECK(detail.find("5000 octets") != std::string::npos);
    // A dot that transparency doubles is not counted (RFC 5321 4.5.3.1.6): 998 with a leading dot pass.
    detail.clear();
    CHECK_FALSE(check_line_lengths("." + std::string(997, 'x') + "\r\n", detail));
}

TEST_CASE("register_smtp_adapter: parameters, unknown ones refused, no secrets in params") {
    netpool::adapter_registry reg;
    register_smtp_adapter(reg);
    CHECK(reg.contains("smtp"));
    auto a = reg.make("smtp", {{"helo", "client.example"}, {"pipelining", "false"}, {"command_timeout_ms", "500"}});
    REQUIRE(a);
    CHECK(a.name() == "smtp");
    auto* s = a.target<adapter>();
    REQUIRE(s);
    CHECK(s->options().helo_name == "client.example");
    CHECK_FALSE(s->options().use_pipelining);
    CHECK(s->options().command_timeout == std::chrono::milliseconds(500));

    auto field_of = [&](const netpool::adapter_params& p) {
        try {
            (void)reg.make("smtp", p);
        } catch (const netpool::config_error& e) {
            return e.field();
        }
        return std::string("<no throw>");
    };
    CHECK(field_of({{"password", "x"}}) == "password");  // not a parameter, on purpose
    CHECK(field_of({{"bogus", "1"}}) == "bogus");
    CHECK(field_of({{"allow_plaintext_auth", "maybe"}}) == "allow_plaintext_auth");
    CHECK(field_of({{"max_line", "12x"}}) == "max_line");
    CHECK(field_of({{"mechanisms", "PLAIN,NTLM"}}) == "mechanisms");
    CHECK(field_of({{"password_env", "NETPOOL_TEST_SURELY_UNSET_VAR"}}) == "password_env");

    ::setenv("NETPOOL_TEST_SMTP_SECRET", "env-secret", 1);
    auto b = reg.make("smtp", {{"user", "u"}, {"password_env", "NETPOOL_TEST_SMTP_SECRET"}, {"mechanisms", "LOGIN"}});
    REQUIRE(b.target<adapter>());
    CHECK(b.target<adapter>()->options().cred.secret == "env-secret");
    CHECK(b.target<adapter>()->options().mechanisms == std::vector<std::string>{"LOGIN"});
    ::unsetenv("NETPOOL_TEST_SMTP_SECRET");
}

}  // TEST_SUITE
