// The pool end to end over real loopback TCP and TLS, against netpool's echo server.
#include "support.hpp"

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr auto as_tuple = asio::experimental::as_tuple(use_awaitable);

std::size_t idx(checkout_result r) { return static_cast<std::size_t>(r); }
std::size_t idx(close_reason r) { return static_cast<std::size_t>(r); }

endpoint tls(std::uint16_t port, std::string server_name = "localhost") {
    endpoint ep = test::loopback(port);
    ep.tls = tls_mode::implicit;
    ep.tls_opts.ca_file = test::certs().ca_cert;
    ep.tls_opts.server_name = std::move(server_name);
    return ep;
}

echo::server_options tls_server() {
    echo::server_options o;
    o.cert_file = test::certs().server_cert;
    o.key_file = test::certs().server_key;
    return o;
}

/// One request through the pool; a failed exchange discards the connection.
awaitable<std::error_code> echo_once(pool& p, std::string payload, std::chrono::milliseconds timeout = 5s) {
    auto [ec, l] = co_await p.checkout(timeout);
    if (ec) co_return ec;
    std::string reply;
    ec = co_await echo::adapter{}.request(*l, payload, reply);
    if (ec) {
        l.discard();
        co_return ec;
    }
    if (reply != payload) co_return errc::protocol_error;
    co_return std::error_code{};
}

/// Waits until `pred()` holds, polling on a short timer (bounded by the test's guard).
template <class Pred> awaitable<void> until(Pred pred) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (!pred()) {
        t.expires_after(5ms);
        co_await t.async_wait(use_awaitable);
    }
}

struct event_log {
    std::mutex mu;
    std::map<event_kind, int> counts;
    std::vector<std::error_code> errors;
    event_hook hook() {
        return [this](const event& e) {
            std::lock_guard lk(mu);
            ++counts[e.kind];
            if (e.error) errors.push_back(e.error);
        };
    }
    int count(event_kind k) {
        std::lock_guard lk(mu);
        return counts[k];
    }
};

/// Twenty requests through a pool of 2 + 2, checked in and out, then a clean close.
void round_trips(bool use_tls) {
    test::server_thread srv(use_tls ? tls_server() : echo::server_options{});
    asio::io_context ioc;
    {
        pool p(ioc.get_executor(), use_tls ? tls(srv.port()) : test::loopback(srv.port()), echo::adapter{}, test::quick_pool(2, 2),
               "basic");
        auto ec = test::run(ioc, [&]() -> awaitable<std::error_code> {
            for (int i = 0; i < 20; ++i)
                if (auto e = co_await echo_once(p, "hello " + std::to_string(i))) co_return e;
            co_return std::error_code{};
        }());
        CHECK_FALSE(ec);
        auto s = p.stats();
        CHECK(s.checkouts[idx(checkout_result::ok)] == 20);
        CHECK(s.leased == 0);
        CHECK(s.connects_ok >= 1);
        CHECK(s.protocol == "echo");
        p.close();
        test::run(ioc, until([&] { return p.stats().idle + p.stats().connecting + p.stats().busy == 0; }));
    }
    ioc.restart();
    ioc.run_for(100ms);
}

}  // namespace

TEST_SUITE("pool_echo") {

TEST_CASE_FIXTURE(test::no_fd_leak, "checkout, request and return over plain TCP") { round_trips(false); }

TEST_CASE_FIXTURE(test::no_fd_leak, "tls: checkout, request and return over TLS" * test::needs_tls()) {
    round_trips(true);
}

TEST_CASE("may_be_stale: false only for a connection opened for this lease") {
    test::server_thread srv;
    asio::io_context ioc;
    {
        auto o = test::quick_pool(1, 1);
        o.lazy = true;  // nothing opened before the first checkout
        pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "stale");
        const auto flags = test::run(ioc, [&]() -> awaitable<std::vector<int>> {
            std::vector<int> seen;
            {
                auto [ec, a] = co_await p.checkout(5s);  // opens the base connection for us
                if (ec) co_return seen;
                seen.push_back(a->may_be_stale());
                auto [ec2, b] = co_await p.checkout(5s);  // opens an overflow one for us
                if (ec2) co_return seen;
                seen.push_back(b->may_be_stale());
            }  // both back: the overflow one closes, the base one waits idle
            co_await until([&] { return p.stats().idle == 1 && p.stats().connecting == 0; });
            auto [ec, c] = co_await p.checkout(5s);  // the idle one: used before and waited
            if (ec) co_return seen;
            seen.push_back(c->may_be_stale());
            co_return seen;
        }());
        CHECK(flags == std::vector<int>{0, 0, 1});
        p.close();
        test::run(ioc, until([&] { return p.stats().idle + p.stats().connecting + p.stats().busy == 0; }));
    }
    {
        auto o = test::quick_pool(2, 0);  // not lazy: both base connections open at start
        pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "stale-eager");
        const auto flags = test::run(ioc, [&]() -> awaitable<std::vector<int>> {
            std::vector<int> seen;
            co_await until([&] { return p.stats().idle == 2; });
            auto [ec, a] = co_await p.checkout(5s);
            if (ec) co_return seen;
            seen.push_back(static_cast<int>(a->uses()));
            seen.push_back(a->may_be_stale());  // never leased, but it waited idle
            co_return seen;
        }());
        CHECK(flags == std::vector<int>{1, 1});
        p.close();
        test::run(ioc, until([&] { return p.stats().idle + p.stats().connecting + p.stats().busy == 0; }));
    }
    ioc.restart();
    ioc.run_for(100ms);
}

TEST_CASE("overflow grows under load and shrinks after") {
    test::server_thread srv;
    asio::io_context ioc;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(2, 6), "overflow");
    std::size_t peak = 0;
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 2; });
        std::vector<lease> held;
        for (int i = 0; i < 8; ++i) {
            auto [ec, l] = co_await p.checkout(5s);
            REQUIRE_FALSE(ec);
            held.push_back(std::move(l));
        }
        auto s = p.stats();
        peak = s.leased;
        CHECK(s.overflow == 6);
        // A ninth waits: capacity is size + max_overflow.
        auto [ec9, l9] = co_await p.checkout(50ms);
        CHECK(ec9 == errc::checkout_timeout);
        held.clear();  // overflow workers come back with nobody waiting: they close
        co_await until([&] { return p.stats().overflow == 0 && p.stats().busy == 0; });
        // The server sees the six closes a moment later, on its own thread.
        co_await until([&] { return srv.server().open_sessions() == 2; });
    }());
    CHECK(peak == 8);
    auto s = p.stats();
    CHECK(s.idle == 2);
    CHECK(s.closes[idx(close_reason::overflow)] == 6);
}

TEST_CASE("server killed and restarted under load: fail fast with the cause, then recover") {
    test::server_thread srv;
    asio::io_context ioc;
    event_log log;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(3, 0), "outage");
    p.set_event_hook(log.hook());
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 3; });
        CHECK_FALSE(co_await echo_once(p, "before"));
        srv.stop();
        // Requests fail (dead connections are discarded and replaced, reconnects are refused)
        // until the restart intensity is exceeded; then checkouts fail fast with the cause.
        std::error_code last;
        for (int i = 0; i < 200 && last != condition::endpoint_down; ++i) {
            last = co_await echo_once(p, "during", 500ms);
            if (last == errc::checkout_timeout) continue;
        }
        CHECK(last == condition::endpoint_down);
        CHECK(last == errc::endpoint_down_refused);
        CHECK(p.last_failure() == asio::error::connection_refused);  // asio 1.22's own category
        CHECK(p.stats().endpoint_down);
        // Fast: no waiting while down.
        const auto t0 = std::chrono::steady_clock::now();
        auto [ec, l] = co_await p.checkout(5s);
        CHECK(ec == condition::endpoint_down);
        CHECK(std::chrono::steady_clock::now() - t0 < 1s);

        srv.start();
        // A probe after the cool-down brings it back.
        co_await until([&] { return !p.stats().endpoint_down && p.stats().idle > 0; });
        for (int i = 0; i < 10; ++i) CHECK_FALSE(co_await echo_once(p, "after"));
    }(), 20s);
    CHECK(log.count(event_kind::endpoint_down) >= 1);
    CHECK(log.count(event_kind::endpoint_up) >= 1);
    CHECK(log.count(event_kind::connect_failed) >= 5);
}

TEST_CASE("a server that accepts and never answers: handshake timeouts, checkouts time out, no hang") {
    echo::server_options so;
    so.mode = echo::fault_mode::silent;
    test::server_thread srv(so);
    asio::io_context ioc;
    auto o = test::quick_pool(2, 0);
    o.handshake_timeout = 100ms;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "silent");
    test::run(ioc, [&]() -> awaitable<void> {
        auto [ec, l] = co_await p.checkout(300ms);
        CHECK((ec == errc::checkout_timeout || ec == condition::endpoint_down));
        co_await until([&] { return p.stats().connects_failed >= 2; });
    }());
    CHECK(p.last_failure() == errc::handshake_timeout);
}

TEST_CASE("refused connections put the endpoint down with the cause") {
    std::uint16_t port;
    {
        asio::io_context tmp;
        asio::ip::tcp::acceptor a(tmp, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port();
    }
    asio::io_context ioc;
    auto o = test::quick_pool(1, 0);
    o.max_restarts = 2;
    pool p(ioc.get_executor(), test::loopback(port), echo::adapter{}, o, "refused");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().endpoint_down; });
        auto [ec, l] = co_await p.checkout(1s);
        CHECK(ec == errc::endpoint_down_refused);
        CHECK(ec.message().find("refused") != std::string::npos);
    }());
}

TEST_CASE("tls: a certificate for the wrong host name fails verification" * test::needs_tls()) {
    echo::server_options so;
    so.cert_file = test::certs().wrong_name_cert;
    so.key_file = test::certs().wrong_name_key;
    test::server_thread srv(so);
    asio::io_context ioc;
    auto o = test::quick_pool(1, 0);
    o.max_restarts = 1;
    pool p(ioc.get_executor(), tls(srv.port()), echo::adapter{}, o, "wrong-name");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().endpoint_down; });
        auto [ec, l] = co_await p.checkout(1s);
        CHECK(ec == errc::endpoint_down_tls);
    }());
    CHECK(p.last_failure() == errc::tls_verify_failed);
}

TEST_CASE("a frame over the maximum is a clear error and the connection is replaced") {
    test::server_thread srv;
    asio::io_context ioc;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(1, 0), "frame");
    test::run(ioc, [&]() -> awaitable<void> {
        echo::adapter small(16);
        auto [ec, l] = co_await p.checkout(2s);
        REQUIRE_FALSE(ec);
        std::string reply;
        auto e = co_await small.request(*l, std::string(17, 'x'), reply);
        CHECK(e == errc::frame_too_large);
        CHECK(reply.capacity() < 17);
        l.discard();
        l.release();
        co_await until([&] { return p.stats().idle == 1; });
        CHECK_FALSE(co_await echo_once(p, "fine"));
    }());
    CHECK(p.stats().closes[idx(close_reason::broken)] == 1);
}

TEST_CASE("the server closing mid-frame: error, worker replaced") {
    test::server_thread srv;
    asio::io_context ioc;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(1, 0), "midframe");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 1; });
        srv.server().set_mode(echo::fault_mode::close_mid_frame);
        auto e = co_await echo_once(p, "a payload long enough to be cut in half");
        CHECK(e == errc::connection_closed);
        srv.server().set_mode(echo::fault_mode::normal);
        co_await until([&] { return p.stats().idle == 1; });
        CHECK_FALSE(co_await echo_once(p, "again"));
    }());
}

TEST_CASE("10,000 concurrent checkouts over a pool of 10 + 90") {
    test::server_thread srv;
    asio::io_context ioc;
    auto o = test::quick_pool(10, 90);
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "10k");
    constexpr int n = 10000;
    int ok = 0, failed = 0;
    std::map<std::string, int> why;
    test::run(ioc, [&]() -> awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        int done = 0;
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(ex, echo_once(p, "op " + std::to_string(i), 60s), [&](std::exception_ptr e, std::error_code ec) {
                ++done;
                if (e || ec) {
                    ++failed;
                    ++why[e ? "exception" : ec.message()];
                } else {
                    ++ok;
                }
            });
        }
        co_await until([&] { return done == n; });
    }(), 120s);
    for (auto& [m, c] : why) MESSAGE(m << ": " << c);
    CHECK(ok == n);
    CHECK(failed == 0);
    auto s = p.stats();
    CHECK(s.leased == 0);
    CHECK(s.waiters == 0);
    CHECK(s.checkouts[idx(checkout_result::ok)] == static_cast<std::uint64_t>(n));
    CHECK(s.idle + s.busy + s.overflow >= 10);
    CHECK(s.connects_ok <= 100 + s.closes[idx(close_reason::overflow)]);
}

TEST_CASE("cancellation at each stage of a checkout never leaks a worker") {
    test::server_thread srv;
    asio::io_context ioc;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(1, 0), "cancel");
    using namespace asio::experimental::awaitable_operators;
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 1; });
        auto [ec0, held] = co_await p.checkout(1s);
        REQUIRE_FALSE(ec0);

        // 1. Cancelled while queued, by a signal.
        {
            asio::cancellation_signal sig;
            std::optional<std::error_code> got;
            p.async_checkout(5s, asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, lease) { got = ec; }));
            asio::steady_timer t(ioc);
            t.expires_after(10ms);
            co_await t.async_wait(use_awaitable);
            CHECK(p.stats().waiters == 1);
            sig.emit(asio::cancellation_type::terminal);
            co_await until([&] { return got.has_value(); });
            CHECK(*got == errc::cancelled);
            CHECK(p.stats().waiters == 0);
        }
        // 2. Cancelled by a timer racing it (awaitable operators).
        {
            asio::steady_timer t(ioc);
            t.expires_after(20ms);
            auto r = co_await (p.async_checkout(5s, as_tuple) || t.async_wait(use_awaitable));
            CHECK(r.index() == 1);
            CHECK(p.stats().waiters == 0);
        }
        // 3. Cancelled after the handoff but before the completion ran: the lease arrives
        //    anyway and goes back when dropped.
        {
            asio::cancellation_signal sig;
            std::optional<std::error_code> got;
            p.async_checkout(5s, asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, lease l) {
                got = ec;
                CHECK(static_cast<bool>(l));
            }));
            co_await until([&] { return p.stats().waiters == 1; });
            held.release();            // direct handoff; completion posted
            sig.emit(asio::cancellation_type::terminal);  // too late: no effect
            co_await until([&] { return got.has_value(); });
            CHECK_FALSE(*got);
        }
        co_await until([&] { return p.stats().idle == 1; });
        auto s = p.stats();
        CHECK(s.leased == 0);
        CHECK(s.waiters == 0);
        CHECK(s.checkouts[idx(checkout_result::cancelled)] == 2);
    }());
}

TEST_CASE("cancelled while the worker is still connecting") {
    echo::server_options so;
    so.mode = echo::fault_mode::silent;  // connects, never greets: the handshake hangs
    test::server_thread srv(so);
    asio::io_context ioc;
    auto o = test::quick_pool(1, 0);
    o.lazy = true;
    o.handshake_timeout = 300ms;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "cancel-connecting");
    test::run(ioc, [&]() -> awaitable<void> {
        asio::cancellation_signal sig;
        std::optional<std::error_code> got;
        p.async_checkout(5s, asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, lease) { got = ec; }));
        co_await until([&] { return p.stats().connecting == 1; });
        sig.emit(asio::cancellation_type::terminal);
        co_await until([&] { return got.has_value(); });
        CHECK(*got == errc::cancelled);
        srv.server().set_mode(echo::fault_mode::normal);
        co_await until([&] { return p.stats().idle == 1; });  // the worker carried on
        auto s = p.stats();
        CHECK(s.waiters == 0);
        CHECK(s.leased == 0);
    }());
}

TEST_CASE("try_checkout, blocking checkout from a plain thread, and transaction") {
    test::server_thread srv;
    test::io_threads io(1);
    pool p(io.executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(1, 0), "apis");
    std::error_code ec;
    // Blocking from this (plain) thread while another runs the io_context.
    lease l = p.checkout_blocking(5s, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(l);
    // Nothing free now: try fails at once.
    std::error_code ec2;
    lease none = p.try_checkout(ec2);
    CHECK_FALSE(none);
    CHECK(ec2 == errc::pool_exhausted);
    // A blocking checkout that times out.
    lease t = p.checkout_blocking(50ms, ec2);
    CHECK(ec2 == errc::checkout_timeout);
    l.release();
    lease again = p.try_checkout(ec2);
    CHECK(again);
    again.release();

    // transaction: returns the connection on every path, exceptions included.
    auto r = test::run_on(io.executor(), p.transaction([](lease& tl) -> awaitable<std::error_code> {
        std::string reply;
        co_return co_await echo::adapter{}.request(*tl, "tx", reply);
    }));
    CHECK_FALSE(r);
    CHECK_THROWS_AS(test::run_on(io.executor(), p.transaction([](lease&) -> awaitable<std::error_code> {
                        throw std::runtime_error("user code failed");
                        co_return std::error_code{};
                    })),
                    std::runtime_error);
    auto s = p.stats();
    CHECK(s.leased == 0);
    CHECK(s.closes[idx(close_reason::broken)] <= 1);  // the throwing transaction's connection was discarded
    p.close();
}

TEST_CASE("drain lets leases finish, then closes; close() is immediate") {
    test::server_thread srv;
    asio::io_context ioc;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(2, 0), "drain");
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 2; });
        auto [ec, l] = co_await p.checkout(1s);
        REQUIRE_FALSE(ec);
        std::optional<std::error_code> drained;
        p.async_drain(5s, [&](std::error_code e) { drained = e; });
        auto [ec2, l2] = co_await p.checkout(1s);
        CHECK(ec2 == errc::pool_closed);
        // The lease still works during the drain.
        std::string reply;
        CHECK_FALSE(co_await echo::adapter{}.request(*l, "still", reply));
        CHECK_FALSE(drained);
        l.release();
        co_await until([&] { return drained.has_value(); });
        CHECK_FALSE(*drained);
        CHECK(p.stats().closes[idx(close_reason::drain)] == 2);
    }());
    CHECK(srv.server().open_sessions() == 0);
}

namespace {
/// An adapter whose handshake throws every other time: the exception must stay inside
/// its worker.
struct throwing_adapter {
    std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
    std::string_view name() const { return "throwing-echo"; }
    awaitable<std::error_code> handshake(connection& c) {
        if ((*calls)++ % 2 == 0) throw std::runtime_error("adapter bug");
        co_return co_await echo::adapter{}.handshake(c);
    }
    awaitable<std::error_code> health_check(connection& c) { return echo::adapter{}.health_check(c); }
    awaitable<std::error_code> reset(connection& c) { return echo::adapter{}.reset(c); }
    awaitable<void> close(connection& c) { return echo::adapter{}.close(c); }
};
}  // namespace

TEST_CASE("an exception thrown by an adapter is contained to its worker") {
    test::server_thread srv;
    asio::io_context ioc;
    event_log log;
    pool p(ioc.get_executor(), test::loopback(srv.port()), throwing_adapter{}, test::quick_pool(2, 0), "throwing");
    p.set_event_hook(log.hook());
    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return p.stats().idle == 2; });
        CHECK_FALSE(co_await echo_once(p, "works"));
    }());
    CHECK(p.stats().adapter_exceptions >= 1);
    CHECK(log.count(event_kind::adapter_exception) >= 1);
}

TEST_CASE("dns_refresh: a host name resolved once for many reconnects, again after a failed connect; 0 resolves at each") {
    test::server_thread srv;
    asio::io_context ioc;
    endpoint ep = test::loopback(srv.port());
    ep.host = "localhost";  // a name, looked up (an IP literal never is)
    auto o = test::quick_pool(1, 0);
    o.max_uses = 1;  // every lease ends its connection: each checkout reconnects
    o.dns_refresh = std::chrono::hours(1);
    pool p(ioc.get_executor(), ep, echo::adapter{}, o, "dns-cached");
    const auto before = dns_lookups();
    test::run(ioc, [&]() -> awaitable<void> {
        for (int i = 0; i < 5; ++i) CHECK_FALSE(co_await echo_once(p, "x"));
    }());
    CHECK(srv.server().connections_accepted() >= 5);
    CHECK(dns_lookups() - before == 1);
    // The server goes away: a connect fails on the cached addresses, which are dropped; once
    // it is back, a new lookup finds it.
    srv.stop();
    const auto stopped = dns_lookups();
    test::run(ioc, until([&] { return p.stats().connects_failed >= 1; }));
    srv.start();
    test::run(ioc, [&]() -> awaitable<void> { CHECK_FALSE(co_await echo_once(p, "back")); }());
    CHECK(dns_lookups() > stopped);
    const auto cached_again = dns_lookups();
    test::run(ioc, [&]() -> awaitable<void> {
        for (int i = 0; i < 3; ++i) CHECK_FALSE(co_await echo_once(p, "y"));
    }());
    CHECK(dns_lookups() == cached_again);

    // The default: a lookup at every connect.
    auto plain = o;
    plain.dns_refresh = std::chrono::milliseconds(0);
    pool q(ioc.get_executor(), ep, echo::adapter{}, plain, "dns-every-connect");
    const auto before_q = dns_lookups();
    test::run(ioc, [&]() -> awaitable<void> {
        for (int i = 0; i < 3; ++i) CHECK_FALSE(co_await echo_once(q, "z"));
    }());
    CHECK(dns_lookups() - before_q >= 3);
}

TEST_CASE("max_uses retires connections between leases (max_lifetime: test_pool_clock.cpp)") {
    test::server_thread srv;
    asio::io_context ioc;
    auto o = test::quick_pool(1, 0);
    o.max_uses = 3;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, o, "uses");
    test::run(ioc, [&]() -> awaitable<void> {
        for (int i = 0; i < 9; ++i) CHECK_FALSE(co_await echo_once(p, "x"));
    }());
    CHECK(p.stats().closes[idx(close_reason::max_uses)] >= 2);
    CHECK(srv.server().connections_accepted() >= 3);
}

TEST_CASE("threads: one pool from a multi-threaded io_context and plain threads at once") {
    test::server_thread srv;
    test::io_threads io(2);
    auto o = test::quick_pool(4, 4);
    pool p(io.executor(), test::loopback(srv.port()), echo::adapter{}, o, "threads");
    std::atomic<int> ok{0}, failed{0};
    // Coroutines on the io threads.
    auto coro_load = [&]() -> awaitable<void> {
        for (int i = 0; i < 200; ++i) {
            if (co_await echo_once(p, "c" + std::to_string(i), 10s)) ++failed; else ++ok;
        }
    };
    std::vector<std::thread> plain_threads;
    for (int t = 0; t < 3; ++t) {
        plain_threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                std::error_code ec;
                lease l = p.checkout_blocking(10s, ec);
                if (ec) { ++failed; continue; }
                if (i % 10 == 0) l.discard();
                ++ok;
            }
        });
    }
    std::vector<std::future<void>> futs;
    for (int c = 0; c < 4; ++c) futs.push_back(std::async(std::launch::async, [&] { test::run_on(io.executor(), coro_load(), 60s); }));
    for (auto& f : futs) f.get();
    for (auto& t : plain_threads) t.join();
    CHECK(ok == 4 * 200 + 3 * 200);
    CHECK(failed == 0);
    auto s = p.stats();
    CHECK(s.leased == 0);
    CHECK(s.waiters == 0);
    p.close();
}

TEST_CASE("registry: identities never share a pool; global cap; stats for all") {
    test::server_thread srv;
    asio::io_context ioc;
    registry_options ro;
    ro.global_cap = 4;
    registry reg(ioc.get_executor(), ro);
    auto make = [] { return any_adapter(echo::adapter{}); };
    auto o = test::quick_pool(1, 3);
    pool& alice = *reg.pool_for(test::loopback(srv.port()), credentials{"alice", "secret-a"}, make, o);
    pool& alice2 = *reg.pool_for(test::loopback(srv.port()), credentials{"alice", "secret-a"}, make, o);
    pool& alice_new_pw = *reg.pool_for(test::loopback(srv.port()), credentials{"alice", "secret-b"}, make, o);
    pool& bob = *reg.pool_for(test::loopback(srv.port()), credentials{"bob", "secret-a"}, make, o);
    CHECK(&alice == &alice2);
    CHECK(&alice != &alice_new_pw);
    CHECK(&alice != &bob);
    CHECK(alice.name().find("secret") == std::string::npos);
    CHECK(reg.size() == 3);
    pool& named = reg.start_pool("named", test::loopback(srv.port()), echo::adapter{}, test::quick_pool(0, 2));
    CHECK(reg.find("named") == &named);
    CHECK_THROWS_AS(reg.start_pool("named", test::loopback(srv.port()), echo::adapter{}, test::quick_pool(1, 0)), std::invalid_argument);

    test::run(ioc, [&]() -> awaitable<void> {
        co_await until([&] { return reg.permits_in_use() == 3; });  // three base workers
        // Alice's pool wants more than the cap allows: it gets what is left, never more.
        std::vector<lease> held;
        for (int i = 0; i < 4; ++i) {
            auto [ec, l] = co_await alice.checkout(200ms);
            if (!ec) held.push_back(std::move(l));
        }
        CHECK(reg.permits_in_use() <= 4);
        CHECK(held.size() >= 1);
        CHECK(held.size() <= 2);
        held.clear();
    }());
    auto all = reg.stats();
    CHECK(all.size() == 4);
    CHECK(reg.stop_pool("named"));
    CHECK_FALSE(reg.stop_pool("named"));
    CHECK(reg.find("named") == nullptr);
}

TEST_CASE("registry: per-key limit clamps a keyed pool; idle keyed pools are retired") {
    test::server_thread srv;
    asio::io_context ioc;
    registry_options ro;
    ro.per_key_limit = 3;
    ro.retire_idle_after = 50ms;
    registry reg(ioc.get_executor(), ro);
    auto make = [] { return any_adapter(echo::adapter{}); };
    auto handle = reg.pool_for(test::loopback(srv.port()), credentials{"carol", "pw"}, make, test::quick_pool(2, 10));
    pool& p = *handle;
    auto s = p.stats();
    CHECK(s.size == 2);
    CHECK(s.max_overflow == 1);  // 2 + 10 clamped to 3
    test::run(ioc, [&]() -> awaitable<void> {
        std::vector<lease> held;
        for (int i = 0; i < 3; ++i) {
            auto [ec, l] = co_await p.checkout(1s);
            REQUIRE_FALSE(ec);
            held.push_back(std::move(l));
        }
        auto [ec4, l4] = co_await p.checkout(50ms);
        CHECK(ec4 == errc::checkout_timeout);  // never more than the per-key limit
        // A pool with leases out is not retired however long it waits.
        CHECK(reg.retire_idle() == 0);
        held.clear();
        // Idle now: the first sweep notes it, a later one past retire_idle_after retires it.
        co_await until([&] { return reg.size() == 0; });
    }());
    CHECK(reg.size() == 0);
}

TEST_CASE("stats as JSON and Prometheus text from a live pool") {
    test::server_thread srv;
    asio::io_context ioc;
    pool p(ioc.get_executor(), test::loopback(srv.port()), echo::adapter{}, test::quick_pool(1, 1), "metrics");
    test::run(ioc, [&]() -> awaitable<void> { CHECK_FALSE(co_await echo_once(p, "m")); }());
    auto s = p.stats();
    auto j = to_json(s);
    CHECK(j.find("\"metrics\"") != std::string::npos);
    auto prom = to_prometheus({s});
    CHECK(prom.find("netpool_checkouts_total{pool=\"metrics\",endpoint=\"" + p.remote().to_string() + "\",result=\"ok\"} 1") !=
          std::string::npos);
}

#if !NETPOOL_HAS_TLS
TEST_CASE("without TLS: pools refuse TLS endpoints with a config_error that says why") {
    MESSAGE("the test cases named 'tls: ...' are skipped (doctest counts them as skipped): " NETPOOL_NO_TLS_REASON);
    test::server_thread srv;
    asio::io_context ioc;
    registry reg(ioc.get_executor());
    for (auto mode : {tls_mode::implicit, tls_mode::starttls}) {
        CAPTURE(to_string(mode));
        endpoint ep = test::loopback(srv.port());
        ep.tls = mode;
        test::expect_no_tls_error([&] { pool p(ioc.get_executor(), ep, echo::adapter{}, test::quick_pool(1, 0)); },
                                  "endpoint.tls");
        test::expect_no_tls_error(
            [&] { (void)reg.pool_for(ep, credentials{"u", "s"}, [] { return any_adapter(echo::adapter{}); }, test::quick_pool(1, 0)); },
            "endpoint.tls");
        test::expect_no_tls_error([&] { (void)reg.start_pool("tls", ep, echo::adapter{}, test::quick_pool(1, 0)); },
                                  "endpoint.tls");
    }
    CHECK(reg.size() == 0);
    ioc.run_for(50ms);
    CHECK(srv.server().connections_accepted() == 0);
}
#endif

}  // TEST_SUITE
