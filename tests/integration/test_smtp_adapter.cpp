// The SMTP adapter and mailer against a server scripted in-process on loopback: what the
// shared misbehaving server (tests/servers/bad_smtp_server.py) does not script: a server
// that echoes the credentials back, XOAUTH2's error challenge and token refresh, AUTH LOGIN
// in lock-step, every recipient refused under PIPELINING (the lone dot, then RSET), and
// bytes sent unasked after a reply.
#include "support.hpp"

#include <netpool/sasl.hpp>
#include <netpool/base64.hpp>
#include <netpool/error.hpp>
#include <netpool/registry.hpp>
#include <netpool/smtp/mailer.hpp>
#include <netpool/smtp/protocol.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#include <atomic>
#include <thread>

using namespace std::chrono_literals;
namespace smtp = netpool::smtp;

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// An SMTP server whose every reply comes from `respond(line, connection number)`. A reply
/// starting with 354 switches to reading content up to the lone "."; `respond(".", n)` then
/// answers the content, which is kept in `contents`. An empty reply sends nothing; "CLOSE"
/// closes the connection. Single-threaded: runs on the test's io_context.
class scripted_server {
public:
    using responder = std::function<std::string(const std::string& line, int conn)>;

    scripted_server(asio::io_context& io, responder r)
        : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), respond_(std::move(r)) {
        asio::co_spawn(io, accept_loop(), asio::detached);
    }
    ~scripted_server() { stop(); }
    void stop() {
        std::error_code ignored;
        acceptor_.close(ignored);
        for (auto& s : sockets_) s->close(ignored);
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

    std::vector<std::string> lines;     ///< "n VERB..." for every line received
    std::vector<std::string> contents;  ///< each DATA content, as received (CRLF, still dot-stuffed)
    int connections = 0;

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
            if (ec) co_return;
            auto s = std::make_shared<asio::ip::tcp::socket>(std::move(sock));
            sockets_.push_back(s);
            asio::co_spawn(acceptor_.get_executor(), session(s, ++connections), asio::detached);
        }
    }

    asio::awaitable<void> session(std::shared_ptr<asio::ip::tcp::socket> s, int n) {
        std::string buf;
        bool in_data = false;
        std::string content;
        std::string out = respond_("<connect>", n);
        for (;;) {
            if (out == "CLOSE") break;
            if (!out.empty()) {
                auto [wec, w] = co_await asio::async_write(*s, asio::buffer(out), use_tuple);
                if (wec) break;
                if (out.rfind("354", 0) == 0) in_data = true;
                if (out.rfind("221", 0) == 0) break;
            }
            auto [ec, len] = co_await asio::async_read_until(*s, asio::dynamic_buffer(buf), "\r\n", use_tuple);
            if (ec) break;
            std::string line = buf.substr(0, len - 2);
            buf.erase(0, len);
            if (in_data) {
                if (line != ".") {
                    content += line + "\r\n";
                    out.clear();
                    continue;
                }
                contents.push_back(std::exchange(content, {}));
                in_data = false;
            }
            lines.push_back(std::to_string(n) + " " + line);
            out = respond_(line, n);
        }
        std::error_code ignored;
        s->close(ignored);
    }

    asio::ip::tcp::acceptor acceptor_;
    responder respond_;
    std::vector<std::shared_ptr<asio::ip::tcp::socket>> sockets_;
};

bool starts(const std::string& line, const char* prefix) { return line.rfind(prefix, 0) == 0; }

/// The usual answers; a test's responder handles its own cases first and falls back here.
std::string usual(const std::string& line, const std::string& ehlo_extensions) {
    if (line == "<connect>") return "220 test.example ESMTP\r\n";
    if (starts(line, "EHLO")) return "250-test.example\r\n" + ehlo_extensions + "250 8BITMIME\r\n";
    if (starts(line, "MAIL FROM:") || starts(line, "RCPT TO:") || line == "RSET" || line == "NOOP")
        return "250 2.0.0 ok\r\n";
    if (line == "DATA") return "354 go ahead\r\n";
    if (line == ".") return "250 2.0.0 queued\r\n";
    if (line == "QUIT") return "221 bye\r\n";
    return "502 5.5.2 what?\r\n";
}

smtp::account account_for(std::uint16_t port) {
    smtp::account a;
    a.server.port = port;
    a.client.helo_name = "client.test";
    a.client.command_timeout = 2s;
    a.pool.size = 1;
    a.pool.max_overflow = 0;
    a.pool.checkout_timeout = 3s;
    a.pool.backoff_initial = 20ms;
    a.pool.backoff_max = 50ms;
    a.pool.max_restarts = 2;
    return a;
}

smtp::message simple_message(std::vector<std::string> to) {
    smtp::message m;
    m.from = "me@test.example";
    m.to = std::move(to);
    m.subject = "test";
    m.text = "hello\n.leading dot\n";
    return m;
}

/// Lets the pools' closing work (QUIT, sockets) finish before the server goes away.
void settle(asio::io_context& io) {
    io.restart();
    io.run_for(200ms);
}

}  // namespace

TEST_SUITE("integration_smtp_adapter") {

TEST_CASE("credentials a server echoes back never reach results or the failure record") {
    const std::string secret = "hunter2-Echoed-Secret";
    const std::string b64 = netpool::sasl::plain_response("alice", secret);
    asio::io_context io;
    scripted_server server(io, [&](const std::string& line, int) {
        if (starts(line, "AUTH PLAIN"))
            return "535-5.7.8 you sent " + line.substr(11) + "\r\n535 5.7.8 which is " + secret + ", wrong\r\n";
        return usual(line, "250-AUTH PLAIN\r\n");
    });
    {
        netpool::registry reg(io.get_executor());
        smtp::mailer mailer(reg);
        auto a = account_for(server.port());
        a.client.cred = {"alice", secret};
        a.client.allow_plaintext_auth = true;  // loopback test server without TLS
        const auto m = simple_message({"you@test.example"});
        const smtp::send_result r = netpool::test::run(io, mailer.send(a, m));
        CAPTURE(r.to_string());
        CHECK_FALSE(r.sent);
        CHECK(r.stage == "checkout");
        CHECK(r.ec == smtp::errc::auth_failed);
        CHECK(r.ec == netpool::condition::handshake_rejected);
        CHECK(r.detail.find("AUTH PLAIN: 535") != std::string::npos);
        REQUIRE(r.last_reply);
        CHECK(r.last_reply->code == 535);
        const std::string everything = r.to_string() + r.detail + r.last_reply->to_string() + r.ec.message();
        CHECK(everything.find(secret) == std::string::npos);
        CHECK(everything.find(b64) == std::string::npos);
        CHECK(everything.find("[redacted]") != std::string::npos);
        // The pool's record is the SMTP cause, and the pool is down for a handshake reason.
        auto p = reg.pool_for(a.server, a.client.cred, [] { return netpool::any_adapter(); }, a.pool);
        CHECK(p->last_failure() == smtp::errc::auth_failed);
        CHECK(server.connections <= 3);  // max_restarts bounds the attempts: no storm
    }
    settle(io);
}

TEST_CASE("a pool made for the key by someone else: the mailer reads that pool's failure record; "
          "send_blocking on the registry's thread throws") {
    const std::string secret = "hunter2-Other-Pool";
    asio::io_context io;
    scripted_server server(io, [&](const std::string& line, int) {
        if (starts(line, "AUTH PLAIN")) return std::string("535 5.7.8 Authentication credentials invalid\r\n");
        return usual(line, "250-AUTH PLAIN\r\n");
    });
    {
        netpool::registry reg(io.get_executor());
        auto a = account_for(server.port());
        a.client.cred = {"alice", secret};
        a.client.allow_plaintext_auth = true;  // loopback test server without TLS
        // The pool for this key exists before the mailer asks: made with an smtp::adapter
        // the mailer never saw. The handle reaches it (pool::adapter_as), so the checkout
        // failure still carries the server's reply.
        auto p = reg.pool_for(
            a.server, a.client.cred, [&] { return netpool::any_adapter(smtp::adapter(a.client)); }, a.pool);
        smtp::mailer mailer(reg);
        const auto m = simple_message({"you@test.example"});
        const smtp::send_result r = netpool::test::run(io, mailer.send(a, m));
        CAPTURE(r.to_string());
        CHECK(r.stage == "checkout");
        CHECK(r.ec == smtp::errc::auth_failed);
        CHECK(r.detail.find("AUTH PLAIN: 535 5.7.8") != std::string::npos);
        REQUIRE(r.last_reply);
        CHECK(r.last_reply->code == 535);
        CHECK((r.to_string() + r.detail).find(secret) == std::string::npos);

        // On a thread that runs the registry's executor the blocking form would wait for
        // itself: it refuses, naming itself.
        std::string refused;
        asio::post(io, [&] {
            try {
                (void)mailer.send_blocking(a, m);
            } catch (const std::logic_error& e) {
                refused = e.what();
            }
        });
        io.restart();
        io.run_for(500ms);
        CHECK(refused.find("netpool::smtp::mailer::send_blocking") != std::string::npos);
    }
    settle(io);
}

TEST_CASE("XOAUTH2: error challenge answered with an empty line, refreshed token next time") {
    asio::io_context io;
    std::vector<bool> refresh_flags;
    std::vector<std::string> tokens_seen;
    scripted_server server(io, [&](const std::string& line, int) -> std::string {
        if (starts(line, "AUTH XOAUTH2 ")) {
            const auto raw = netpool::base64_decode(line.substr(13)).value_or("?");
            tokens_seen.push_back(raw);
            if (raw.find("auth=Bearer fresh-token") != std::string::npos) return "235 2.7.0 accepted\r\n";
            return "334 " + netpool::base64_encode(R"({"status":"401","schemes":"bearer"})") + "\r\n";
        }
        if (line.empty()) return "535 5.7.8 token expired\r\n";
        return usual(line, "250-AUTH PLAIN LOGIN XOAUTH2\r\n");
    });
    {
        netpool::registry reg(io.get_executor());
        smtp::mailer mailer(reg);
        auto a = account_for(server.port());
        a.pool.max_restarts = 5;
        a.client.cred.user = "alice@test.example";
        a.client.allow_plaintext_auth = true;
        a.client.oauth_token = [&](bool refresh) {
            refresh_flags.push_back(refresh);
            return std::string(refresh ? "fresh-token" : "stale-token");
        };
        const auto m = simple_message({"you@test.example"});
        const smtp::send_result r = netpool::test::run(io, mailer.send(a, m));
        CAPTURE(r.to_string());
        CHECK(r.sent);
        REQUIRE(refresh_flags.size() >= 2);
        CHECK_FALSE(refresh_flags[0]);
        CHECK(refresh_flags[1]);
        REQUIRE(tokens_seen.size() >= 2);
        CHECK(tokens_seen[0] == "user=alice@test.example\x01" "auth=Bearer stale-token\x01\x01");
        // The empty line after the error challenge was sent (and nothing else in between).
        bool empty_after_auth = false;
        for (std::size_t i = 0; i + 1 < server.lines.size(); ++i)
            if (server.lines[i].rfind("1 AUTH XOAUTH2", 0) == 0) empty_after_auth = server.lines[i + 1] == "1 ";
        CHECK(empty_after_auth);
        CHECK(r.to_string().find("token") == std::string::npos);
    }
    settle(io);
}

TEST_CASE("pipelined, every recipient refused, DATA got 354: a lone dot, the failure, then RSET") {
    asio::io_context io;
    scripted_server server(io, [&](const std::string& line, int) {
        if (starts(line, "RCPT TO:<nobody")) return std::string("550 5.1.1 no such user\r\n");
        if (line == ".") {
            // Only the lone dot when no recipient is left; real content otherwise.
            return std::string(server.contents.back().empty() ? "554 5.5.1 no valid recipients\r\n"
                                                               : "250 2.0.0 queued\r\n");
        }
        return usual(line, "250-PIPELINING\r\n250-SIZE 100000\r\n");
    });
    {
        netpool::registry reg(io.get_executor());
        smtp::mailer mailer(reg);
        const auto a = account_for(server.port());
        const auto bad = simple_message({"nobody1@test.example", "nobody2@test.example"});
        const smtp::send_result r = netpool::test::run(io, mailer.send(a, bad));
        CAPTURE(r.to_string());
        CHECK_FALSE(r.sent);
        CHECK(r.ec == smtp::errc::permanent_failure);
        CHECK(r.stage == "RCPT TO");
        CHECK_FALSE(r.discard_connection());
        REQUIRE(r.recipients.size() == 2);
        CHECK(r.recipients[0].code == 550);
        REQUIRE(server.contents.size() == 1);
        CHECK(server.contents[0].empty());  // no content went to a transaction without recipients

        const auto good = simple_message({"you@test.example"});
        const smtp::send_result r2 = netpool::test::run(io, mailer.send(a, good));
        CAPTURE(r2.to_string());
        CHECK(r2.sent);
        REQUIRE(server.contents.size() == 2);
        CHECK(server.contents[1].find("\r\n..leading dot\r\n") != std::string::npos);  // dot-stuffed
        // Same connection; RSET between the failed transaction and the next; MAIL carries SIZE.
        std::vector<std::string> verbs;
        for (const auto& l : server.lines) verbs.push_back(l.substr(0, l.find_first_of(":<", 2)));
        CHECK(server.connections == 1);
        const std::vector<std::string> expected{"1 EHLO client.test", "1 MAIL FROM", "1 RCPT TO", "1 RCPT TO", "1 DATA",
                                                "1 .", "1 RSET", "1 MAIL FROM", "1 RCPT TO", "1 DATA", "1 ."};
        CHECK(verbs == expected);
        CHECK(server.lines[1].find(" SIZE=") != std::string::npos);
    }
    settle(io);
}

TEST_CASE("AUTH LOGIN in lock-step, and bytes sent unasked are a protocol error") {
    asio::io_context io;
    int mail_count = 0;
    scripted_server server(io, [&](const std::string& line, int) -> std::string {
        if (line == "AUTH LOGIN") return "334 VXNlcm5hbWU6\r\n";
        if (line == netpool::base64_encode("bob")) return "334 UGFzc3dvcmQ6\r\n";
        if (line == netpool::base64_encode("pw")) return "235 2.7.0 ok\r\n";
        if (starts(line, "MAIL FROM:") && ++mail_count == 2) return "250 ok\r\n250 surprise\r\n";
        return usual(line, "250-AUTH LOGIN\r\n");
    });
    {
        netpool::registry reg(io.get_executor());
        smtp::mailer mailer(reg);
        auto a = account_for(server.port());
        a.client.cred = {"bob", "pw"};
        a.client.allow_plaintext_auth = true;
        a.client.mechanisms = {"LOGIN"};
        const auto m = simple_message({"a@test.example", "b@test.example"});
        const smtp::send_result r = netpool::test::run(io, mailer.send(a, m));
        CAPTURE(r.to_string());
        CHECK(r.sent);
        CHECK(r.recipients.size() == 2);
        // Lock-step: each command after the previous reply, in order.
        REQUIRE(server.lines.size() >= 9);
        CHECK(server.lines[1] == "1 AUTH LOGIN");
        CHECK(server.lines[4].rfind("1 MAIL FROM:<me@test.example>", 0) == 0);

        // One transaction's verdict (the default retry policy would send it again, safely: the
        // dot was never written, and the next MAIL FROM gets a clean reply).
        a.retry.max_attempts = 1;
        const smtp::send_result r2 = netpool::test::run(io, mailer.send(a, m));
        CAPTURE(r2.to_string());
        CHECK_FALSE(r2.sent);
        CHECK(r2.ec == netpool::errc::protocol_error);
        CHECK(r2.discard_connection());
        a.retry = {};
        const smtp::send_result r3 = netpool::test::run(io, mailer.send(a, m));
        CAPTURE(r3.to_string());
        CHECK(r3.sent);
    }
    settle(io);
}

TEST_CASE("plaintext AUTH is refused before anything is sent; envelope errors send nothing") {
    asio::io_context io;
    scripted_server server(io, [&](const std::string& line, int) { return usual(line, "250-AUTH PLAIN\r\n"); });
    {
        netpool::registry reg(io.get_executor());
        smtp::mailer mailer(reg);
        auto a = account_for(server.port());
        a.client.cred = {"carol", "pw"};
        const smtp::send_result r = netpool::test::run(io, mailer.send(a, simple_message({"x@test.example"})));
        CAPTURE(r.to_string());
        CHECK(r.ec == smtp::errc::plaintext_auth_refused);
        CHECK(r.stage == "checkout");
        CHECK(server.lines.empty());  // not even EHLO

        const auto b = account_for(server.port());
        const smtp::send_result r2 = netpool::test::run(io, mailer.send(b, smtp::envelope{"me@test.example", {}}, "x"));
        CHECK(r2.ec == smtp::errc::no_recipients);
        const smtp::send_result r3 =
            netpool::test::run(io, mailer.send(b, smtp::envelope{"me@test.example", {"a@b\r\nRSET"}}, "x"));
        CHECK(r3.ec == smtp::errc::invalid_address);
        for (const auto& l : server.lines) CHECK(l.find("MAIL") == std::string::npos);
    }
    settle(io);
}


TEST_CASE("threads: the mailer from several threads while the registry retires its pools") {
    // The server runs on its own thread; the mailer's pools on a two-thread io_context;
    // four plain threads send with send_blocking while a fifth retires every keyed pool
    // again and again. Meant for ThreadSanitizer (scripts/test runs it in build-tsan/).
    asio::io_context server_io;
    std::atomic<int> accepted{0};
    scripted_server server(server_io, [&](const std::string& line, int) {
        if (line == "<connect>") ++accepted;
        if (starts(line, "AUTH PLAIN ")) return std::string("235 2.7.0 ok\r\n");
        return usual(line, "250-PIPELINING\r\n250-AUTH PLAIN\r\n");
    });
    std::thread server_thread([&] {
        auto guard = asio::make_work_guard(server_io);
        server_io.run_for(60s);
    });
    const std::uint16_t port = server.port();
    {
        netpool::test::io_threads io(2);
        netpool::registry reg(io.executor());
        smtp::mailer mailer(reg);
        std::atomic<bool> stop{false};
        std::atomic<int> sent{0}, closed{0}, other{0};
        std::vector<std::thread> senders;
        for (int t = 0; t < 4; ++t) {
            senders.emplace_back([&, t] {
                auto a = account_for(port);
                a.pool.size = 2;
                a.pool.max_overflow = 2;
                a.client.cred.user = "user" + std::to_string(t % 2);  // two keyed pools
                a.client.cred.secret = "pw";
                a.client.allow_plaintext_auth = true;  // loopback test server without TLS
                for (int i = 0; i < 25 && !stop; ++i) {
                    const auto r = mailer.send_blocking(a, simple_message({"you@test.example"}));
                    if (r.sent) ++sent;
                    else if (r.ec == netpool::errc::pool_closed) ++closed;  // retired under it
                    else {
                        ++other;
                        MESSAGE(r.to_string());
                    }
                }
            });
        }
        std::thread retirer([&] {
            for (int i = 0; i < 20; ++i) {
                std::this_thread::sleep_for(10ms);
                reg.retire_all();
            }
        });
        for (auto& th : senders) th.join();
        stop = true;
        retirer.join();
        MESSAGE(sent.load() << " sent, " << closed.load() << " met a retired pool, " << accepted.load()
                            << " connections");
        CHECK(sent + closed == 100);
        CHECK(other == 0);
        CHECK(sent > 0);
        reg.retire_all();
        std::this_thread::sleep_for(200ms);  // QUIT and closes finish before the threads stop
    }
    server_io.stop();
    server_thread.join();  // the server is closed by its destructor, on this thread
}
}  // TEST_SUITE
