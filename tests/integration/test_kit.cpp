// The adapter kit on real sockets (a loopback TCP pair whose server side the test writes
// by hand), and keyed_client over the registry with netpool's echo server: pipelined replies
// kept between reads, limits, timeouts, the peer going away, one completion signature on
// the stream, and keyed pools held across their retirement (issue 11).
#include "support.hpp"

#include <netpool/echo/adapter.hpp>
#include <netpool/keyed_client.hpp>
#include <netpool/kit.hpp>
#include <netpool/netpool.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <string>
#include <thread>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

/// A connection whose peer is a socket the test holds: what the server "says" is written by
/// the test, byte for byte.
struct wired {
    asio::io_context io;
    endpoint ep;
    asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
    asio::ip::tcp::socket server{io};
    connection conn{io.get_executor(), ep, nullptr, 1};

    wired() {
        ep.port = acceptor.local_endpoint().port();
        conn.io().socket().connect(acceptor.local_endpoint());
        acceptor.accept(server);
    }
    void say(std::string_view bytes) { asio::write(server, asio::buffer(bytes)); }
};

template <class T> T run(wired& w, awaitable<T> aw) { return test::run(w.io, std::move(aw)); }

}  // namespace

TEST_SUITE("kit") {

TEST_CASE("session: pipelined replies arriving together are read one by one; the rest stays buffered") {
    wired w;
    kit::session s;
    w.say("+PONG\r\n:42\r\n$3\r\nfoo\r\n");
    std::string line;
    CHECK_FALSE(run(w, s.read_line(w.conn, line, 64, 1s)));
    CHECK(line == "+PONG");
    CHECK(s.buffered() == ":42\r\n$3\r\nfoo\r\n");
    CHECK_FALSE(run(w, s.read_line(w.conn, line, 64, 1s)));
    CHECK(line == ":42");
    CHECK(s.bytes_waiting(w.conn));
    CHECK_FALSE(run(w, s.read_line(w.conn, line, 64, 1s)));
    CHECK_FALSE(run(w, s.read_line(w.conn, line, 64, 1s)));
    CHECK(line == "foo");
    CHECK(s.buffered().empty());
    CHECK_FALSE(s.bytes_waiting(w.conn));
    CHECK_FALSE(s.broken());
    // A byte the server sends unasked is seen in the socket, before anyone reads it.
    w.say("x");
    bool seen = false;
    for (int i = 0; i < 200 && !seen; ++i) {
        seen = s.bytes_waiting(w.conn);
        if (!seen) std::this_thread::sleep_for(1ms);
    }
    CHECK(seen);
}

TEST_CASE("session: exchange writes the request and reads its reply under one timeout") {
    wired w;
    kit::session s;
    kit::line_parser p(64);
    std::string reply;
    auto server_side = [&]() -> awaitable<void> {
        std::array<char, 64> buf{};
        auto [ec, n] = co_await w.server.async_read_some(asio::buffer(buf), kit::use_tuple);
        REQUIRE_FALSE(ec);
        CHECK(std::string(buf.data(), n) == "PING\r\n");
        co_await asio::async_write(w.server, asio::buffer(std::string_view("+PONG\r\n")), kit::use_tuple);
    };
    asio::co_spawn(w.io, server_side(), asio::detached);
    CHECK_FALSE(run(w, s.exchange(w.conn, "PING\r\n", p, reply, 1s)));
    CHECK(reply == "+PONG");
    // Gather writes: the kit takes any buffer sequence.
    const std::array<asio::const_buffer, 2> parts{asio::buffer(std::string_view("GET ")), asio::buffer(std::string_view("k\r\n"))};
    CHECK_FALSE(run(w, s.write_all(w.conn, parts, 1s)));
    std::array<char, 7> got{};
    const std::size_t n = asio::read(w.server, asio::buffer(got));
    CHECK(std::string(got.data(), n) == "GET k\r\n");
}

TEST_CASE("session: a reply over max_reply is frame_too_large, even when the parser would take it") {
    wired w;
    kit::session s(/*max_reply=*/100);
    w.say(std::string(300, 'a') + "\r\n");
    std::string line;
    CHECK(run(w, s.read_line(w.conn, line, 100000, 1s)) == errc::frame_too_large);
    CHECK(s.broken());
}

TEST_CASE("session: the parser's own error ends the read, and the session is broken") {
    wired w;
    kit::session s;
    w.say(std::string(80, 'a'));  // no end of line yet, but already over the line limit
    std::string line;
    CHECK(run(w, s.read_line(w.conn, line, 64, 1s)) == errc::frame_too_large);
    CHECK(s.broken());
}

TEST_CASE("session: silence is operation_timeout; the peer closing is connection_closed") {
    {
        wired w;
        kit::session s;
        std::string line;
        CHECK(run(w, s.read_line(w.conn, line, 64, 50ms)) == errc::operation_timeout);
        CHECK(s.broken());
    }
    {
        wired w;
        kit::session s;
        w.say("+partial");  // half a reply, then the server goes away
        w.server.close();
        std::string line;
        CHECK(run(w, s.read_line(w.conn, line, 64, 1s)) == errc::connection_closed);
        CHECK(s.broken());
    }
}

TEST_CASE("stream: async_read_some has one completion signature, so deferred works on it") {
    wired w;
    w.say("hello");
    std::array<char, 16> buf{};
    auto op = w.conn.io().async_read_some(asio::buffer(buf), asio::experimental::deferred);
    auto [ec, n] = run(w, [&]() -> awaitable<std::tuple<std::error_code, std::size_t>> {
        co_return co_await std::move(op)(kit::use_tuple);
    }());
    CHECK_FALSE(ec);
    CHECK(std::string(buf.data(), n) == "hello");
}

TEST_CASE("keyed_client: one pool per key, the pool's own adapter, and another type's pool gets its own") {
    test::server_thread srv;
    asio::io_context io;
    registry reg(io.get_executor());
    keyed_client<echo::adapter> kc(reg);
    endpoint ep;
    ep.port = srv.port();
    pool_options po;
    po.size = 1;
    int made = 0;
    auto make = [&] {
        ++made;
        return echo::adapter(1234);
    };
    const auto a = kc.acquire(ep, credentials{"u", "pw"}, po, make);
    const auto b = kc.acquire(ep, credentials{"u", "pw"}, po, make);
    CHECK(&a.pool() == &b.pool());
    CHECK(made == 1);
    CHECK(a.adapter_is_pools());
    CHECK(&a.adapter() == a.pool().adapter_as<echo::adapter>());
    CHECK(a.adapter().max_frame() == 1234);
    const auto other = kc.acquire(ep, credentials{"v", "pw"}, po, make);
    CHECK(&other.pool() != &a.pool());
    CHECK(reg.size() == 2);
    CHECK(a.pool().adapter_as<int>() == nullptr);
    a.pool().close();
    other.pool().close();
}

TEST_CASE("keyed_client: a caller suspended on a pool the registry retires, and handles that outlive the registry") {
    test::server_thread srv;
    asio::io_context io;
    std::optional<registry> reg(std::in_place, io.get_executor());
    keyed_client<echo::adapter> kc(*reg);
    endpoint ep;
    ep.port = srv.port();
    pool_options po;
    po.size = 1;
    po.max_overflow = 0;
    std::optional<keyed_client<echo::adapter>::handle> kept;
    test::run(io, [&]() -> awaitable<void> {
        auto h = kc.acquire(ep, credentials{"u", "pw"}, po, [] { return echo::adapter{}; });
        auto [ec, holder] = co_await h.checkout();  // the only connection
        REQUIRE_FALSE(ec);
        // Another caller waits for it, suspended in the pool...
        bool waiter_done = false;
        std::error_code waiter_ec;
        asio::co_spawn(io, [&, h]() -> awaitable<void> {
            auto [e, l] = co_await h.checkout();
            waiter_ec = e;
            waiter_done = true;
        }, asio::detached);
        asio::steady_timer t(io, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        CHECK_FALSE(waiter_done);
        // ...while the registry retires every keyed pool.
        CHECK(reg->retire_all() == 1);
        while (!waiter_done) {
            t.expires_after(2ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        CHECK(waiter_ec == errc::pool_closed);
        // The lease still out works, with the adapter the handle keeps alive.
        std::string reply;
        CHECK_FALSE(co_await h.adapter().request(*holder, "after retirement", reply));
        CHECK(reply == "after retirement");
        holder.release();
        kept = h;
    }());
    test::run(io, [&]() -> awaitable<void> {  // the drain ends once the lease is back
        asio::steady_timer t(io, 1ms);
        while (reg->size() != 0) {
            t.expires_after(2ms);
            co_await t.async_wait(asio::use_awaitable);
        }
    }());
    reg.reset();  // the registry goes; the handle still answers
    CHECK(kept->adapter().name() == "echo");
    CHECK(kept->pool().stats().draining);
    auto [ec, l] = test::run(io, kept->checkout());
    CHECK(ec == errc::pool_closed);
    kept.reset();
}

TEST_CASE("run_blocking: the result from another thread's executor; refused on that executor's own thread") {
    test::io_threads threads(1);
    auto answer = [](int x) -> awaitable<int> { co_return x * 2; };
    CHECK(run_blocking(threads.executor(), answer(21), "test") == 42);
    auto thrower = []() -> awaitable<int> {
        throw std::runtime_error("from the coroutine");
        co_return 0;
    };
    CHECK_THROWS_WITH_AS(run_blocking(threads.executor(), thrower(), "test"), "from the coroutine", std::runtime_error);
    std::string refused;
    test::run_on(threads.executor(), [&]() -> awaitable<void> {
        try {
            (void)run_blocking(co_await asio::this_coro::executor, answer(1), "netpool::test::call");
        } catch (const std::logic_error& e) {
            refused = e.what();
        }
    }());
    CHECK(refused.find("netpool::test::call called from a thread running") == 0);
}

}  // TEST_SUITE
