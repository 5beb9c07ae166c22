// The pool's failure paths, driven through pool_sim (tests/unit/pool_sim.hpp): bursts
// after idle, server blips, probes racing reconnects, drains racing probes, timers with
// nothing to do, durations at their limits. Default options unless the scenario needs one.
#include "pool_sim.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace netpool;
using namespace netpool::test;
using namespace std::chrono_literals;

namespace {

const std::error_code refused = std::make_error_code(std::errc::connection_refused);

pool_options sized(std::size_t size, std::size_t overflow) {
    pool_options o;  // everything else at its default
    o.size = size;
    o.max_overflow = overflow;
    return o;
}

/// A server that refuses connections between `down` and `up`.
struct outage {
    time_point down, up;
    bool at(time_point t) const { return t >= down && t < up; }
};

}  // namespace

TEST_SUITE("pool faults") {

TEST_CASE("a burst after idle is checked in parallel and served by the idle connections") {
    // Defaults: health_check_after_idle = 30 s.
    pool_sim s(sized(5, 5));
    s.st.start(s.t);
    s.run_for(10ms);
    REQUIRE(s.st.count(detail::node_status::idle) == 5);
    s.t += 31s;  // every connection is now due for a check before it is handed out
    for (int i = 0; i < 5; ++i) s.request_now();
    s.run_for(2ms);  // one check takes 1 ms
    // All five served at once by the five idle connections: no overflow opened, no caller
    // waiting while a checked-good connection sat idle, each connection checked once.
    CHECK(s.connect_starts.size() == 5);
    std::size_t served = 0;
    for (auto& r : s.requests) served += r.done && !r.ec;
    CHECK(served == 5);
    for (auto& [id, n] : s.checks_by_node) CHECK_MESSAGE(n == 1, "connection " << id << " checked " << n << " times");
    CHECK(s.checks_by_node.size() == 5);
}

TEST_CASE("a burst after idle larger than the pool: checks for the idle ones, overflow for the rest") {
    pool_sim s(sized(3, 3));
    s.st.start(s.t);
    s.run_for(10ms);
    s.t += 31s;
    for (int i = 0; i < 6; ++i) s.request_now();
    s.run_for(5ms);
    std::size_t served = 0;
    for (auto& r : s.requests) served += r.done && !r.ec;
    CHECK(served == 6);
    CHECK(s.connect_starts.size() == 6);  // 3 base + 3 overflow, no more
    CHECK(s.checks_by_node.size() == 3);
}

TEST_CASE("a failed probe after the endpoint came back does not park its worker forever") {
    // Reproduces the report: a probe is in flight when another worker's slow connect
    // succeeds and brings the endpoint up; the probe then fails. The pool must get back to
    // size + max_overflow leases at once.
    auto o = sized(2, 1);
    o.max_restarts = 2;  // the scenario needs the endpoint down quickly
    pool_sim s(o);
    const time_point t0 = s.t;
    const outage out{t0, t0 + 5500ms};
    s.on_connect = [&](const node_rec& n, time_point at) -> pool_sim::connect_answer {
        if (n.id == 1 && at == t0) return {6s, {}};  // slow handshake that succeeds at t0 + 6 s
        if (at >= t0 + 5s && at < t0 + 6s) return {1s, errc::connect_timeout};  // a probe still in flight at t0 + 6 s
        if (out.at(at)) return {1ms, refused};
        return {};
    };
    s.st.start(s.t);
    s.run_until(t0 + 12s);  // the server is stably up from t0 + 7 s
    // Three callers must get three leases at once.
    s.hold = 1s;
    for (int i = 0; i < 3; ++i) s.request_now();
    s.run_for(100ms);
    CHECK(s.leased_now() == 3);
    CHECK(s.st.snapshot().connecting == 0);
    CHECK_FALSE(s.st.endpoint_down());
}

TEST_CASE("a server blip with default options: no stampede, served again soon after it returns") {
    // Defaults (10 + 10). The server dies under load and is back 2 s later.
    pool_sim s(sized(10, 10));
    s.st.start(s.t);
    s.run_for(10ms);
    const time_point kill = s.t + 1s;
    const outage out{kill, kill + 2s};
    s.on_connect = [&](const node_rec&, time_point at) -> pool_sim::connect_answer {
        return out.at(at) ? pool_sim::connect_answer{1ms, refused} : pool_sim::connect_answer{};
    };
    // Every connection breaks with the server: the exchange on it fails.
    s.broken = [&](time_point at) { return out.at(at); };
    s.hold = 2ms;
    // Load: a burst of 20 callers every 10 ms for 5 s.
    const time_point end = kill + 4s;
    while (s.t < end) {
        for (int i = 0; i < 20; ++i) s.request_now();
        s.run_for(10ms);
    }
    s.run_for(6s);
    // Connections that broke together reconnect through one attempt at a time, not all
    // at once: in the 100 ms after the first broken connection comes back (kill + hold),
    // at most a few connects start. (Overflow workers the burst at `kill` opened before
    // any failure was known are not counted.)
    const time_point seen = kill + s.hold + 1ms;
    const auto first_100ms = std::count_if(s.connect_starts.begin(), s.connect_starts.end(),
                                           [&](time_point at) { return at >= seen && at < seen + 100ms; });
    CHECK_MESSAGE(first_100ms <= 3, first_100ms << " connects started in the first 100 ms after the breaks");
    // Served again within 0.5 s of the server's return, and nothing fails after that.
    const time_point back = s.first_success_after(out.up);
    REQUIRE(back != never);
    CHECK_MESSAGE(back - out.up <= 500ms,
                  "first success " << std::chrono::duration_cast<std::chrono::milliseconds>(back - out.up).count()
                                   << " ms after the server returned");
    CHECK(s.failed_since(back) == 0);
    // Every request got exactly one outcome.
    for (auto& r : s.requests) CHECK(r.done);
    CHECK(s.st.snapshot().connecting == 0);
}

TEST_CASE("an attempt that hangs (a server that accepts and never answers) does not hold the gate") {
    // The server refuses for a while; the first attempt after it returns lands on a
    // connection that never answers (it reports only at handshake_timeout, 10 s); the next
    // ones are fine. Callers (5 s checkout timeout) must be served long before 10 s.
    pool_sim s(sized(10, 10));
    s.st.start(s.t);
    s.run_for(10ms);
    const time_point kill = s.t + 100ms;
    const outage out{kill, kill + 1s};
    bool hung_one = false;
    s.on_connect = [&](const node_rec&, time_point at) -> pool_sim::connect_answer {
        if (out.at(at)) return {1ms, refused};
        if (at >= out.up && !hung_one) {
            hung_one = true;
            return {10s, errc::handshake_timeout};
        }
        return {};
    };
    s.broken = [&](time_point at) { return out.at(at); };
    s.hold = 2ms;
    while (s.t < kill + 4s) {
        for (int i = 0; i < 20; ++i) s.request_now();
        s.run_for(10ms);
    }
    s.run_for(12s);
    REQUIRE(hung_one);
    const time_point back = s.first_success_after(out.up);
    REQUIRE(back != never);
    CHECK_MESSAGE(back - out.up <= 1s,
                  "first success " << std::chrono::duration_cast<std::chrono::milliseconds>(back - out.up).count()
                                   << " ms after the server returned");
    std::size_t timed_out = 0;
    for (auto& r : s.requests) timed_out += r.ec == errc::checkout_timeout;
    CHECK(timed_out == 0);
}

TEST_CASE("connects that fail together count as one failure for restart intensity") {
    // 20 connections all refused at once (the pool's default size + overflow) are one
    // episode: one failure, not twenty; the endpoint is not declared down by a single blip.
    pool_sim s(sized(10, 10));
    const time_point t0 = s.t;
    s.on_connect = [&](const node_rec&, time_point at) -> pool_sim::connect_answer {
        return at < t0 + 50ms ? pool_sim::connect_answer{1ms, refused} : pool_sim::connect_answer{};
    };
    s.st.start(s.t);
    for (int i = 0; i < 20; ++i) s.request_now();
    s.run_for(3s);
    CHECK(s.count(event_kind::endpoint_down) == 0);
    for (auto& r : s.requests) CHECK_MESSAGE(!r.ec, r.ec.message());
    CHECK(s.st.count(detail::node_status::idle) + s.leased_now() >= 10);
}

TEST_CASE("a drain racing a probe opens nothing new after it began") {
    // The drain starts at the instant the probe's handshake succeeds, and the probe's
    // worker reports before the parked workers have seen their exit order.
    pool_sim s(sized(3, 0));
    const time_point t0 = s.t;
    s.on_connect = [&](const node_rec&, time_point at) -> pool_sim::connect_answer {
        if (at < t0 + 20s) return {1ms, refused};
        return {500ms, {}};  // the server is back; this handshake takes 500 ms
    };
    s.st.start(s.t);
    s.run_until(t0 + 19s);
    REQUIRE(s.st.endpoint_down());
    while (s.connect_starts.empty() || s.connect_starts.back() < t0 + 20s) s.run_for(1ms);
    const time_point probe_done = s.connect_starts.back() + 500ms;
    const std::uint64_t probe = s.connect_ids.back();
    s.run_until(probe_done - 1us);
    s.t = probe_done;
    s.st.drain(s.t, s.t + 10s);
    const time_point drain_at = s.t;
    s.prefer = [&](const node_rec& n) { return n.id == probe; };
    s.run_for(20s);
    const auto after = std::count_if(s.connect_starts.begin(), s.connect_starts.end(),
                                     [&](time_point at) { return at >= drain_at; });
    CHECK_MESSAGE(after == 0, after << " connects started after the drain began");
    CHECK(s.drained_called);
    CHECK(s.st.total() == 0);
}

TEST_CASE("endpoint down with no way to probe: the timer does not spin") {
    // A global cap held elsewhere: the pool cannot open a probe. It must wait for a permit,
    // not re-arm its timer for the past.
    struct permits final : detail::permit_source {
        std::size_t limit = 2, used = 0;
        bool try_acquire(void*) override { return used < limit ? (++used, true) : false; }
        void release(void*) override { --used; }
    } p;
    auto o = sized(1, 1);
    o.max_restarts = 1;
    pool_sim s(o);
    s.st.set_permit_source(&p, nullptr);
    const time_point t0 = s.t;
    s.on_connect = [&](const node_rec& n, time_point) -> pool_sim::connect_answer {
        return n.id == 1 ? pool_sim::connect_answer{} : pool_sim::connect_answer{1ms, refused};
    };
    s.st.start(s.t);
    s.run_for(10ms);
    s.hold = 1h;
    s.request_now();  // takes the base connection for an hour
    s.request_now();  // opens an overflow worker, which is refused: endpoint down
    s.run_for(500ms);
    REQUIRE(s.st.endpoint_down());
    p.limit = p.used;  // another pool takes the last permit
    s.run_until(t0 + 60s);
    CHECK(s.ticks < 200);
}

TEST_CASE("durations saturate: a huge lifetime, threshold or deadline means never") {
    auto o = sized(1, 0);
    o.max_lifetime = std::chrono::milliseconds::max();
    o.health_check_after_idle = std::chrono::milliseconds::max();
    o.idle_timeout = std::chrono::milliseconds::max();
    o.lease_deadline = std::chrono::milliseconds::max();
    o.keepalive_interval = std::chrono::milliseconds::max();
    o.down_cooldown = std::chrono::milliseconds::max();
    o.backoff_max = std::chrono::milliseconds::max();
    pool_sim s(o);
    s.st.start(s.t);
    s.run_for(10ms);
    for (int i = 0; i < 5; ++i) {
        s.request_now(std::chrono::milliseconds::max());
        s.run_for(1h);
    }
    for (auto& r : s.requests) CHECK(!r.ec);
    CHECK(s.connect_starts.size() == 1);  // never retired, never checked
    CHECK(s.checks_by_node.empty());
    CHECK(s.count(event_kind::lease_overdue) == 0);
}

}  // TEST_SUITE

