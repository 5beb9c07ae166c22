// mailer::send's retry decisions (netpool/smtp/retry.hpp) without sockets: what is tried
// again, for which recipients, what is never sent twice, how results fold, the delays.
#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/retry.hpp>

#include <doctest/doctest.h>

using namespace netpool;
using namespace std::chrono_literals;
using smtp::retry_step;

namespace {

smtp::envelope env(std::vector<std::string> rcpts) { return {"from@test", std::move(rcpts)}; }

smtp::recipient_result rcpt(std::string addr, int code) {
    smtp::recipient_result r;
    r.address = std::move(addr);
    r.code = code;
    return r;
}

smtp::send_result sent(std::vector<smtp::recipient_result> rs) {
    smtp::send_result r;
    r.sent = true;
    r.recipients = std::move(rs);
    return r;
}

smtp::send_result failed(std::error_code ec, std::string stage, std::vector<smtp::recipient_result> rs = {}) {
    smtp::send_result r;
    r.ec = ec;
    r.stage = std::move(stage);
    r.recipients = std::move(rs);
    return r;
}

}  // namespace

TEST_SUITE("smtp retries") {

TEST_CASE("accepted at once: one attempt, nothing more") {
    smtp::send_tracker t(env({"a@test"}), {});
    CHECK(t.record(sent({rcpt("a@test", 250)})) == retry_step::done);
    const auto r = t.result();
    CHECK(r.sent);
    CHECK_FALSE(r.ec);
    CHECK(r.attempts == 1);
}

TEST_CASE("a session lost or closing before the dot went out: the whole envelope again") {
    std::error_code cause;
    std::string stage;
    SUBCASE("421 to DATA") { cause = smtp::errc::service_closing, stage = "DATA"; }
    SUBCASE("connection closed at MAIL FROM") { cause = errc::connection_closed, stage = "MAIL FROM"; }
    SUBCASE("the dot's write failed") { cause = errc::connection_closed, stage = "end of data"; }
    SUBCASE("451 to the final dot (refused, not taken)") { cause = smtp::errc::transient_failure, stage = "end of data"; }
    SUBCASE("451 to MAIL FROM") { cause = smtp::errc::transient_failure, stage = "MAIL FROM"; }
    CAPTURE(stage);
    smtp::send_tracker t(env({"a@test", "b@test"}), {});
    CHECK(t.record(failed(cause, stage, {rcpt("a@test", 250), rcpt("b@test", 250)})) == retry_step::again);
    CHECK(t.next_envelope().rcpt_to == std::vector<std::string>{"a@test", "b@test"});
    CHECK(t.record(sent({rcpt("a@test", 250), rcpt("b@test", 250)})) == retry_step::done);
    const auto r = t.result();
    CHECK(r.sent);
    CHECK_FALSE(r.ec);
    CHECK(r.stage.empty());
    CHECK(r.attempts == 2);
}

TEST_CASE("a 4xx to one RCPT: that recipient alone, in a new transaction; the accepted ones never again") {
    smtp::send_tracker t(env({"a@test", "b@test", "c@test"}), {});
    CHECK(t.record(sent({rcpt("a@test", 250), rcpt("b@test", 451), rcpt("c@test", 550)})) == retry_step::again);
    CHECK(t.next_envelope().rcpt_to == std::vector<std::string>{"b@test"});
    CHECK(t.record(sent({rcpt("b@test", 250)})) == retry_step::done);
    const auto r = t.result();
    CHECK(r.sent);
    CHECK(r.attempts == 2);
    REQUIRE(r.recipients.size() == 3);
    CHECK(r.recipients[0].address == "a@test");
    CHECK(r.recipients[0].code == 250);
    CHECK(r.recipients[1].code == 250);  // its latest word
    CHECK(r.recipients[2].code == 550);  // refused for good, not retried
}

TEST_CASE("no recipient accepted: the 4xx ones again, the 5xx ones not") {
    smtp::send_tracker t(env({"a@test", "b@test"}), {});
    CHECK(t.record(failed(smtp::errc::transient_failure, "RCPT TO", {rcpt("a@test", 450), rcpt("b@test", 550)})) ==
          retry_step::again);
    CHECK(t.next_envelope().rcpt_to == std::vector<std::string>{"a@test"});
    smtp::send_tracker all5(env({"a@test"}), {});
    CHECK(all5.record(failed(smtp::errc::permanent_failure, "RCPT TO", {rcpt("a@test", 550)})) == retry_step::done);
}

TEST_CASE("an unknown outcome is not sent again by default; at-least-once sends it again") {
    const auto unknown = failed(smtp::errc::outcome_unknown, "end of data", {rcpt("a@test", 250)});
    smtp::send_tracker t(env({"a@test"}), {});
    CHECK(t.record(unknown) == retry_step::done);
    auto r = t.result();
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::outcome_unknown);
    CHECK(r.attempts == 1);

    smtp::retry_policy p;
    p.retry_unknown_outcome = true;
    smtp::send_tracker again(env({"a@test"}), p);
    CHECK(again.record(unknown) == retry_step::again);
    CHECK(again.record(sent({rcpt("a@test", 250)})) == retry_step::done);
    CHECK(again.result().sent);
    CHECK(again.result().attempts == 2);
}

TEST_CASE("sent to some, then unknown for the deferred ones: sent, and the outcome says unknown") {
    smtp::send_tracker t(env({"a@test", "b@test"}), {});
    CHECK(t.record(sent({rcpt("a@test", 250), rcpt("b@test", 451)})) == retry_step::again);
    CHECK(t.record(failed(smtp::errc::outcome_unknown, "end of data", {rcpt("b@test", 250)})) == retry_step::done);
    const auto r = t.result();
    CHECK(r.sent);
    CHECK(r.ec == smtp::errc::outcome_unknown);
}

TEST_CASE("refused for good, or before anything was sent: no retry") {
    std::error_code cause;
    std::string stage;
    SUBCASE("550 to MAIL FROM") { cause = smtp::errc::permanent_failure, stage = "MAIL FROM"; }
    SUBCASE("554 to the final dot") { cause = smtp::errc::permanent_failure, stage = "end of data"; }
    SUBCASE("over SIZE") { cause = smtp::errc::message_too_large, stage = "SIZE"; }
    SUBCASE("a line over 998 octets") { cause = smtp::errc::line_too_long, stage = "content"; }
    SUBCASE("a bad address") { cause = smtp::errc::invalid_address, stage = "envelope"; }
    SUBCASE("a reply before the end of data") { cause = smtp::errc::reply_before_end_of_data, stage = "end of data"; }
    CAPTURE(stage);
    smtp::send_tracker t(env({"a@test"}), {});
    CHECK(t.record(failed(cause, stage)) == retry_step::done);
    CHECK(t.result().ec == cause);
    CHECK(t.result().attempts == 1);
}

TEST_CASE("checkouts: endpoint down waits without using attempts; a refused login or a bad certificate ends it") {
    smtp::send_tracker t(env({"a@test"}), {});
    for (int i = 0; i < 10; ++i) CHECK(t.record(failed(errc::endpoint_down_refused, "checkout")) == retry_step::wait_for_endpoint);
    CHECK(t.attempts() == 0);
    CHECK(t.result().attempts == 0);
    CHECK(t.result().ec == errc::endpoint_down_refused);
    CHECK(t.record(sent({rcpt("a@test", 250)})) == retry_step::done);
    CHECK(t.result().attempts == 1);

    for (auto ec : {std::error_code(smtp::errc::auth_failed), std::error_code(errc::endpoint_down_tls),
                    std::error_code(errc::pool_closed), std::error_code(errc::cancelled)}) {
        CAPTURE(ec.message());
        smtp::send_tracker u(env({"a@test"}), {});
        CHECK(u.record(failed(ec, "checkout")) == retry_step::done);
    }
    smtp::send_tracker timed_out(env({"a@test"}), {});
    CHECK(timed_out.record(failed(errc::checkout_timeout, "checkout")) == retry_step::again);
    CHECK(timed_out.attempts() == 1);
}

TEST_CASE("max_attempts bounds the transactions; 1 means no retry") {
    smtp::retry_policy p;
    p.max_attempts = 3;
    smtp::send_tracker t(env({"a@test"}), p);
    CHECK(t.record(failed(smtp::errc::service_closing, "DATA")) == retry_step::again);
    CHECK(t.record(failed(smtp::errc::service_closing, "DATA")) == retry_step::again);
    CHECK(t.record(failed(smtp::errc::service_closing, "DATA")) == retry_step::done);
    CHECK(t.result().attempts == 3);
    CHECK(t.result().ec == smtp::errc::service_closing);
    p.max_attempts = 1;
    smtp::send_tracker once(env({"a@test"}), p);
    CHECK(once.record(failed(smtp::errc::service_closing, "DATA")) == retry_step::done);
}

TEST_CASE("delays: doubling from backoff_initial, capped, less the jitter drawn") {
    smtp::retry_policy p;
    p.backoff_initial = 100ms;
    p.backoff_max = 500ms;
    p.backoff_jitter = 0.5;
    CHECK(smtp::retry_delay(p, 2, 0.0) == 100ms);
    CHECK(smtp::retry_delay(p, 3, 0.0) == 200ms);
    CHECK(smtp::retry_delay(p, 4, 0.0) == 400ms);
    CHECK(smtp::retry_delay(p, 5, 0.0) == 500ms);
    CHECK(smtp::retry_delay(p, 60, 0.0) == 500ms);
    CHECK(smtp::retry_delay(p, 2, 1.0) == 50ms);
    CHECK(smtp::retry_delay(p, 5, 0.5) == 375ms);
}

TEST_CASE("retry_policy::validate names the field") {
    smtp::retry_policy p;
    CHECK_NOTHROW(p.validate());
    p.max_attempts = 0;
    CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("retry.max_attempts"), config_error);
    p = {};
    p.backoff_max = 1ms;
    CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("retry.backoff_max"), config_error);
    p = {};
    p.backoff_jitter = 2;
    CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("retry.backoff_jitter"), config_error);
    p = {};
    p.deadline = 0ms;
    CHECK_THROWS_WITH_AS(p.validate(), doctest::Contains("retry.deadline"), config_error);
}

}  // TEST_SUITE
