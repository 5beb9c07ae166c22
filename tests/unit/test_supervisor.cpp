// supervisor: the connect gate, restart backoff, restart intensity, endpoint down, probes.
// Told what happened to connect attempts at given times; no nodes, no sockets.
#include <netpool/detail/supervisor.hpp>

#include <netpool/error.hpp>
#include <netpool/imap/error.hpp>
#include <netpool/redis/error.hpp>
#include <netpool/smtp/error.hpp>

#include <doctest/doctest.h>

#include <algorithm>

using namespace netpool;
using namespace netpool::detail;
using namespace std::chrono_literals;

namespace {
const time_point t0 = time_point{} + 1h;
const std::error_code refused = std::make_error_code(std::errc::connection_refused);

pool_options opts() {
    pool_options o;
    o.size = 4;
    o.max_overflow = 4;
    o.backoff_initial = 100ms;
    o.backoff_max = 2000ms;
    o.backoff_jitter = 0;
    o.max_restarts = 3;
    o.restart_period = 10000ms;
    o.down_cooldown = 1000ms;
    return o;
}
}  // namespace

TEST_CASE("supervisor: the first attempt goes alone; once it reported, attempts are admitted freely until one fails") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    CHECK(s.may_admit(t0).admit);
    s.admitted(t0);
    const auto gen = s.attempt_started();
    const auto second = s.may_admit(t0);  // a refused login is refused once, not once per worker
    CHECK_FALSE(second.admit);
    CHECK(second.ask_again == never);  // asked again when the first reports
    s.attempt_ended(gen);
    s.connected();
    for (int i = 0; i < 8; ++i) {
        CHECK(s.may_admit(t0).admit);
        s.admitted(t0);
        s.attempt_started();
    }
    CHECK_FALSE(s.recovering());
    CHECK_FALSE(s.down());
}

TEST_CASE("supervisor: failures of one generation count once; the gate then backs off and admits one") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    const auto g1 = s.attempt_started();
    const auto g2 = s.attempt_started();
    CHECK(g1 == g2);
    s.attempt_ended(g1);
    CHECK_FALSE(s.connect_failed(g1, refused, t0));
    s.attempt_ended(g2);
    CHECK_FALSE(s.connect_failed(g2, refused, t0 + 1ms));  // its sibling: not counted again
    CHECK(s.counted_failures() == 1);
    CHECK(s.recovering());
    CHECK(s.last_cause() == refused);

    // Backoff: no attempt before backoff_initial (no jitter here), then one at a time.
    const auto wait = s.may_admit(t0 + 50ms);
    CHECK_FALSE(wait.admit);
    CHECK(wait.ask_again == t0 + 100ms);
    CHECK(s.may_admit(t0 + 100ms).admit);
    s.admitted(t0 + 100ms);
    s.attempt_started();
    const auto second = s.may_admit(t0 + 101ms);
    CHECK_FALSE(second.admit);  // the first is in flight: it reports first...
    CHECK(second.ask_again > t0 + 101ms);  // ...unless it hangs past a backoff step
    CHECK(s.may_admit(second.ask_again).admit);
}

TEST_CASE("supervisor: a success ends the backoff and doubles the ramp; the episode ends when nobody waits") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    auto g = s.attempt_started();
    s.attempt_ended(g);
    s.connect_failed(g, refused, t0);
    CHECK(s.may_admit(t0 + 100ms).admit);
    s.admitted(t0 + 100ms);
    g = s.attempt_started();
    s.attempt_ended(g);
    CHECK_FALSE(s.connected());  // was not down
    // Ramp 2: two at once now, no backoff.
    for (int i = 0; i < 2; ++i) {
        CHECK(s.may_admit(t0 + 101ms).admit);
        s.admitted(t0 + 101ms);
        s.attempt_started();
    }
    CHECK_FALSE(s.may_admit(t0 + 101ms).admit);
    s.settle(true);
    CHECK(s.recovering());
    s.settle(false);
    CHECK_FALSE(s.recovering());
}

TEST_CASE("supervisor: more than max_restarts counted failures take the endpoint down; a probe waits for down_cooldown") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    time_point t = t0;
    bool went_down = false;
    int failures = 0;
    while (!went_down) {
        const auto g = s.attempt_started();
        s.attempt_ended(g);
        went_down = s.connect_failed(g, refused, t);
        ++failures;
        t += 200ms;
        REQUIRE(failures < 10);
    }
    CHECK(failures == 4);  // max_restarts = 3 tolerated
    CHECK(s.down());
    CHECK_FALSE(s.connect_failed(s.attempt_started(), refused, t));  // already down: not "went down" again
    const auto p = s.may_probe(t);
    CHECK_FALSE(p.admit);
    CHECK(p.ask_again <= t + 1000ms);  // while down the backoff is capped at down_cooldown
    CHECK(s.may_probe(p.ask_again).admit);
    CHECK(s.connected());  // up again, history cleared
    CHECK_FALSE(s.down());
    CHECK(s.counted_failures() == 0);
}

TEST_CASE("supervisor: failures older than restart_period are forgotten") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    for (int i = 0; i < 10; ++i) {
        const auto g = s.attempt_started();
        s.attempt_ended(g);
        CHECK_FALSE(s.connect_failed(g, refused, t0 + i * 5000ms));
        CHECK(s.counted_failures() <= 2);
    }
}

TEST_CASE("supervisor: a certificate that does not verify takes the endpoint down at once") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    const auto g = s.attempt_started();
    s.attempt_ended(g);
    CHECK(s.connect_failed(g, errc::tls_verify_failed, t0));
    CHECK(s.down());
    CHECK(s.may_probe(t0 + 999ms).ask_again == t0 + 1000ms);
}

TEST_CASE("supervisor: a TLS mode that does not match the port's takes the endpoint down at once, and is probed") {
    jitter_rng rng(1);
    {
        // Our ClientHello answered in clear text: whenever it happens.
        supervisor s(opts(), rng);
        auto g = s.attempt_started();
        s.attempt_ended(g);
        CHECK_FALSE(s.connect_failed(g, refused, t0));  // an ordinary failure first
        g = s.attempt_started();
        s.attempt_ended(g);
        CHECK(s.connect_failed(g, errc::tls_not_offered, t0 + 200ms));
        CHECK(s.down());
        CHECK(s.may_probe(t0 + 1199ms).ask_again == t0 + 1200ms);
    }
    {
        // No greeting on the endpoint's first attempt: as a port that expects TLS at once.
        supervisor s(opts(), rng);
        const auto g = s.attempt_started();
        s.attempt_ended(g);
        CHECK(s.connect_failed(g, errc::no_greeting, t0));
        CHECK(s.down());
        CHECK(s.may_probe(t0 + 1000ms).admit);
    }
    {
        // A server that greeted before and is slow once is not down for it.
        supervisor s(opts(), rng);
        auto g = s.attempt_started();
        s.attempt_ended(g);
        s.connected();
        g = s.attempt_started();
        s.attempt_ended(g);
        CHECK_FALSE(s.connect_failed(g, errc::no_greeting, t0));
        CHECK_FALSE(s.down());
    }
}

TEST_CASE("supervisor: refused credentials take the endpoint down for good: no probe, not even an hour later") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    const auto g = s.attempt_started();
    s.attempt_ended(g);
    CHECK(std::error_code(smtp::errc::auth_failed) == condition::credentials_rejected);
    CHECK(s.connect_failed(g, smtp::errc::auth_failed, t0));
    CHECK(s.down());
    CHECK(s.credentials_refused());
    for (auto later_on : {t0, t0 + 1000ms, t0 + 1h}) {
        const auto p = s.may_probe(later_on);
        CHECK_FALSE(p.admit);
        CHECK(p.ask_again == never);
    }
    CHECK_FALSE(s.may_admit(t0 + 1h).admit);
    // A rejected XOAUTH2 token is not a refusal of credentials: a refreshed one may follow.
    supervisor t(opts(), rng);
    const auto h = t.attempt_started();
    t.attempt_ended(h);
    CHECK_FALSE(std::error_code(smtp::errc::token_rejected) == condition::credentials_rejected);
    CHECK_FALSE(t.connect_failed(h, smtp::errc::token_rejected, t0));
    CHECK_FALSE(t.down());
    CHECK(std::error_code(imap::errc::login_failed) == condition::credentials_rejected);
    CHECK(std::error_code(redis::errc::auth_failed) == condition::credentials_rejected);
    CHECK_FALSE(std::error_code(smtp::errc::greeting_rejected) == condition::credentials_rejected);
}

TEST_CASE("supervisor: two connections found broken close together start an episode") {
    jitter_rng rng(1);
    supervisor s(opts(), rng);
    s.note_break(t0);
    CHECK_FALSE(s.recovering());
    s.note_break(t0 + 500ms);  // further apart than backoff_initial
    CHECK_FALSE(s.recovering());
    s.note_break(t0 + 550ms);
    CHECK(s.recovering());
    REQUIRE(s.may_admit(t0 + 550ms).admit);
    s.attempt_started();
    s.admitted(t0 + 550ms);
    CHECK_FALSE(s.may_admit(t0 + 550ms).admit);  // one at a time
}

TEST_CASE("supervisor: retry_delay grows with the episode's age, within backoff_initial..backoff_max and its jitter") {
    pool_options o = opts();
    o.backoff_jitter = 0.5;
    jitter_rng rng(7);
    supervisor s(o, rng);
    const auto g = s.attempt_started();
    s.attempt_ended(g);
    s.connect_failed(g, refused, t0);
    for (auto age : {0ms, 1000ms, 8000ms, 60000ms}) {
        for (int i = 0; i < 100; ++i) {
            const auto d = s.retry_delay(t0 + age);
            const auto base = std::clamp<std::chrono::milliseconds>(age / 8, 100ms, 2000ms);
            CHECK(d <= base);
            CHECK(d >= base / 2 - 1ms);
        }
    }
}
