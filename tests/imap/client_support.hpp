// What the IMAP tests against real servers share (test_imap.cpp: Dovecot and the scripted
// bad server; test_imap_cyrus.cpp: Cyrus): the test account, pool options that fail fast,
// the client harness, a fetch, and the byte-for-byte check of fetched messages against the
// seed files the server scripts write (DIR/seed/MAILBOX/n.eml).
#pragma once

#include "../integration/support.hpp"
#include "../smtp/servers.hpp"

#include <netpool/netpool.hpp>
#include <netpool/imap/client.hpp>

#include <asio/strand.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace netpool::test::imap_support {

using namespace std::chrono_literals;

inline const std::string python = "/usr/bin/python3";
inline const std::string user = "netpool-user";
// Distinctive, so that a leak into any message or log is easy to find. Quotes, a backslash,
// spaces and 8-bit bytes: LOGIN must send it as a literal, and AUTHENTICATE PLAIN must carry
// it unchanged.
inline const std::string password = "S3cret \"Imap\" \\ netpool-xyzzy-caf\xc3\xa9";
inline const std::string wrong_password = "Wr0ng-Imap-netpool-plugh";

inline std::string script(const std::string& name) { return test::source_dir() + "/tests/servers/" + name; }

/// A fresh directory under the test's temporary directory.
inline std::string new_dir(const std::string& label) {
    static std::atomic<int> n{0};
    const std::filesystem::path p = std::filesystem::path(test::temp_dir()) / (label + '-' + std::to_string(++n));
    std::filesystem::create_directories(p);
    return p.string();
}

inline std::string password_file(const std::string& secret) {
    const std::string path = new_dir("pw") + "/password";
    std::ofstream(path) << secret << '\n';
    return path;
}

/// Fails fast: short timeouts and backoff, a few restarts.
inline pool_options quick_pool(std::size_t size, std::size_t overflow) {
    pool_options o;
    o.size = size;
    o.max_overflow = overflow;
    o.checkout_timeout = 10s;
    o.connect_timeout = 3s;
    o.handshake_timeout = 5s;
    o.backoff_initial = 10ms;
    o.backoff_max = 50ms;
    o.max_restarts = 3;
    o.restart_period = 30s;
    o.down_cooldown = 30s;
    o.health_check_after_idle = 0ms;
    return o;
}

/// The test user on 127.0.0.1:port; TLS verified against the test CA as "localhost".
inline imap::account account_for(std::uint16_t port, tls_mode tls, const std::string& secret = password,
                                 const std::string& name = user) {
    imap::account a;
    a.server.host = "127.0.0.1";
    a.server.port = port;
    a.server.tls = tls;
    if (tls != tls_mode::none) {
        a.server.tls_opts.ca_file = test::certs().ca_cert;
        a.server.tls_opts.server_name = "localhost";
    }
    a.client.cred = credentials{name, secret};
    a.client.allow_plaintext_login = tls == tls_mode::none;
    a.client.command_timeout = 5s;
    a.pool = quick_pool(2, 1);
    return a;
}

struct harness {
    test::io_threads io{2};
    registry reg{io.executor()};
    imap::client cli{reg};
    /// Coroutines that call the adapter on a lease run on a strand of the two-thread context,
    /// as with_timeout requires (on the bare context, a timeout's cancellation raced with the
    /// operation: heap-use-after-free of the caller's cancellation slot under ASan). Calls
    /// through imap::client run on the bare context: fetch_latest puts itself on a strand.
    asio::any_io_executor strand = asio::make_strand(io.context());

    pool_stats total() const {
        pool_stats t;
        for (const auto& s : reg.stats()) {
            for (std::size_t i = 0; i < t.closes.size(); ++i) t.closes[i] += s.closes[i];
            t.connects_ok += s.connects_ok;
            t.connects_failed += s.connects_failed;
            t.endpoint_down = t.endpoint_down || s.endpoint_down;
        }
        return t;
    }
};

inline asio::awaitable<imap::fetch_result> fetch_co(imap::client& c, imap::account a, std::string mailbox,
                                                    std::size_t top, imap::fetch_parts parts) {
    co_return co_await c.fetch_latest(a, std::move(mailbox), top, parts);
}

/// Whole messages, so that check_latest can compare them with the seed byte for byte (the
/// client's default fetches headers only: see the fetch_parts tests).
inline imap::fetch_result fetch(harness& h, const imap::account& a, const std::string& mailbox, std::size_t top,
                                std::chrono::milliseconds guard = 30s,
                                imap::fetch_parts parts = imap::fetch_parts::full) {
    return test::run_on(h.io.executor(), fetch_co(h.cli, a, mailbox, top, parts), guard);
}

inline std::string describe(const imap::fetch_result& r) {
    return "ec=" + std::string(r.ec.category().name()) + ':' + std::to_string(r.ec.value()) + " (" +
           r.ec.message() + ") stage=" + r.stage + " detail=" + r.detail +
           " messages=" + std::to_string(r.messages.size()) + " | " + r.to_string();
}

/// Every text a failed fetch produces, for the "no credentials in errors" checks.
inline void check_no_secret(const imap::fetch_result& r) {
    const std::string text = describe(r);
    CHECK_MESSAGE(text.find(password) == std::string::npos, "the password leaked into: " << text);
    CHECK_MESSAGE(text.find(wrong_password) == std::string::npos, "the password leaked into: " << text);
}

inline std::size_t idx(close_reason r) { return static_cast<std::size_t>(r); }

/// fetch_latest(mailbox, top) returns the newest `top` of `count` seeded messages, newest
/// first, each byte-identical to its seed file (`server.seed(mailbox, n)`), with a matching
/// RFC822.SIZE, header and subject, UIDs 1..count in order.
template <class Server>
void check_latest(const Server& server, const imap::fetch_result& r, const std::string& mailbox, int count,
                  std::size_t top) {
    INFO(describe(r));
    REQUIRE_FALSE(r.ec);
    const std::size_t expect = std::min<std::size_t>(top, static_cast<std::size_t>(count));
    REQUIRE(r.messages.size() == expect);
    CHECK(r.mailbox.exists == static_cast<std::uint32_t>(count));
    CHECK(r.mailbox.uidvalidity != 0);
    for (std::size_t i = 0; i < expect; ++i) {
        const int n = count - static_cast<int>(i);  // newest first: message count, count-1, ...
        const auto& m = r.messages[i];
        const std::string want = server.seed(mailbox, n);
        INFO("message " << i << " should be seed " << mailbox << '/' << n);
        REQUIRE_FALSE(want.empty());
        CHECK(m.body.size() == want.size());
        CHECK_MESSAGE(m.body == want, "BODY[] differs from the seed file");
        CHECK(m.size == want.size());
        CHECK(m.header == want.substr(0, want.find("\r\n\r\n") + 4));
        CHECK(m.envelope_subject == mailbox + " message " + std::to_string(n));
        if (i > 0) CHECK(m.uid < r.messages[i - 1].uid);
    }
}

}  // namespace netpool::test::imap_support
