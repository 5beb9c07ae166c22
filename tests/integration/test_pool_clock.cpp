// The pool's lifecycle on an injected manual clock (netpool/clock.hpp), against netpool's
// echo server on loopback: lifetimes, overflow_ttl, checkout, lease and drain deadlines
// (huge ones: test_pool_faults.cpp),
// health checks after idle, keepalive, supervision (backoff, endpoint down, probes) and the
// registry's idle retirement, with the options' defaults or values a user would pick
// (minutes, seconds), and without sleeping. The connections are real: the tests wait for
// their I/O (until()), never for a lifecycle duration to pass.
#include "support.hpp"

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <doctest/doctest.h>

#include <map>
#include <mutex>
#include <optional>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;

namespace {

std::size_t idx(close_reason r) { return static_cast<std::size_t>(r); }

/// Waits for real I/O (connects, closes, echoes) to reach a state, polling every 2 ms.
template <class Pred> awaitable<void> until(Pred pred) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (!pred()) {
        t.expires_after(2ms);
        co_await t.async_wait(use_awaitable);
    }
}

/// until(), giving up after `bound` of real time: for I/O that may not happen.
template <class Pred> awaitable<bool> until_or(Pred pred, std::chrono::milliseconds bound) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto end = std::chrono::steady_clock::now() + bound;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= end) co_return false;
        t.expires_after(2ms);
        co_await t.async_wait(use_awaitable);
    }
    co_return true;
}

/// Lets everything already posted to this (single-threaded) io_context run: completions a
/// clock move posted run before this returns.
awaitable<void> settle() {
    for (int i = 0; i < 3; ++i) co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
}

pool_options on(const std::shared_ptr<manual_clock>& clock, std::size_t size, std::size_t overflow) {
    pool_options o;  // defaults otherwise
    o.size = size;
    o.max_overflow = overflow;
    o.clock = clock;
    return o;
}

awaitable<std::error_code> echo_once(pool& p) {
    auto [ec, l] = co_await p.checkout();
    if (ec) co_return ec;
    std::string reply;
    ec = co_await echo::adapter{}.request(*l, "ping", reply);
    if (ec) l.discard();
    co_return ec;
}

struct event_counts {
    std::mutex mu;
    std::map<event_kind, int> n;
    event_hook hook() {
        return [this](const event& e) {
            std::lock_guard lk(mu);
            ++n[e.kind];
        };
    }
    int operator[](event_kind k) {
        std::lock_guard lk(mu);
        return n[k];
    }
};

}  // namespace

TEST_SUITE("pool on a manual clock") {

TEST_CASE("max_lifetime of 30 min with the default jitter: kept at 26 min, replaced once past 30") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    auto o = on(clock, 1, 0);
    o.max_lifetime = 30min;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "lifetime");
    test::run(ioc, [&]() -> awaitable<void> {
        CHECK_FALSE(co_await echo_once(p));
        clock->advance(26min);  // jitter takes at most 10 %: the lifetime is 27..30 min
        CHECK_FALSE(co_await echo_once(p));
        CHECK(srv.server().connections_accepted() == 1);
        CHECK(p.stats().closes[idx(close_reason::lifetime)] == 0);
        clock->advance(4min + 1s);
        // Closed where it lies idle, and its worker connects anew.
        co_await until([&] { return p.stats().closes[idx(close_reason::lifetime)] == 1 && p.stats().idle == 1; });
        CHECK_FALSE(co_await echo_once(p));
        CHECK(srv.server().connections_accepted() == 2);
    }());
}

TEST_CASE("overflow_ttl of 1 min: returned overflow connections linger 1 min, then close") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    auto o = on(clock, 1, 2);
    o.overflow_ttl = 1min;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "overflow-ttl");
    test::run(ioc, [&]() -> awaitable<void> {
        {
            std::vector<lease> held;
            for (int i = 0; i < 3; ++i) {
                auto [ec, l] = co_await p.checkout();
                REQUIRE_FALSE(ec);
                held.push_back(std::move(l));
            }
            CHECK(p.stats().overflow == 2);
        }
        co_await settle();
        clock->advance(59s);
        co_await settle();
        CHECK(p.stats().idle == 3);
        CHECK(p.stats().closes[idx(close_reason::overflow)] == 0);
        clock->advance(2s);
        co_await until([&] { return p.stats().closes[idx(close_reason::overflow)] == 2; });
        co_await until([&] { return srv.server().open_sessions() == 1; });
        CHECK(p.stats().idle == 1);
    }());
}

TEST_CASE("the default checkout timeout (5 s): a waiter still waits at 4.9 s, fails at 5 s, not before") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    event_counts ev;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, on(clock, 1, 0), "checkout-timeout");
    p.set_event_hook(ev.hook());
    test::run(ioc, [&]() -> awaitable<void> {
        auto [ec, held] = co_await p.checkout();
        REQUIRE_FALSE(ec);
        std::optional<std::error_code> second;
        p.async_checkout([&](std::error_code e, lease) { second = e; });
        co_await settle();
        clock->advance(4900ms);
        co_await settle();
        CHECK_FALSE(second.has_value());
        CHECK(p.stats().waiters == 1);
        clock->advance(100ms);
        co_await settle();
        REQUIRE(second.has_value());
        CHECK(*second == errc::checkout_timeout);
        CHECK(ev[event_kind::waiter_timeout] == 1);
        // The lease held all along is unaffected.
        std::string reply;
        CHECK_FALSE(co_await echo::adapter{}.request(*held, "still mine", reply));
    }());
}

TEST_CASE("lease_deadline of 30 s: reported at 30 s, not at 29; the connection is not reused") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    auto o = on(clock, 1, 0);
    o.lease_deadline = 30s;
    event_counts ev;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "overdue");
    p.set_event_hook(ev.hook());
    test::run(ioc, [&]() -> awaitable<void> {
        auto [ec, l] = co_await p.checkout();
        REQUIRE_FALSE(ec);
        clock->advance(29s);
        CHECK(ev[event_kind::lease_overdue] == 0);
        clock->advance(1s);
        CHECK(ev[event_kind::lease_overdue] == 1);
        l.release();
        co_await until([&] { return p.stats().idle == 1; });
    }());
    auto s = p.stats();
    CHECK(s.leases_overdue == 1);
    CHECK(s.closes[idx(close_reason::overdue)] == 1);
    CHECK(srv.server().connections_accepted() == 2);
}

TEST_CASE("a drain with a 10 s deadline: waits at 9 s, aborts the lease at 10 s") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, on(clock, 2, 0), "drain");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 2; });
        auto [ec, l] = co_await p.checkout();
        REQUIRE_FALSE(ec);
        std::optional<std::error_code> drained;
        p.async_drain(10s, [&](std::error_code e) { drained = e; });
        clock->advance(9s);
        co_await settle();
        CHECK_FALSE(drained.has_value());
        std::string reply;
        CHECK_FALSE(co_await echo::adapter{}.request(*l, "during the drain", reply));
        clock->advance(1s);
        co_await until([&] { return drained.has_value(); });
        CHECK(*drained == errc::operation_timeout);
        CHECK(co_await echo::adapter{}.request(*l, "too late", reply));  // shut down under the holder
        l.release();
        co_await until([&] { return p.stats().busy == 0 && p.stats().leased == 0; });
    }());
}

TEST_CASE("health_check_after_idle (default 30 s): no check at 29 s idle, a check at 31 s") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, on(clock, 1, 0), "health");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 1; });
        clock->advance(29s);
        auto before = srv.server().frames_echoed();
        CHECK_FALSE(co_await echo_once(p));
        CHECK(srv.server().frames_echoed() == before + 1);  // the request alone
        clock->advance(31s);
        before = srv.server().frames_echoed();
        CHECK_FALSE(co_await echo_once(p));
        CHECK(srv.server().frames_echoed() == before + 2);  // the ping, then the request
        // The server drops its connections: after the idle threshold, the stale one fails
        // its check and is replaced before anyone gets it.
        srv.restart();
        clock->advance(31s);
        CHECK_FALSE(co_await echo_once(p));
    }());
    CHECK(p.stats().health_checks_failed == 1);
    CHECK(p.stats().closes[idx(close_reason::health)] == 1);
}

TEST_CASE("keepalive every 60 s pings idle connections on time and replaces dead ones") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    auto o = on(clock, 2, 0);
    o.keepalive_interval = 60s;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "keepalive");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 2; });
        const auto frames0 = srv.server().frames_echoed();
        clock->advance(59s);
        co_await settle();
        CHECK(srv.server().frames_echoed() == frames0);
        clock->advance(2s);
        co_await until([&] { return srv.server().frames_echoed() == frames0 + 2; });  // one ping each
        co_await until([&] { return p.stats().idle == 2; });
        srv.restart();
        clock->advance(61s);
        co_await until([&] { return p.stats().health_checks_failed == 2; });  // both noticed, unasked
        co_await until([&] { return p.stats().idle == 2; });                  // and reconnected
        CHECK_FALSE(co_await echo_once(p));
    }());
    CHECK(p.stats().closes[idx(close_reason::health)] == 2);
}

TEST_CASE("supervision with the default options: retries wait for the backoff, the endpoint goes down, a probe "
          "brings it back") {
    test::server_thread srv;
    const auto port = srv.port();
    srv.stop();  // refused from the start
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    event_counts ev;
    pool p(ioc.get_executor(), test::loopback(port), echo::adapter{}, on(clock, 2, 0), "supervised");
    p.set_event_hook(ev.hook());
    test::run(ioc, [&]() -> awaitable<void> {
        // The endpoint's first connect (alone) fails; then every worker waits for a backoff
        // that this clock has not run.
        co_await until([&] { return p.stats().connects_failed >= 1 && p.stats().busy == 0; });
        const auto first = p.stats().connects_failed;
        for (int i = 0; i < 20; ++i) co_await settle();
        CHECK(p.stats().connects_failed == first);  // no retry while time stands still
        // Time moves in 50 ms steps: retries (each after its backoff, 100 ms growing to an
        // eighth of the episode's age) until the restart intensity (10 failures in 10 s) puts
        // the endpoint down. A step with no retry due waits out its bound on real I/O.
        int steps = 0;
        for (; steps < 400 && !p.stats().endpoint_down; ++steps) {
            const auto before = p.stats().connects_failed;
            clock->advance(50ms);
            co_await until_or([&] { return p.stats().connects_failed > before || p.stats().endpoint_down; }, 20ms);
        }
        MESSAGE("endpoint down after " << steps * 50 << " ms of simulated time, "
                                      << p.stats().connects_failed << " failed connects");
        REQUIRE(p.stats().endpoint_down);
        CHECK(ev[event_kind::endpoint_down] == 1);
        auto [ec, l] = co_await p.checkout();
        CHECK(ec == errc::endpoint_down_refused);  // fails fast, with the cause
        srv.start();
        clock->advance(5s);  // the default down_cooldown: a probe is due
        co_await until([&] { return !p.stats().endpoint_down && p.stats().idle == 2; });
        CHECK(ev[event_kind::endpoint_up] == 1);
        CHECK_FALSE(co_await echo_once(p));
    }());
}

TEST_CASE("registry: keyed pools idle for retire_idle_after (10 min) are retired when the clock says so") {
    test::server_thread srv;
    asio::io_context ioc;
    auto clock = std::make_shared<manual_clock>();
    registry_options ro;
    ro.retire_idle_after = 10min;
    ro.clock = clock;
    registry reg(ioc.get_executor(), ro);
    auto make = [] { return any_adapter(echo::adapter{}); };
    pool_options po;
    po.size = 1;
    po.max_overflow = 0;
    test::run(ioc, [&]() -> awaitable<void> {
        {
            auto p = reg.pool_for(test::loopback(srv.port()), credentials{"u", "pw"}, make, po);
            auto [ec, l] = co_await p->checkout();
            REQUIRE_FALSE(ec);
            clock->advance(20min);  // leased: not idle, whatever the time
            CHECK(reg.size() == 1);
        }
        clock->advance(1s);  // the sweep that first sees it idle
        clock->advance(10min - 1ms);
        CHECK(reg.size() == 1);
        clock->advance(1ms);
        CHECK(reg.size() == 0);
        co_await until([&] { return srv.server().open_sessions() == 0; });
    }());
}

}  // TEST_SUITE
