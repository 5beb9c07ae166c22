// No form of a password or token in any output, on failure paths where servers echo what
// they were sent (issue 13: "a grep of every output path"). Scripted servers on loopback
// refuse the login and put every credential they received, raw and decoded, into their
// replies; the SMTP mailer, the IMAP client and the Redis client then fail, and everything
// a program could print is gathered and searched: the result's one-line summary, its detail
// and reply, the adapter's failure record, the pool's last failure, every event, and the
// registry's stats as JSON and Prometheus text.
#include "support.hpp"

#include <netpool/base64.hpp>
#include <netpool/imap/client.hpp>
#include <netpool/keyed_client.hpp>
#include <netpool/kit/io.hpp>
#include <netpool/netpool.hpp>
#include <netpool/redis/client.hpp>
#include <netpool/sasl.hpp>
#include <netpool/smtp/mailer.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

/// A line server: each line received (CRLF stripped) goes to the connection's responder,
/// whose answer is written back ("" sends nothing, "CLOSE" closes). "<connect>" is the first
/// call, for a greeting. One responder per connection, made by `make`.
class line_server {
public:
    using responder = std::function<std::string(const std::string&)>;
    line_server(asio::io_context& io, std::function<responder()> make)
        : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), make_(std::move(make)) {
        asio::co_spawn(io, accept_loop(), asio::detached);
    }
    ~line_server() {
        std::error_code ignored;
        acceptor_.close(ignored);
        for (auto& s : sockets_) s->close(ignored);
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

private:
    awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, sock] = co_await acceptor_.async_accept(kit::use_tuple);
            if (ec) co_return;
            auto s = std::make_shared<asio::ip::tcp::socket>(std::move(sock));
            sockets_.push_back(s);
            asio::co_spawn(acceptor_.get_executor(), serve(s, make_()), asio::detached);
        }
    }
    static awaitable<void> serve(std::shared_ptr<asio::ip::tcp::socket> s, responder respond) {
        std::string buf;
        std::string out = respond("<connect>");
        for (;;) {
            if (out == "CLOSE") break;
            if (!out.empty()) {
                auto [wec, n] = co_await asio::async_write(*s, asio::buffer(out), kit::use_tuple);
                if (wec) break;
            }
            auto [ec, len] = co_await asio::async_read_until(*s, asio::dynamic_buffer(buf), "\r\n", kit::use_tuple);
            if (ec) break;
            const std::string line = buf.substr(0, len - 2);
            buf.erase(0, len);
            out = respond(line);
        }
        std::error_code ignored;
        s->close(ignored);
    }

    asio::ip::tcp::acceptor acceptor_;
    std::function<responder()> make_;
    std::vector<std::shared_ptr<asio::ip::tcp::socket>> sockets_;
};

std::string decoded(std::string_view b64) { return base64_decode(b64).value_or("?"); }

/// Every form in which the credential may have travelled, and so may come back.
std::vector<std::string> forms_of(const std::string& user, const std::string& secret) {
    std::string quoted;
    for (char ch : secret) {
        if (ch == '"' || ch == '\\') quoted += '\\';
        quoted += ch;
    }
    return {secret,
            quoted,
            base64_encode(secret),
            sasl::plain_response(user, secret),
            base64_encode(sasl::plain_message(user, user, secret)),
            sasl::xoauth2_response(user, secret),
            base64_encode(sasl::xoauth2_message(user, secret))};
}

/// Everything a program could print about a pool and its failures.
struct outputs {
    std::vector<std::string> texts;
    event_hook hook() {
        return [this](const event& e) {
            texts.push_back(std::string(to_string(e.kind)) + " " + std::string(e.pool) + " " + e.error.message());
        };
    }
    void add_registry(const registry& reg) {
        const auto all = reg.stats();
        texts.push_back(to_json(all));
        texts.push_back(to_prometheus(all));
    }
    void add_pool(const pool& p) { texts.push_back(p.last_failure().message()); }

    /// Fails the test for each form found; returns how many texts were searched.
    std::size_t check_none_of(const std::vector<std::string>& forms) const {
        for (const auto& text : texts)
            for (const auto& form : forms) {
                CAPTURE(text);
                CAPTURE(form);
                CHECK(text.find(form) == std::string::npos);
            }
        return texts.size();
    }
};

pool_options quick_failure() {
    pool_options o;
    o.size = 1;
    o.max_overflow = 0;
    o.checkout_timeout = 1500ms;
    return o;
}

// ---------------------------------------------------------------------------------------
// SMTP: the 535 replies quote what the client sent, base64 and decoded.

line_server::responder smtp_echoing_server() {
    auto stage = std::make_shared<int>(0);  // AUTH LOGIN: lines received after it
    return [stage](const std::string& line) -> std::string {
        if (line == "<connect>") return "220 echo.example ESMTP\r\n";
        if (line.rfind("EHLO", 0) == 0) return "250-echo.example\r\n250-AUTH PLAIN LOGIN XOAUTH2\r\n250 8BITMIME\r\n";
        if (line.rfind("AUTH PLAIN ", 0) == 0)
            return "535 5.7.8 refused " + line.substr(11) + " meaning " + decoded(line.substr(11)) + "\r\n";
        if (line == "AUTH LOGIN") {
            *stage = 1;
            return "334 VXNlcm5hbWU6\r\n";
        }
        if (*stage == 1) {
            *stage = 2;
            return "334 UGFzc3dvcmQ6 (user " + line + " = " + decoded(line) + ")\r\n";
        }
        if (*stage == 2) {
            *stage = 0;
            return "535 5.7.8 wrong password " + line + " = " + decoded(line) + "\r\n";
        }
        if (line.rfind("AUTH XOAUTH2 ", 0) == 0)
            return "535 5.7.8 bad token " + line.substr(13) + " = " + decoded(line.substr(13)) + "\r\n";
        if (line == "QUIT") return "221 bye\r\n";
        return "502 5.5.1 what: " + line + "\r\n";
    };
}

void smtp_case(const std::vector<std::string>& mechanisms, bool oauth) {
    const std::string user = "alice";
    const std::string secret = R"(pa"ss\w0rd-for-alice)";
    asio::io_context io;
    line_server server(io, smtp_echoing_server);
    registry reg(io.get_executor());
    smtp::account a;
    a.server = test::loopback(server.port());
    a.client.cred = {user, oauth ? std::string() : secret};
    a.client.mechanisms = mechanisms;
    a.client.allow_plaintext_auth = true;
    if (oauth) a.client.oauth_token = [secret](bool) { return secret; };
    a.pool = quick_failure();
    // The mailer's pool for this account, taken first to watch its events.
    outputs out;
    auto h = keyed_client<smtp::adapter>(reg).acquire(a.server, a.client.cred, a.pool,
                                                        [&] { return smtp::adapter(a.client); });
    h.pool().set_event_hook(out.hook());
    smtp::mailer m(reg);
    const auto r = test::run(io, m.send(a, smtp::envelope{"a@example.com", {"b@example.com"}}, "Subject: x\r\n\r\nhi\r\n"));
    CHECK_FALSE(r.sent);
    // A refused XOAUTH2 token is token_rejected (a fresh one may follow), a refused password auth_failed.
    CHECK(r.ec == (oauth ? std::error_code(smtp::errc::token_rejected) : std::error_code(smtp::errc::auth_failed)));
    CHECK(r.detail.find("535") != std::string::npos);  // the server's words are there...
    out.texts.push_back(r.to_string());
    out.texts.push_back(r.detail);
    if (r.last_reply) out.texts.push_back(r.last_reply->to_string());
    out.texts.push_back(h.adapter().last_handshake_failure());
    out.add_pool(h.pool());
    out.add_registry(reg);
    CHECK(out.check_none_of(forms_of(user, secret)) > 5);  // ...the secret in none of its forms
    CHECK(r.detail.find("[redacted]") != std::string::npos);
}

// ---------------------------------------------------------------------------------------
// IMAP: the NO quotes the whole LOGIN or AUTHENTICATE line (and a literal's bytes).

line_server::responder imap_echoing_server() {
    auto literal_for = std::make_shared<std::string>();  // the command line awaiting its literal
    return [literal_for](const std::string& line) -> std::string {
        if (line == "<connect>") return "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] echo ready\r\n";
        const std::string tag = line.substr(0, line.find(' '));
        if (!literal_for->empty()) {  // the literal's bytes, and the rest of the command
            const std::string cmd = std::exchange(*literal_for, {});
            return cmd.substr(0, cmd.find(' ')) + " NO [AUTHENTICATIONFAILED] you sent: " + cmd + " " + line + "\r\n";
        }
        if (!line.empty() && line.back() == '}') {
            *literal_for = line;
            return "+ go on\r\n";
        }
        if (line.find(" LOGIN ") != std::string::npos)
            return tag + " NO [AUTHENTICATIONFAILED] you sent: " + line + "\r\n";
        if (const auto at = line.find(" AUTHENTICATE PLAIN "); at != std::string::npos) {
            const std::string b64 = line.substr(at + 20);
            return tag + " NO [AUTHENTICATIONFAILED] " + b64 + " is " + decoded(b64) + "\r\n";
        }
        if (line.find(" LOGOUT") != std::string::npos) return "* BYE\r\n" + tag + " OK\r\n";
        return tag + " BAD what: " + line + "\r\n";
    };
}

void imap_case(imap::login_method method, const std::string& secret) {
    const std::string user = "bob";
    asio::io_context io;
    line_server server(io, imap_echoing_server);
    registry reg(io.get_executor());
    imap::account a;
    a.server = test::loopback(server.port());
    a.client.cred = {user, secret};
    a.client.method = method;
    a.client.allow_plaintext_login = true;
    a.pool = quick_failure();
    outputs out;
    auto h = keyed_client<imap::adapter>(reg).acquire(a.server, a.client.cred, a.pool,
                                                        [&] { return imap::adapter(a.client); });
    h.pool().set_event_hook(out.hook());
    imap::client c(reg);
    const auto r = test::run(io, c.fetch_latest(a, "INBOX", 3));
    CHECK_FALSE(r.ok());
    CHECK(r.ec == imap::errc::login_failed);
    CHECK(r.detail.find("AUTHENTICATIONFAILED") != std::string::npos);
    out.texts.push_back(r.to_string());
    out.texts.push_back(r.detail);
    out.texts.push_back(h.adapter().last_handshake_failure());
    out.add_pool(h.pool());
    out.add_registry(reg);
    CHECK(out.check_none_of(forms_of(user, secret)) > 5);
    CHECK(r.detail.find("[redacted]") != std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Redis: -WRONGPASS quoting every argument of AUTH or HELLO.

line_server::responder redis_echoing_server() {
    struct command_state {
        std::size_t expected = 0;  // arguments of the array being received
        bool want_value = false;   // the next line is a bulk string's bytes
        std::vector<std::string> args;
    };
    auto st = std::make_shared<command_state>();
    return [st](const std::string& line) -> std::string {
        if (line == "<connect>") return "";
        if (st->expected == 0 && !line.empty() && line[0] == '*') {
            st->expected = std::stoul(line.substr(1));
            st->args.clear();
            return "";
        }
        if (!st->want_value && !line.empty() && line[0] == '$') {
            st->want_value = true;
            return "";
        }
        st->want_value = false;
        st->args.push_back(line);
        if (st->args.size() < st->expected) return "";
        st->expected = 0;
        std::string all;
        for (const auto& x : st->args) all += " " + x;
        if (st->args[0] == "AUTH" || st->args[0] == "HELLO") return "-WRONGPASS you said" + all + "\r\n";
        if (st->args[0] == "QUIT") return "+OK\r\n";
        if (st->args[0] == "PING") return "+PONG\r\n";
        return "-ERR unknown" + all + "\r\n";
    };
}

void redis_case(bool resp3, const std::string& user) {
    const std::string secret = "redis-secret-Pa55";
    asio::io_context io;
    line_server server(io, redis_echoing_server);
    registry reg(io.get_executor());
    redis::account a;
    a.server = test::loopback(server.port());
    a.client.cred = {user, secret};
    a.client.resp3 = resp3;
    a.pool = quick_failure();
    outputs out;
    redis::client c(reg);
    auto h = c.pool_for(a);
    h.pool().set_event_hook(out.hook());
    const auto r = test::run(io, c.command(a, {"GET", "k"}));
    CHECK_FALSE(r.ok());
    CHECK(r.ec == redis::errc::auth_failed);
    CHECK(r.detail.find("WRONGPASS") != std::string::npos);
    out.texts.push_back(r.to_string());
    out.texts.push_back(r.detail);
    out.texts.push_back(h.adapter().last_handshake_failure());
    out.add_pool(h.pool());
    out.add_registry(reg);
    CHECK(out.check_none_of(forms_of(user.empty() ? "default" : user, secret)) > 5);
    CHECK(r.detail.find("[redacted]") != std::string::npos);
}

}  // namespace

TEST_SUITE("no secrets") {

TEST_CASE("SMTP: a server echoing AUTH PLAIN, AUTH LOGIN and XOAUTH2 back: no form of the secret in any output") {
    SUBCASE("AUTH PLAIN") { smtp_case({"PLAIN"}, false); }
    SUBCASE("AUTH LOGIN") { smtp_case({"LOGIN"}, false); }
    SUBCASE("XOAUTH2 token") { smtp_case({}, true); }
}

TEST_CASE("IMAP: a server echoing LOGIN (quoted, literal) and AUTHENTICATE PLAIN: no form of the secret in any output") {
    SUBCASE("LOGIN, quoted string with \" and \\") { imap_case(imap::login_method::login, R"(pa"ss\w0rd-for-bob)"); }
    SUBCASE("LOGIN, literal (8-bit)") { imap_case(imap::login_method::login, "pässwörd-für-bob"); }
    SUBCASE("AUTHENTICATE PLAIN") { imap_case(imap::login_method::authenticate_plain, "plain-secret-for-bob"); }
}

TEST_CASE("Redis: a server echoing AUTH and HELLO 3 AUTH: no form of the secret in any output") {
    SUBCASE("AUTH password") { redis_case(false, ""); }
    SUBCASE("AUTH user password") { redis_case(false, "carol"); }
    SUBCASE("HELLO 3 AUTH") { redis_case(true, "carol"); }
}

}  // TEST_SUITE
