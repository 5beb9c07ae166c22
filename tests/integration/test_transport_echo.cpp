// Transport and echo adapter against the real echo server on loopback, without a pool.
#include "support.hpp"

#include <netpool/connection.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>
#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/transport.hpp>

#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <string>

using namespace std::chrono_literals;
using netpool::errc;
namespace echo = netpool::echo;
namespace test = netpool::test;

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto generous = std::chrono::milliseconds(5000);
/// Long enough for loopback, short enough that the timeout tests are quick.
constexpr auto short_timeout = std::chrono::milliseconds(200);

echo::server_options tls_server_options(bool wrong_name = false) {
    echo::server_options o;
    const auto& c = test::certs();
    o.cert_file = wrong_name ? c.wrong_name_cert : c.server_cert;
    o.key_file = wrong_name ? c.wrong_name_key : c.server_key;
    return o;
}

netpool::endpoint tls_endpoint(std::uint16_t port, std::string host = "127.0.0.1") {
    netpool::endpoint ep;
    ep.host = std::move(host);
    ep.port = port;
    ep.tls = netpool::tls_mode::implicit;
    ep.tls_opts.ca_file = test::certs().ca_cert;
    return ep;
}

/// One client connection on its own io_context, driven from the test thread.
struct client {
    explicit client(const netpool::endpoint& e)
        : ep(e), tls_ctx(e.tls == netpool::tls_mode::none ? nullptr : netpool::make_client_tls_context(e.tls_opts)),
          conn(ioc.get_executor(), ep, tls_ctx.get(), 1) {}

    std::error_code connect(std::chrono::milliseconds connect_timeout = generous,
                            std::chrono::milliseconds handshake_timeout = generous) {
        return test::run(ioc, netpool::connect_transport(conn, connect_timeout, handshake_timeout));
    }
    /// connect_transport, then the echo greeting.
    std::error_code open(const echo::adapter& a = echo::adapter()) {
        if (auto ec = connect()) return ec;
        return test::run(ioc, a.handshake(conn));
    }
    std::error_code request(const echo::adapter& a, std::string_view payload, std::string& reply) {
        return test::run(ioc, a.request(conn, payload, reply));
    }

    asio::io_context ioc;  // first: destroyed last, after everything that uses it
    netpool::endpoint ep;
    std::shared_ptr<asio::ssl::context> tls_ctx;
    netpool::connection conn;
};

/// A caller's timeout of 0 to 3 ms around connect_transport and then a request, 40 times
/// against the server at `port`: limits that land before, inside and after the lookup, the
/// connect and (use_tls) the TLS handshake. Whichever it is, the outcome must be clean.
void timeout_sweep(std::uint16_t port, bool use_tls) {
    const echo::adapter a;
    int finished = 0;
    int cut_short = 0;
    for (int i = 0; i < 40; ++i) {
        // Host names take the resolver path, IP literals skip it.
        const std::string host = i % 2 == 1 ? "localhost" : "127.0.0.1";
        auto ep = use_tls ? tls_endpoint(port, host) : test::loopback(port);
        ep.host = host;
        client cl(ep);
        const auto limit = std::chrono::milliseconds((i / 2) % 4);
        const auto ec = test::run(cl.ioc, netpool::with_timeout(netpool::connect_transport(cl.conn, generous, generous),
                                                                limit, errc::operation_timeout));
        if (ec) {
            CHECK(ec == errc::operation_timeout);
            CHECK_FALSE(cl.conn.io().is_open());
            ++cut_short;
            continue;
        }
        ++finished;
        REQUIRE(test::run(cl.ioc, a.handshake(cl.conn)) == std::error_code{});
        std::string reply;
        const auto rec = test::run(cl.ioc, netpool::with_timeout(a.request(cl.conn, "tick", reply), limit,
                                                                 errc::operation_timeout));
        if (rec) CHECK(rec == errc::operation_timeout);  // the connection is then unusable; dropped below
        else CHECK(reply == "tick");
    }
    MESSAGE(std::string(use_tls ? "tls: " : "plain: ") << finished << " connects finished, " << cut_short << " were cut short");
}

}  // namespace

TEST_SUITE("transport_echo") {

TEST_CASE_FIXTURE(test::no_fd_leak, "plain: request, reply, ping, large and empty frames") {
    test::server_thread srv;
    client cl(test::loopback(srv.port()));
    const echo::adapter a;
    REQUIRE(cl.open(a) == std::error_code{});
    CHECK_FALSE(cl.conn.io().is_tls());

    std::string reply;
    CHECK(cl.request(a, "hello", reply) == std::error_code{});
    CHECK(reply == "hello");
    CHECK(cl.request(a, "", reply) == std::error_code{});
    CHECK(reply.empty());
    const std::string big(300 * 1024, 'z');
    CHECK(cl.request(a, big, reply) == std::error_code{});
    CHECK(reply == big);
    // The reply string is reused: a smaller reply does not reallocate it.
    const auto cap = reply.capacity();
    CHECK(cl.request(a, "again", reply) == std::error_code{});
    CHECK(reply == "again");
    CHECK(reply.capacity() == cap);
    CHECK(test::run(cl.ioc, a.health_check(cl.conn)) == std::error_code{});
    CHECK(test::run(cl.ioc, a.reset(cl.conn)) == std::error_code{});
    CHECK(srv.server().frames_echoed() == 5);
    CHECK(srv.server().connections_accepted() == 1);
}

TEST_CASE_FIXTURE(test::no_fd_leak, "tls: verified by IP SAN and by DNS SAN with SNI" * test::needs_tls()) {
    test::server_thread srv(tls_server_options());
    const echo::adapter a;
    std::string reply;

    SUBCASE("IP literal matches IP:127.0.0.1") {
        client cl(tls_endpoint(srv.port(), "127.0.0.1"));
        REQUIRE(cl.open(a) == std::error_code{});
        CHECK(cl.conn.io().is_tls());
        CHECK(cl.request(a, "over tls", reply) == std::error_code{});
        CHECK(reply == "over tls");
        const std::string big(100 * 1024, 'q');
        CHECK(cl.request(a, big, reply) == std::error_code{});
        CHECK(reply == big);
    }
    SUBCASE("host name localhost (resolved) matches DNS:localhost") {
        client cl(tls_endpoint(srv.port(), "localhost"));
        // localhost may resolve to ::1 first, where nothing listens: the next address answers.
        REQUIRE(cl.open(a) == std::error_code{});
        CHECK(cl.request(a, "named", reply) == std::error_code{});
        CHECK(reply == "named");
    }
    SUBCASE("server_name overrides the host for SNI and verification") {
        auto ep = tls_endpoint(srv.port(), "127.0.0.1");
        ep.tls_opts.server_name = "localhost";
        client cl(ep);
        CHECK(cl.open(a) == std::error_code{});
    }
}

TEST_CASE_FIXTURE(test::no_fd_leak, "tls: a certificate for another name fails verification" * test::needs_tls()) {
    test::server_thread srv(tls_server_options(true));

    SUBCASE("IP literal") {
        client cl(tls_endpoint(srv.port(), "127.0.0.1"));
        CHECK(cl.connect() == errc::tls_verify_failed);
        CHECK_FALSE(cl.conn.io().is_open());
    }
    SUBCASE("host name") {
        client cl(tls_endpoint(srv.port(), "localhost"));
        CHECK(cl.connect() == errc::tls_verify_failed);
        CHECK_FALSE(cl.conn.io().is_open());
    }
    SUBCASE("the right server_name makes it pass") {
        auto ep = tls_endpoint(srv.port());
        ep.tls_opts.server_name = "wrong.example";
        client cl(ep);
        CHECK(cl.open() == std::error_code{});
    }
    SUBCASE("verification off is explicit, and then anything goes") {
        auto ep = tls_endpoint(srv.port());
        ep.tls_opts.verify = false;
        client cl(ep);
        CHECK(cl.open() == std::error_code{});
    }
}

TEST_CASE_FIXTURE(test::no_fd_leak, "tls: a server from an untrusted CA fails verification" * test::needs_tls()) {
    test::server_thread srv(tls_server_options());
    auto ep = tls_endpoint(srv.port());
    ep.tls_opts.ca_file = test::certs().other_ca_cert;
    client cl(ep);
    CHECK(cl.connect() == errc::tls_verify_failed);
    CHECK_FALSE(cl.conn.io().is_open());
}

TEST_CASE_FIXTURE(test::no_fd_leak, "tls: plain server behind an implicit-TLS endpoint" * test::needs_tls()) {
    test::server_thread srv;  // answers the ClientHello with its greeting line
    client cl(tls_endpoint(srv.port()));
    CHECK(cl.connect() == errc::tls_not_offered);  // a clear-text answer: not a TLS port
    CHECK_FALSE(cl.conn.io().is_open());
}

TEST_CASE("tls: an unloadable CA file is a configuration error naming the field" * test::needs_tls()) {
    netpool::tls_options o;
    o.ca_file = test::temp_dir() + "/does-not-exist.pem";
    try {
        (void)netpool::make_client_tls_context(o);
        FAIL("expected config_error");
    } catch (const netpool::config_error& e) {
        CHECK(e.field() == "tls.ca_file");
        CHECK(std::string(e.what()).find("does-not-exist.pem") != std::string::npos);
    }
}

TEST_CASE_FIXTURE(test::no_fd_leak, "connection refused is reported as the system error") {
    std::uint16_t port = 0;
    {
        // Bind a port, then close it: nothing listens there any more.
        asio::io_context tmp;
        asio::ip::tcp::acceptor acc(tmp, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = acc.local_endpoint().port();
    }
    client cl(test::loopback(port));
    const auto ec = cl.connect();
    // Asio 1.22's own system category maps nothing to std::errc, so compare with its enum.
    CHECK(ec == asio::error::connection_refused);
    CHECK_FALSE(cl.conn.io().is_open());
}

TEST_CASE_FIXTURE(test::no_fd_leak, "an unknown host name is the resolver's error") {
    netpool::endpoint ep = test::loopback(1);
    ep.host = "no-such-host.invalid";  // .invalid never resolves (RFC 2606)
    client cl(ep);
    const auto ec = cl.connect(2000ms);
    CHECK(ec);
    // The lookup fails (host_not_found, or try_again without a reachable DNS server), or,
    // if the system resolver takes its time, the connect timeout ends it.
    CHECK((ec == errc::connect_timeout || ec.category() != netpool::netpool_category()));
    CHECK_FALSE(cl.conn.io().is_open());
}

TEST_CASE_FIXTURE(test::no_fd_leak, "silent server: handshakes time out") {
    echo::server_options o;
    o.mode = echo::fault_mode::silent;

    SUBCASE("echo greeting never comes") {
        test::server_thread srv(o);
        client cl(test::loopback(srv.port()));
        REQUIRE(cl.connect() == std::error_code{});
        const echo::adapter a;
        const auto ec = test::run(cl.ioc, netpool::with_timeout(a.handshake(cl.conn), short_timeout,
                                                                errc::handshake_timeout));
        CHECK(ec == errc::handshake_timeout);
    }
}

TEST_CASE_FIXTURE(test::no_fd_leak, "tls: silent server: handshakes time out" * test::needs_tls()) {
    SUBCASE("TLS handshake never answered") {
        auto t = tls_server_options();
        t.mode = echo::fault_mode::silent;
        test::server_thread srv(t);
        client cl(tls_endpoint(srv.port()));
        const auto started = std::chrono::steady_clock::now();
        CHECK(cl.connect(generous, short_timeout) == errc::handshake_timeout);
        CHECK(std::chrono::steady_clock::now() - started < generous);
        CHECK_FALSE(cl.conn.io().is_open());
    }
    SUBCASE("the caller's own timeout cancels connect_transport mid-handshake") {
        auto t = tls_server_options();
        t.mode = echo::fault_mode::silent;
        test::server_thread srv(t);
        client cl(tls_endpoint(srv.port()));
        const auto ec = test::run(cl.ioc, netpool::with_timeout(netpool::connect_transport(cl.conn, generous, generous),
                                                                short_timeout, errc::operation_timeout));
        CHECK(ec == errc::operation_timeout);
        // Cancelled from outside, connect_transport still closed what it had opened.
        CHECK_FALSE(cl.conn.io().is_open());
    }
}

TEST_CASE_FIXTURE(test::no_fd_leak, "a caller's timeout at any point of connect or request leaves nothing behind") {
    test::server_thread srv;
    timeout_sweep(srv.port(), false);
}

TEST_CASE_FIXTURE(test::no_fd_leak,
                  "tls: a caller's timeout at any point of connect, handshake or request leaves nothing behind" *
                      test::needs_tls()) {
    test::server_thread srv(tls_server_options());
    timeout_sweep(srv.port(), true);
}

TEST_CASE_FIXTURE(test::no_fd_leak, "a bad greeting is rejected") {
    echo::server_options o;
    o.mode = echo::fault_mode::no_greeting_garbage;
    test::server_thread srv(o);
    client cl(test::loopback(srv.port()));
    CHECK(cl.open() == errc::handshake_rejected);
}

TEST_CASE_FIXTURE(test::no_fd_leak, "frames over max_frame are refused, never allocated") {
    test::server_thread srv;
    client cl(test::loopback(srv.port()));
    const echo::adapter small(100);
    REQUIRE(cl.open(small) == std::error_code{});
    std::string reply;

    SUBCASE("request over the limit is not sent; the connection stays usable") {
        CHECK(cl.request(small, std::string(101, 'x'), reply) == errc::frame_too_large);
        CHECK(cl.request(small, std::string(100, 'y'), reply) == std::error_code{});
        CHECK(reply == std::string(100, 'y'));
        CHECK(srv.server().frames_echoed() == 1);
    }
    SUBCASE("reply over the limit is refused before its payload is read") {
        // Slip a 100,000-byte frame past the adapter; its echo is the next reply it reads.
        const std::string raw = echo::encode_frame(std::string(100000, 'r'));
        const auto [wec, n] = test::run(cl.ioc, asio::async_write(cl.conn.io(), asio::buffer(raw), use_tuple));
        REQUIRE(wec == std::error_code{});
        CHECK(cl.request(small, "hi", reply) == errc::frame_too_large);
        CHECK(reply.capacity() < 100000);
    }
}

TEST_CASE("adapter: configuration errors name the field") {
    CHECK_THROWS_AS(echo::adapter(0), netpool::config_error);
    netpool::adapter_registry reg;
    echo::register_echo_adapter(reg);
    CHECK(reg.contains("echo"));
    auto any = reg.make("echo", {{"max_frame", "4096"}});
    REQUIRE(any.target<echo::adapter>() != nullptr);
    CHECK(any.target<echo::adapter>()->max_frame() == 4096);
    CHECK(any.name() == "echo");
    try {
        (void)reg.make("echo", {{"max_frame", "lots"}});
        FAIL("expected config_error");
    } catch (const netpool::config_error& e) {
        CHECK(e.field() == "max_frame");
    }
    CHECK_THROWS_AS((void)reg.make("echo", {{"colour", "blue"}}), netpool::config_error);
}

TEST_CASE_FIXTURE(test::no_fd_leak, "server faults: closing mid-frame, after N requests, dying") {
    test::server_thread srv;
    client cl(test::loopback(srv.port()));
    const echo::adapter a;
    REQUIRE(cl.open(a) == std::error_code{});
    std::string reply;

    SUBCASE("close mid-frame") {
        srv.server().set_mode(echo::fault_mode::close_mid_frame);
        CHECK(cl.request(a, "half of this arrives", reply) == errc::connection_closed);
    }
    SUBCASE("close after N requests") {
        srv.server().set_reset_after(2);
        srv.server().set_mode(echo::fault_mode::reset_after_n);
        CHECK(cl.request(a, "one", reply) == std::error_code{});
        CHECK(cl.request(a, "two", reply) == std::error_code{});
        CHECK(cl.request(a, "three", reply) == errc::connection_closed);
    }
    SUBCASE("server stopped: open sessions die; a restart listens on the same port") {
        const auto port = srv.port();
        srv.stop();
        CHECK(srv.server().open_sessions() == 0);
        CHECK(cl.request(a, "anyone?", reply) == errc::connection_closed);

        client refused(test::loopback(port));
        CHECK(refused.connect() == asio::error::connection_refused);

        srv.start();
        CHECK(srv.port() == port);
        client again(test::loopback(port));
        REQUIRE(again.open(a) == std::error_code{});
        CHECK(again.request(a, "back", reply) == std::error_code{});
        CHECK(reply == "back");
    }
}

TEST_CASE_FIXTURE(test::no_fd_leak, "with_timeout") {
    asio::io_context ioc;
    const auto sleeper = [](std::chrono::milliseconds d) -> asio::awaitable<std::error_code> {
        asio::steady_timer t(co_await asio::this_coro::executor, d);
        auto [ec] = co_await t.async_wait(use_tuple);
        co_return ec;
    };
    const auto custom = make_error_code(errc::operation_timeout);

    // Finishing first: the operation's own result, success or error.
    CHECK(test::run(ioc, netpool::with_timeout(sleeper(0ms), 5s, custom)) == std::error_code{});
    const auto fails = []() -> asio::awaitable<std::error_code> { co_return errc::protocol_error; };
    CHECK(test::run(ioc, netpool::with_timeout(fails(), 5s, custom)) == errc::protocol_error);
    // Too slow: the given error, and the operation was cancelled (not waited for).
    const auto started = std::chrono::steady_clock::now();
    CHECK(test::run(ioc, netpool::with_timeout(sleeper(60s), 50ms, custom)) == custom);
    CHECK(std::chrono::steady_clock::now() - started < 30s);
    // Nested: the outer, shorter timeout cancels the inner one's operation.
    CHECK(test::run(ioc, netpool::with_timeout(netpool::with_timeout(sleeper(60s), 50s, errc::connect_timeout), 50ms,
                                               errc::handshake_timeout)) == errc::handshake_timeout);
    // An exception from the operation reaches the caller.
    const auto throws = []() -> asio::awaitable<std::error_code> {
        throw std::runtime_error("adapter bug");
        co_return std::error_code{};
    };
    CHECK_THROWS_AS(test::run(ioc, netpool::with_timeout(throws(), 5s, custom)), std::runtime_error);
}

#if !NETPOOL_HAS_TLS
TEST_CASE_FIXTURE(test::no_fd_leak, "without TLS: the TLS entry points are config_errors that say why") {
    MESSAGE("the test cases named 'tls: ...' are skipped (doctest counts them as skipped): " NETPOOL_NO_TLS_REASON);
    test::expect_no_tls_error([] { (void)netpool::make_client_tls_context({}); }, "tls");

    test::server_thread srv;
    for (auto mode : {netpool::tls_mode::implicit, netpool::tls_mode::starttls}) {
        CAPTURE(netpool::to_string(mode));
        netpool::endpoint ep = test::loopback(srv.port());
        ep.tls = mode;
        asio::io_context ioc;
        netpool::connection conn(ioc.get_executor(), ep, nullptr, 1);
        test::expect_no_tls_error([&] { (void)test::run(ioc, netpool::connect_transport(conn, generous, generous)); },
                                  "endpoint.tls");
        CHECK_FALSE(conn.io().is_open());  // refused before anything was opened
    }
    CHECK(srv.server().connections_accepted() == 0);

    // STARTTLS over a plain connection: refused, and the connection (whose peer would now
    // expect a handshake) is closed.
    client cl(test::loopback(srv.port()));
    REQUIRE(cl.open() == std::error_code{});
    CHECK_FALSE(cl.conn.io().is_tls());
    test::expect_no_tls_error([&] { (void)test::run(cl.ioc, netpool::start_tls(cl.conn, generous)); }, "tls");
    CHECK_FALSE(cl.conn.io().is_open());

    // The echo server refuses certificate options instead of serving plain TCP to TLS clients.
    asio::io_context sctx;
    echo::server_options so;
    so.cert_file = "server.pem";
    so.key_file = "server.key";
    test::expect_no_tls_error([&] { echo::server s(sctx.get_executor(), so); }, "cert_file");
    so.cert_file.clear();
    test::expect_no_tls_error([&] { echo::server s(sctx.get_executor(), so); }, "key_file");
    CHECK_FALSE(echo::server(sctx.get_executor(), {}).tls());
}
#endif

}  // TEST_SUITE
