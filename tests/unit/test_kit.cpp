// The adapter kit's pure parts, without sockets: base64 (OpenSSL's in a TLS build), the line
// parser the session drives, typed per-connection state, the compile-time adapter checks
// and the failure record (issue 11).
#include <netpool/adapter.hpp>
#include <netpool/base64.hpp>
#include <netpool/connection.hpp>
#include <netpool/error.hpp>
#include <netpool/kit/failure_record.hpp>
#include <netpool/kit/session.hpp>
#include <netpool/options.hpp>
#include <netpool/redact.hpp>
#include <netpool/sasl.hpp>
#include <netpool/secret.hpp>
#include <netpool/endpoint.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <cstdlib>

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using netpool::base64_decode;
using netpool::base64_encode;
using netpool::kit::line_parser;

TEST_CASE("base64: RFC 4648 vectors both ways, unpadded input, and refusals") {
    const std::vector<std::pair<std::string, std::string>> vectors = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, coded] : vectors) {
        CHECK(base64_encode(plain) == coded);
        CHECK(base64_decode(coded) == plain);
    }
    CHECK(base64_encode(std::string("\xff\xfe\x00", 3)) == "//4A");
    CHECK(base64_decode("//4A") == std::string("\xff\xfe\x00", 3));
    CHECK(base64_decode("Zm9vYg") == "foob");  // padding is optional
    CHECK(base64_decode("Zm9vYmE") == "fooba");
    CHECK_FALSE(base64_decode("Zm9v!"));       // outside the alphabet
    CHECK_FALSE(base64_decode("Zm9v Yg=="));   // whitespace too
    CHECK_FALSE(base64_decode("Z"));           // 6 bits cannot end a byte
    CHECK_FALSE(base64_decode("Zm9vY"));
    CHECK_FALSE(base64_decode("Zg=a"));        // padding only at the end
    CHECK_FALSE(base64_decode("Zg="));         // padding completes a quantum of 4
    CHECK_FALSE(base64_decode("Zg==="));
    // Every byte value, at every length modulo 3, round-trips.
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += 37) CHECK(base64_decode(base64_encode(all.substr(0, n))) == all.substr(0, n));
}

namespace {
/// Feeds `text` to `p` in pieces of `step` bytes, as reads from a socket would; returns the
/// lines completed, and the unconsumed tail after the last one in `rest`.
std::vector<std::string> lines_of(std::string_view text, std::size_t max, std::size_t step, std::error_code& ec) {
    std::vector<std::string> out;
    line_parser p(max);
    std::string pending;
    for (std::size_t at = 0; at < text.size(); at += step) {
        pending += text.substr(at, step);
        for (;;) {
            std::size_t used = 0;
            const auto st = p.feed(pending, used);
            if (st == line_parser::status::error) {
                ec = p.error();
                return out;
            }
            pending.erase(0, used);
            if (st == line_parser::status::need_more) break;
            out.push_back(p.take());
        }
    }
    return out;
}
}  // namespace

TEST_CASE("line_parser: CRLF and LF lines split at every byte; the limit holds before the end comes") {
    const std::string text = "+OK\r\n\r\nplain lf\nlast\r\n";
    for (std::size_t step = 1; step <= text.size(); ++step) {
        CAPTURE(step);
        std::error_code ec;
        const auto lines = lines_of(text, 64, step, ec);
        CHECK_FALSE(ec);
        CHECK(lines == std::vector<std::string>{"+OK", "", "plain lf", "last"});
    }
    std::error_code ec;
    CHECK(lines_of("12345678\r\n", 8, 1, ec).size() == 1);  // exactly the limit, CR not counted
    CHECK_FALSE(ec);
    lines_of("123456789\r\n", 8, 1, ec);
    CHECK(ec == netpool::errc::frame_too_large);
    // A line without end is refused once it is over the limit, not when it ends (never).
    line_parser p(8);
    std::size_t used = 0;
    CHECK(p.feed("1234567", used) == line_parser::status::need_more);
    CHECK(p.feed("89X", used) == line_parser::status::error);
    CHECK(p.error() == netpool::errc::frame_too_large);
}

namespace {
struct counted {
    static inline int alive = 0;
    int value;
    explicit counted(int v) : value(v) { ++alive; }
    ~counted() { --alive; }
    counted(const counted&) = delete;  // non-copyable state is fine (std::any refused it)
    counted& operator=(const counted&) = delete;
};
}  // namespace

TEST_CASE("connection state: typed, replaced, destroyed, and a wrong type is refused by name") {
    asio::io_context io;
    const netpool::endpoint ep;
    {
        netpool::connection c(io.get_executor(), ep, nullptr, 1);
        CHECK_FALSE(c.has_state());
        CHECK(c.state_if<counted>() == nullptr);
        CHECK_THROWS_AS(c.state_as<counted>(), std::logic_error);
        auto& s = c.emplace_state<counted>(7);
        CHECK(counted::alive == 1);
        CHECK(&c.state_as<counted>() == &s);
        CHECK(c.state_if<int>() == nullptr);  // another adapter's state is not ours
        c.emplace_state<counted>(8);          // replaces: the first one is gone
        CHECK(counted::alive == 1);
        CHECK(c.state_as<counted>().value == 8);
        const netpool::connection& cc = c;
        CHECK(cc.state_if<counted>()->value == 8);
        c.clear_state();
        CHECK(counted::alive == 0);
        c.emplace_state<counted>(9);
    }
    CHECK(counted::alive == 0);  // the connection's end destroys its state
}

namespace {
// Adapters with one defect each; check_adapter's static_asserts name them (a compile-fail
// test, tests/compile/, checks the messages). Here: which checks see the defect.
struct good {
    std::string_view name() const { return "good"; }
    asio::awaitable<std::error_code> handshake(netpool::connection&) const;
    asio::awaitable<std::error_code> health_check(netpool::connection&) const;
    asio::awaitable<std::error_code> reset(netpool::connection&) const;
    asio::awaitable<void> close(netpool::connection&) const;
    bool needs_reset(const netpool::connection&) const { return false; }
};
struct no_health_check {
    std::string_view name() const { return "x"; }
    asio::awaitable<std::error_code> handshake(netpool::connection&) const;
    asio::awaitable<std::error_code> reset(netpool::connection&) const;
    asio::awaitable<void> close(netpool::connection&) const;
};
struct mutable_needs_reset : no_health_check {
    asio::awaitable<std::error_code> health_check(netpool::connection&) const;
    bool needs_reset(const netpool::connection&) { return false; }  // not const: would be ignored
};
struct overloaded_needs_reset : no_health_check {
    asio::awaitable<std::error_code> health_check(netpool::connection&) const;
    bool needs_reset(netpool::connection&) const { return false; }  // takes a non-const connection
};
struct no_needs_reset : no_health_check {
    asio::awaitable<std::error_code> health_check(netpool::connection&) const;
};
}  // namespace

TEST_CASE("adapter checks: each hook checked apart; a needs_reset of the wrong signature is caught") {
    static_assert(netpool::check_adapter<good>());
    static_assert(netpool::check_adapter<no_needs_reset>());  // needs_reset is optional
    static_assert(!netpool::protocol_adapter<no_health_check>);
    static_assert(!netpool::detail::adapter_has_health_check<no_health_check>);
    static_assert(netpool::detail::adapter_has_handshake<no_health_check>);
    static_assert(netpool::protocol_adapter<mutable_needs_reset>);  // the concept alone lets it through...
    static_assert(netpool::detail::adapter_names_needs_reset<mutable_needs_reset>);
    static_assert(!netpool::has_needs_reset<mutable_needs_reset>);  // ...check_adapter refuses it
    static_assert(netpool::detail::adapter_names_needs_reset<overloaded_needs_reset>);
    static_assert(!netpool::has_needs_reset<overloaded_needs_reset>);
    static_assert(!netpool::detail::adapter_names_needs_reset<no_needs_reset>);
    CHECK(true);
}

TEST_CASE("failure_record: redacted on the way in, stage said once, shared by copies") {
    netpool::kit::failure_record<int> a;
    const auto b = a;  // an adapter's copy (the pool's) shares the record
    netpool::redactor r;
    r.add_credential("bob", "hunter2-secret");
    a.record(r, "AUTH PLAIN", "535 bad password hunter2-secret for " + base64_encode("hunter2-secret"), 535);
    CHECK(b.text() == "AUTH PLAIN: 535 bad password [redacted] for [redacted]");
    CHECK(b.detail() == 535);
    a.record(r, "LOGIN", "LOGIN: a2 NO failed");
    CHECK(b.text() == "LOGIN: a2 NO failed");
    netpool::kit::failure_record<> other;
    CHECK(other.text().empty());
}

TEST_CASE("SASL messages: RFC 4616 PLAIN and XOAUTH2, built once for every protocol and the redactor") {
    CHECK(netpool::sasl::plain_response("tim", "tanstaaftanstaaf") == "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");  // RFC 4616 4
    CHECK(netpool::sasl::plain_message("a", "u", "p") == std::string("a\0u\0p", 5));
    CHECK(netpool::sasl::xoauth2_message("me@x", "tok") == "user=me@x\x01" "auth=Bearer tok\x01\x01");
    CHECK(base64_decode(netpool::sasl::xoauth2_response("me@x", "tok")) == netpool::sasl::xoauth2_message("me@x", "tok"));
    netpool::redactor r;
    r.add_credential("u", "secret-pw");
    for (const auto& form : {netpool::sasl::plain_response("u", "secret-pw"), netpool::sasl::xoauth2_response("u", "secret-pw")})
        CHECK(r("said " + form) == "said [redacted]");
}

TEST_CASE("adapter parameters: booleans, counts and secrets from the environment, errors naming the key") {
    CHECK(netpool::param_bool("k", "yes"));
    CHECK_FALSE(netpool::param_bool("k", "0"));
    CHECK(netpool::param_count("k", "42") == 42);
    CHECK(netpool::param_count("k", "10", 10) == 10);
    const auto field = [](auto f) {
        try {
            f();
        } catch (const netpool::config_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(field([] { netpool::param_bool("pipelining", "maybe"); }).find("pipelining") != std::string::npos);
    CHECK(field([] { netpool::param_count("db", "-1"); }).find("db") != std::string::npos);
    CHECK(field([] { netpool::param_count("db", "11", 10); }).find("from 0 to 10") != std::string::npos);
    CHECK(field([] { netpool::param_count("db", ""); }) != "no error");
    ::setenv("NETPOOL_TEST_KIT_SECRET", "s3cret", 1);
    CHECK(netpool::param_secret_from_env("password_env", "NETPOOL_TEST_KIT_SECRET") == "s3cret");
    const auto missing = field([] { netpool::param_secret_from_env("password_env", "NETPOOL_TEST_SURELY_UNSET"); });
    CHECK(missing.find("password_env") != std::string::npos);
    CHECK(missing.find("NETPOOL_TEST_SURELY_UNSET") != std::string::npos);
}

TEST_CASE("secret: copies share one buffer; what it is built from and what is built from it is wiped") {
    const netpool::secret a("hunter2-hunter2-hunter2");
    const netpool::secret b = a;  // a copy of credentials, options, an account...
    CHECK(b.view() == "hunter2-hunter2-hunter2");
    CHECK(a.view().data() == b.view().data());  // ...holds no second copy of the bytes
    CHECK(a == b);
    CHECK_FALSE(a == netpool::secret("hunter2-hunter2-hunter3"));
    CHECK(netpool::secret().empty());
    CHECK(a.find('2') == 6);

    // Built from an rvalue string: that string's buffer is overwritten.
    std::string source(40, 'y');
    const char* bytes = source.data();
    const netpool::secret from_source(std::move(source));
    CHECK(from_source.size() == 40);
    CHECK(std::all_of(bytes, bytes + 40, [](char c) { return c == '\0'; }));

    // A wiped_string overwrites its whole buffer when cleared (and when destroyed).
    netpool::wiped_string w(std::string(64, 'z'));
    const char* p = w.s().data();
    const std::size_t capacity = w.s().capacity();
    w.clear();
    CHECK(std::all_of(p, p + capacity, [](char c) { return c == '\0'; }));
    const auto joined = netpool::wiped_concat({"AUTH PLAIN ", "abc", "\r\n"});
    CHECK(joined.s() == "AUTH PLAIN abc\r\n");

    // Credentials keep their old use: assigned from strings, compared by fingerprint.
    netpool::credentials c{"u", "pw"};
    c.secret = std::string("pw2");
    CHECK(c.secret.view() == "pw2");
    CHECK(c.fingerprint() == netpool::credentials{"u", "pw2"}.fingerprint());
}
