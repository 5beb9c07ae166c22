// pool_set against three of netpool's echo servers on loopback, default pool options: the
// policies (priority, round robin, least loaded), a server stopped under load with no failed
// request while another is up, its return, and stats per endpoint in JSON and Prometheus.
#include "support.hpp"

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <doctest/doctest.h>

#include <array>
#include <map>
#include <string>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;

namespace {

awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(use_awaitable);
}

template <class Pred> awaitable<void> until(Pred pred) {
    while (!pred()) co_await sleep_for(5ms);
}

/// One echo request, idempotent: a broken connection is discarded, so pool_set::transaction
/// tries it on another endpoint.
awaitable<std::error_code> ping(lease& l) {
    std::string reply;
    auto ec = co_await echo::adapter{}.request(*l, "ping", reply);
    if (ec) l.discard();
    co_return ec;
}

struct three_servers {
    std::array<test::server_thread, 3> srv;
    std::vector<endpoint> endpoints() {
        std::vector<endpoint> v;
        for (auto& s : srv) v.push_back(test::loopback(s.port()));
        return v;
    }
    std::uint64_t frames(std::size_t i) { return srv[i].server().frames_echoed(); }
};

/// `callers` coroutines doing transactions until `stop`; counts successes and failures.
struct load {
    int ok = 0, failed = 0, running = 0;
    bool stop = false;
    std::map<std::string, int> why;
    void start(asio::any_io_executor ex, pool_set& set, int callers) {
        for (int i = 0; i < callers; ++i) {
            ++running;
            asio::co_spawn(ex, [this, &set]() -> awaitable<void> {
                while (!stop) {
                    if (auto ec = co_await set.transaction(ping)) {
                        ++failed;
                        ++why[ec.message()];
                        co_await sleep_for(5ms);
                    } else {
                        ++ok;
                    }
                }
                --running;
            }, asio::detached);
        }
    }
    std::string failures() const {
        std::string s;
        for (const auto& [k, v] : why) s += std::to_string(v) + " x " + k + "; ";
        return s;
    }
};

}  // namespace

TEST_SUITE("pool_set") {

TEST_CASE("pool_set: an empty endpoint list is a config_error naming it") {
    asio::io_context ioc;
    CHECK_THROWS_WITH_AS(pool_set(ioc.get_executor(), {}, echo::adapter{}), doctest::Contains("endpoints"), config_error);
}

TEST_CASE("priority: all to the first; stopped under load, the next one serves with no failed request; "
          "back (after its probe), the first again") {
    three_servers s;
    asio::io_context ioc;
    pool_set set(ioc.get_executor(), s.endpoints(), echo::adapter{}, pool_options{}, {selection::priority}, "mx");
    load l;
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return set.at(0).stats().idle == 10; });
        l.start(co_await asio::this_coro::executor, set, 20);
        co_await until([&] { return s.frames(0) > 200; });
        CHECK(s.frames(1) == 0);
        CHECK(s.frames(2) == 0);
        s.srv[0].stop();
        const auto second_before = s.frames(1);
        co_await until([&] { return s.frames(1) > second_before + 100; });  // the second took over
        CHECK(s.frames(2) == 0);                                           // the third is not needed
        s.srv[0].start();
        // The first endpoint comes back once its pool's probe succeeds (down_cooldown, 5 s by
        // default, at most), and priority sends everything there again.
        co_await until([&] { return !set.at(0).load().endpoint_down && set.at(0).load().idle + set.at(0).load().leased > 0; });
        const auto first_back = s.frames(0);
        co_await until([&] { return s.frames(0) > first_back + 100; });
        const auto second_now = s.frames(1);
        const auto first_now = s.frames(0);
        co_await until([&] { return s.frames(0) > first_now + 200; });
        CHECK(s.frames(1) == second_now);  // all of it went to the first
        l.stop = true;
        co_await until([&] { return l.running == 0; });
    }(), 30s);
    MESSAGE(l.ok << " requests; failed: " << l.failed << " " << l.failures());
    CHECK(l.failed == 0);
    const auto st = set.stats();
    CHECK(st[0].closes[static_cast<std::size_t>(close_reason::broken)] + st[0].connects_failed > 0);
}

TEST_CASE("round robin: the load is spread; any one of three stopped under load: no failed request, the others share it") {
    std::size_t k = 0;
    SUBCASE("the first stopped") { k = 0; }
    SUBCASE("the second stopped") { k = 1; }
    SUBCASE("the third stopped") { k = 2; }
    CAPTURE(k);
    three_servers s;
    asio::io_context ioc;
    pool_set set(ioc.get_executor(), s.endpoints(), echo::adapter{}, pool_options{}, {selection::round_robin}, "rr");
    load l;
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] {
            for (std::size_t i = 0; i < 3; ++i)
                if (set.at(i).stats().idle < 10) return false;
            return true;
        });
        l.start(co_await asio::this_coro::executor, set, 30);
        // Every endpoint serves (waited for, not timed: sanitizer builds are slow).
        co_await until([&] { return s.frames(0) > 50 && s.frames(1) > 50 && s.frames(2) > 50; });
        s.srv[k].stop();
        co_await until([&] { return set.at(k).load().endpoint_down; });
        const std::array<std::uint64_t, 3> at_down{s.frames(0), s.frames(1), s.frames(2)};
        // The other two share the load; the stopped one gets nothing.
        co_await until([&] {
            for (std::size_t i = 0; i < 3; ++i)
                if (i != k && s.frames(i) <= at_down[i] + 50) return false;
            return true;
        });
        CHECK(s.frames(k) == at_down[k]);
        l.stop = true;
        co_await until([&] { return l.running == 0; });
    }(), 30s);
    MESSAGE(l.ok << " requests; failed: " << l.failed << " " << l.failures());
    CHECK(l.failed == 0);
    // Per endpoint, in JSON and Prometheus: the stopped one is down, the others are not.
    const auto st = set.stats();
    REQUIRE(st.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(st[i].endpoint_down == (i == k));
    const std::string json = to_json(st);
    const std::string prom = to_prometheus(st);
    for (std::size_t i = 0; i < 3; ++i) {
        const std::string ep = test::loopback(s.srv[i].port()).to_string();
        CHECK_MESSAGE(json.find("\"endpoint\":\"" + ep + "\"") != std::string::npos, json);
        CHECK(prom.find("netpool_endpoint_down{pool=\"rr/" + ep + "\",endpoint=\"" + ep + "\"} " + (i == k ? "1" : "0")) !=
              std::string::npos);
    }
}

TEST_CASE("least loaded: a checkout goes where connections are free") {
    three_servers s;
    asio::io_context ioc;
    pool_options o;
    o.size = 2;
    o.max_overflow = 0;
    pool_set set(ioc.get_executor(), s.endpoints(), echo::adapter{}, o, {selection::least_loaded}, "ll");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] {
            for (std::size_t i = 0; i < 3; ++i)
                if (set.at(i).stats().idle < 2) return false;
            return true;
        });
        // Six checkouts over 3 x 2 connections: each endpoint ends with both of its own leased.
        std::vector<lease> held;
        for (int i = 0; i < 6; ++i) {
            auto [ec, l] = co_await set.checkout();
            REQUIRE_FALSE(ec);
            held.push_back(std::move(l));
        }
        for (std::size_t i = 0; i < 3; ++i) CHECK(set.at(i).load().leased == 2);
    }());
}

TEST_CASE("every endpoint down: the checkout fails fast with the first one's cause") {
    std::vector<endpoint> eps;
    for (int i = 0; i < 2; ++i) {
        test::server_thread srv;
        eps.push_back(test::loopback(srv.port()));
    }  // both gone: refused
    asio::io_context ioc;
    pool_options o;
    o.size = 1;
    o.max_overflow = 0;
    pool_set set(ioc.get_executor(), eps, echo::adapter{}, o, {}, "dead");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return set.at(0).load().endpoint_down && set.at(1).load().endpoint_down; });
        auto [ec, l] = co_await set.checkout();
        CHECK(ec == errc::endpoint_down_refused);
        CHECK(co_await set.transaction(ping) == errc::endpoint_down_refused);
    }(), 30s);
}

}  // TEST_SUITE
