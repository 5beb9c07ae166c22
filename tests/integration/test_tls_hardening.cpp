// Issue 13, items 6 and 8: no subject-CN fallback in host-name verification, and TLS
// session resumption that never crosses endpoints or server names. Against netpool's echo
// server over TLS on loopback, with certificates made at test time by the openssl command.
#include "support.hpp"

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#if NETPOOL_HAS_TLS
#include <asio/ssl.hpp>
#include <openssl/ssl.h>
#endif

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

namespace fs = std::filesystem;

/// A server certificate with CN=localhost and no subjectAltName, signed by the test CA.
struct no_san_cert {
    std::string cert, key;
};

const no_san_cert& no_san() {
    static const no_san_cert made = [] {
        const auto& c = test::certs();  // makes the CA first
        const fs::path ca_dir = fs::path(c.ca_cert).parent_path();
        const fs::path dir = fs::path(test::temp_dir()) / "no_san";
        fs::create_directories(dir);
        {
            std::ofstream cnf(dir / "openssl.cnf");
            cnf << "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n"
                   "[v3_no_san]\nbasicConstraints = critical,CA:FALSE\n"
                   "keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n"
                   "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";
        }
        const std::string in_dir = "cd '" + dir.string() + "' && openssl ";
        const std::string cmds[] = {
            in_dir + "req -new -config openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                     "-keyout no_san.key -out no_san.csr -subj '/CN=localhost' > openssl.log 2>&1",
            in_dir + "x509 -req -in no_san.csr -CA '" + c.ca_cert + "' -CAkey '" + (ca_dir / "ca.key").string() +
                "' -set_serial 40 -days 2 -extfile openssl.cnf -extensions v3_no_san -out no_san.pem >> openssl.log 2>&1",
        };
        for (const auto& cmd : cmds)
            if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl failed: " + cmd);
        return no_san_cert{(dir / "no_san.pem").string(), (dir / "no_san.key").string()};
    }();
    return made;
}

echo::server_options tls_server(const std::string& cert, const std::string& key) {
    echo::server_options o;
    o.cert_file = cert;
    o.key_file = key;
    return o;
}

echo::server_options good_tls_server() { return tls_server(test::certs().server_cert, test::certs().server_key); }

endpoint tls_endpoint(std::uint16_t port, std::string server_name = "localhost") {
    endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = port;
    ep.tls = tls_mode::implicit;
    ep.tls_opts.ca_file = test::certs().ca_cert;
    ep.tls_opts.server_name = std::move(server_name);
    return ep;
}

#if NETPOOL_HAS_TLS
/// One TLS connection object driven from the test thread, with a TLS context that may be
/// shared with other connections (as a pool's workers share their pool's).
struct tls_client {
    tls_client(endpoint e, asio::ssl::context* ctx) : ep(std::move(e)), conn(ioc.get_executor(), ep, ctx, 1) {}

    /// Connects, greets and does one echo round trip (TLS 1.3 tickets arrive with the first
    /// read), then closes as the pool does (no close_notify). Returns whether the handshake
    /// resumed a session, or the error.
    std::pair<std::error_code, bool> round_trip() {
        auto ec = test::run(ioc, connect_transport(conn, 2s, 2s));
        if (ec) return {ec, false};
        const bool reused = SSL_session_reused(conn.io().tls().native_handle()) == 1;
        const echo::adapter a;
        ec = test::run(ioc, a.handshake(conn));
        std::string reply;
        if (!ec) ec = test::run(ioc, a.request(conn, "tick", reply));
        if (!ec && reply != "tick") ec = errc::protocol_error;
        conn.io().close();
        return {ec, reused};
    }

    asio::io_context ioc;
    endpoint ep;
    connection conn;
};

/// A pool's handshakes that resumed a session, seen from a lease.
bool lease_resumed(lease& l) { return SSL_session_reused((*l).io().tls().native_handle()) == 1; }
#endif

}  // namespace

TEST_SUITE("tls_hardening") {

// Item 6. RFC 6125 (and browsers) match the host name against the subjectAltName only; the
// subject CN fallback lets a certificate that was never issued for a host name pass.
TEST_CASE_FIXTURE(test::no_fd_leak, "tls: a certificate without subjectAltName is not matched on its CN=localhost" *
                                        test::needs_tls()) {
#if NETPOOL_HAS_TLS
    test::server_thread srv(tls_server(no_san().cert, no_san().key));
    SUBCASE("connect_transport: verification fails") {
        auto ctx = make_client_tls_context(tls_endpoint(srv.port()).tls_opts);
        tls_client cl(tls_endpoint(srv.port()), ctx.get());
        CHECK(cl.round_trip().first == errc::tls_verify_failed);
        CHECK_FALSE(cl.conn.io().is_open());
    }
    SUBCASE("host name as the endpoint's host, no server_name: verification fails") {
        auto ep = tls_endpoint(srv.port(), "");
        ep.host = "localhost";
        auto ctx = make_client_tls_context(ep.tls_opts);
        tls_client cl(ep, ctx.get());
        CHECK(cl.round_trip().first == errc::tls_verify_failed);
    }
    SUBCASE("a pool: endpoint down with the verification failure as the cause") {
        asio::io_context ioc;
        auto o = test::quick_pool(1, 0);
        o.max_restarts = 1;
        pool p(ioc.get_executor(), tls_endpoint(srv.port()), echo::adapter{}, o, "no-san");
        test::run(ioc, [&]() -> awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            asio::steady_timer t(ex);
            for (int i = 0; i < 500 && !p.stats().endpoint_down; ++i) {
                t.expires_after(10ms);
                co_await t.async_wait(asio::use_awaitable);
            }
            auto [ec, l] = co_await p.checkout(1s);
            CHECK(ec == errc::endpoint_down_tls);
        }());
        CHECK(p.last_failure() == errc::tls_verify_failed);
    }
    SUBCASE("the server and its chain are fine otherwise: verification off connects") {
        auto ep = tls_endpoint(srv.port());
        ep.tls_opts.verify = false;
        auto ctx = make_client_tls_context(ep.tls_opts);
        tls_client cl(ep, ctx.get());
        CHECK(cl.round_trip().first == std::error_code{});
    }
#endif
}

// Item 8. A reconnect resumes the last session of the same endpoint, server name and TLS
// profile instead of a full handshake.
TEST_CASE_FIXTURE(test::no_fd_leak, "tls: reconnects through one context resume the session" * test::needs_tls()) {
#if NETPOOL_HAS_TLS
    test::server_thread srv(good_tls_server());
    const auto ep = tls_endpoint(srv.port());
    auto ctx = make_client_tls_context(ep.tls_opts);
    tls_client cl(ep, ctx.get());
    int resumed = 0;
    for (int i = 0; i < 6; ++i) {
        const auto [ec, reused] = cl.round_trip();
        REQUIRE(ec == std::error_code{});
        if (i == 0) CHECK_FALSE(reused);  // nothing to resume yet
        resumed += reused ? 1 : 0;
    }
    MESSAGE("resumed " << resumed << " of 5 reconnects");
    CHECK(resumed == 5);
#endif
}

TEST_CASE_FIXTURE(test::no_fd_leak, "tls: a session is never offered to another server name or endpoint" *
                                        test::needs_tls()) {
#if NETPOOL_HAS_TLS
    test::server_thread srv(good_tls_server());
    test::server_thread other(good_tls_server());
    // One context shared on purpose: sessions it holds must still stay with their endpoint.
    auto ctx = make_client_tls_context(tls_endpoint(srv.port()).tls_opts);
    tls_client first(tls_endpoint(srv.port(), "localhost"), ctx.get());
    REQUIRE(first.round_trip().first == std::error_code{});
    REQUIRE(first.round_trip().second);  // resumable on the same endpoint and name

    SUBCASE("same endpoint, another server name (the IP SAN)") {
        tls_client cl(tls_endpoint(srv.port(), "127.0.0.1"), ctx.get());
        const auto [ec, reused] = cl.round_trip();
        CHECK(ec == std::error_code{});
        CHECK_FALSE(reused);
    }
    SUBCASE("same server name, another endpoint (port)") {
        tls_client cl(tls_endpoint(other.port(), "localhost"), ctx.get());
        const auto [ec, reused] = cl.round_trip();
        CHECK(ec == std::error_code{});
        CHECK_FALSE(reused);
    }
    // And the first one still resumes: the others did not disturb its session.
    CHECK(first.round_trip().second);
#endif
}

TEST_CASE("tls: a pool's reconnects resume its session; another pool's do not" * test::needs_tls()) {
#if NETPOOL_HAS_TLS
    test::server_thread srv(good_tls_server());
    asio::io_context ioc;
    auto o = test::quick_pool(1, 0);
    o.max_uses = 1;  // every lease ends its connection: each checkout is a reconnect
    pool p(ioc.get_executor(), tls_endpoint(srv.port(), "localhost"), echo::adapter{}, o, "resume");
    pool q(ioc.get_executor(), tls_endpoint(srv.port(), "127.0.0.1"), echo::adapter{}, o, "other-name");
    int p_resumed = 0, p_leases = 0;
    bool q_first_resumed = true;
    test::run(
        ioc, [&]() -> awaitable<void> {
            for (int i = 0; i < 8; ++i) {
                auto [ec, l] = co_await p.checkout(5s);
                REQUIRE(ec == std::error_code{});
                ++p_leases;
                if (lease_resumed(l)) ++p_resumed;
                std::string reply;
                CHECK(co_await echo::adapter{}.request(*l, "x", reply) == std::error_code{});
            }
            auto [ec, l] = co_await q.checkout(5s);
            REQUIRE(ec == std::error_code{});
            q_first_resumed = lease_resumed(l);
        }(),
        20s);
    MESSAGE("pool: " << p_resumed << " of " << p_leases << " leases ran on a resumed session");
    CHECK(p_resumed >= 1);
    CHECK_FALSE(q_first_resumed);
#endif
}

// Not run by default (`--no-skip -tc='bench*'` runs it): the cost of a connection per
// request over TLS (connect, handshake, echo greeting, one request, close), with session
// resumption against full handshakes, in alternating blocks within one run.
TEST_CASE("bench: TLS connection per request, resumed against full handshakes" * test::needs_tls() *
          doctest::skip()) {  // skip() last: the last decorator wins
#if NETPOOL_HAS_TLS
    test::server_thread srv(good_tls_server());
    auto ep_full = tls_endpoint(srv.port());
    ep_full.tls_opts.resume_sessions = false;
    const auto ep_resume = tls_endpoint(srv.port());
    auto ctx_full = make_client_tls_context(ep_full.tls_opts);
    auto ctx_resume = make_client_tls_context(ep_resume.tls_opts);
    tls_client full(ep_full, ctx_full.get());
    tls_client resume(ep_resume, ctx_resume.get());
    const int blocks = std::getenv("NETPOOL_BENCH_BLOCKS") ? std::atoi(std::getenv("NETPOOL_BENCH_BLOCKS")) : 20;
    constexpr int per_block = 50;
    using clock = std::chrono::steady_clock;
    clock::duration t_full{}, t_resume{};
    int reused_full = 0, reused_resume = 0;
    for (int b = 0; b < blocks; ++b) {
        for (int which = 0; which < 2; ++which) {  // the order alternates too
            const bool do_resume = (b + which) % 2 == 0;
            tls_client& cl = do_resume ? resume : full;
            const auto t0 = clock::now();
            for (int i = 0; i < per_block; ++i) {
                const auto [ec, reused] = cl.round_trip();
                REQUIRE(ec == std::error_code{});
                (do_resume ? reused_resume : reused_full) += reused ? 1 : 0;
            }
            (do_resume ? t_resume : t_full) += clock::now() - t0;
        }
    }
    const double n = static_cast<double>(blocks) * per_block;
    const double us_full = std::chrono::duration<double, std::micro>(t_full).count() / n;
    const double us_resume = std::chrono::duration<double, std::micro>(t_resume).count() / n;
    MESSAGE("connection per request over TLS, " << n << " each: full handshake " << us_full << " us, resumed "
                                                << us_resume << " us (" << reused_resume << " resumed), ratio full/resumed "
                                                << us_full / us_resume);
    CHECK(reused_full == 0);
    CHECK(reused_resume >= static_cast<int>(n) - 1);
#endif
}

}  // TEST_SUITE
