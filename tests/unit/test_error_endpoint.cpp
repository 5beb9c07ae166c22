// Error category and conditions, endpoint/identity formatting, event names, and the
// adapter registry.
#include <netpool/adapter.hpp>
#include <netpool/config.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/error.hpp>
#include <netpool/events.hpp>

#include <asio/error.hpp>
#if NETPOOL_HAS_TLS
#include <asio/ssl/error.hpp>
#endif

#include <doctest/doctest.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <unordered_set>

using netpool::errc;

namespace {

std::error_code ec(errc e) { return netpool::make_error_code(e); }

// Everything between the first and last enumerator, so a new value cannot miss a message.
constexpr int first_errc = static_cast<int>(errc::checkout_timeout);
constexpr int last_errc = static_cast<int>(errc::no_greeting);

struct fake_adapter {
    std::string name_ = "fake";
    std::string_view name() const { return name_; }
    asio::awaitable<std::error_code> handshake(netpool::connection&) { co_return std::error_code{}; }
    asio::awaitable<std::error_code> health_check(netpool::connection&) { co_return std::error_code{}; }
    asio::awaitable<std::error_code> reset(netpool::connection&) { co_return std::error_code{}; }
    asio::awaitable<void> close(netpool::connection&) { co_return; }
};
static_assert(netpool::protocol_adapter<fake_adapter>);

std::string invalid_argument_text(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<no throw>";
}

}  // namespace

TEST_SUITE("error") {

TEST_CASE("category name and messages") {
    CHECK(std::string(netpool::netpool_category().name()) == "netpool");
    CHECK(ec(errc::endpoint_down_refused).message() == "endpoint down (last cause: connection refused)");
    CHECK(ec(errc::endpoint_down_resolve).message() == "endpoint down (last cause: host name did not resolve)");
    for (int v = first_errc; v <= last_errc; ++v) {
        CAPTURE(v);
        const auto m = netpool::netpool_category().message(v);
        CHECK(!m.empty());
        CHECK(m.find("unknown") == std::string::npos);
    }
    CHECK(netpool::netpool_category().message(999).find("unknown") != std::string::npos);
    // errc converts implicitly, so it can be compared like any error code enum.
    std::error_code e = errc::pool_closed;
    CHECK(e == errc::pool_closed);
    CHECK(e.category() == netpool::netpool_category());
}

TEST_CASE("endpoint_down condition") {
    using netpool::condition;
    for (auto e : {errc::endpoint_down_refused, errc::endpoint_down_timeout, errc::endpoint_down_tls,
                   errc::endpoint_down_handshake, errc::endpoint_down_resolve, errc::endpoint_down_other}) {
        CAPTURE(ec(e).message());
        CHECK(ec(e) == condition::endpoint_down);
    }
    CHECK(ec(errc::connect_timeout) != condition::endpoint_down);
    CHECK(ec(errc::pool_exhausted) != condition::endpoint_down);
    CHECK(std::make_error_code(std::errc::connection_refused) != condition::endpoint_down);
    CHECK(std::string(netpool::netpool_condition_category().name()) == "netpool.condition");
    CHECK(netpool::make_error_condition(condition::timeout).message() == "timed out");
}

TEST_CASE("timeout condition") {
    using netpool::condition;
    for (auto e : {errc::checkout_timeout, errc::connect_timeout, errc::handshake_timeout, errc::operation_timeout}) {
        CAPTURE(ec(e).message());
        CHECK(ec(e) == condition::timeout);
    }
    // Failing fast because the endpoint is down is not waiting out a deadline.
    CHECK(ec(errc::endpoint_down_timeout) != condition::timeout);
    CHECK(ec(errc::pool_exhausted) != condition::timeout);
    CHECK(ec(errc::cancelled) != condition::timeout);
    // The OS's ETIMEDOUT, however it arrives.
    CHECK(std::make_error_code(std::errc::timed_out) == condition::timeout);
    CHECK(std::error_code(ETIMEDOUT, std::system_category()) == condition::timeout);
    // Asio 1.22 reports socket errors in its own "asio.system" category, which does not
    // map to std::errc; these two must work anyway.
    CHECK(std::string(std::error_code(asio::error::timed_out).category().name()) == "asio.system");
    CHECK(std::error_code(asio::error::timed_out) == condition::timeout);
    CHECK(std::error_code(asio::error::connection_refused) != condition::timeout);
    CHECK(std::error_code(asio::error::operation_aborted) != condition::timeout);
    CHECK(std::error_code{} != condition::timeout);
}

TEST_CASE("endpoint_down_for maps causes") {
    using netpool::endpoint_down_for;
    CHECK(endpoint_down_for(std::error_code(asio::error::connection_refused)) == errc::endpoint_down_refused);
    CHECK(endpoint_down_for(std::make_error_code(std::errc::connection_refused)) == errc::endpoint_down_refused);

    CHECK(endpoint_down_for(ec(errc::connect_timeout)) == errc::endpoint_down_timeout);
    CHECK(endpoint_down_for(ec(errc::handshake_timeout)) == errc::endpoint_down_timeout);
    CHECK(endpoint_down_for(ec(errc::operation_timeout)) == errc::endpoint_down_timeout);
    CHECK(endpoint_down_for(std::error_code(asio::error::timed_out)) == errc::endpoint_down_timeout);

    CHECK(endpoint_down_for(ec(errc::tls_verify_failed)) == errc::endpoint_down_tls);
    CHECK(endpoint_down_for(ec(errc::tls_handshake_failed)) == errc::endpoint_down_tls);
#if NETPOOL_HAS_TLS
    // Asio's TLS categories exist only with OpenSSL.
    CHECK(endpoint_down_for(std::error_code(asio::ssl::error::stream_truncated)) == errc::endpoint_down_tls);
    CHECK(endpoint_down_for(std::error_code(0x0A000086, asio::error::get_ssl_category())) == errc::endpoint_down_tls);
#endif

    CHECK(endpoint_down_for(ec(errc::handshake_rejected)) == errc::endpoint_down_handshake);
    CHECK(endpoint_down_for(ec(errc::protocol_error)) == errc::endpoint_down_handshake);

    CHECK(endpoint_down_for(std::error_code(asio::error::host_not_found)) == errc::endpoint_down_resolve);
    CHECK(endpoint_down_for(std::error_code(asio::error::host_not_found_try_again)) == errc::endpoint_down_resolve);
    CHECK(endpoint_down_for(std::error_code(asio::error::service_not_found)) == errc::endpoint_down_resolve);

    // eof lives in asio.misc and says nothing about name resolution.
    CHECK(endpoint_down_for(std::error_code(asio::error::eof)) == errc::endpoint_down_other);
    CHECK(endpoint_down_for(std::error_code(asio::error::connection_reset)) == errc::endpoint_down_other);
    CHECK(endpoint_down_for(ec(errc::connection_closed)) == errc::endpoint_down_other);
    CHECK(endpoint_down_for(ec(errc::adapter_exception)) == errc::endpoint_down_other);

    // Idempotent on values that already are endpoint_down.
    CHECK(endpoint_down_for(ec(errc::endpoint_down_tls)) == errc::endpoint_down_tls);
}

// A protocol's category that declares some of its values handshake failures, the way
// smtp::errc::auth_failed does, without linking the SMTP library into this test.
class fake_protocol_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "fake.protocol"; }
    std::string message(int v) const override { return "fake protocol error " + std::to_string(v); }
    std::error_condition default_error_condition(int v) const noexcept override {
        if (v == 1) return netpool::make_error_condition(netpool::condition::handshake_rejected);
        return {v, *this};
    }
};
const fake_protocol_category fake_protocol;

TEST_CASE("handshake_rejected condition and endpoint_down_for of protocol causes") {
    using netpool::condition;
    using netpool::endpoint_down_for;
    CHECK(ec(errc::handshake_rejected) == condition::handshake_rejected);
    CHECK(ec(errc::protocol_error) == condition::handshake_rejected);
    CHECK(ec(errc::connection_closed) != condition::handshake_rejected);
    CHECK(ec(errc::handshake_timeout) != condition::handshake_rejected);
    CHECK(ec(errc::endpoint_down_handshake) != condition::handshake_rejected);
    CHECK(std::error_code(asio::error::eof) != condition::handshake_rejected);
    CHECK(std::error_code{} != condition::handshake_rejected);
    CHECK(netpool::make_error_condition(condition::handshake_rejected).message().find("unknown") ==
          std::string::npos);

    const std::error_code auth_failed(1, fake_protocol);  // maps to handshake_rejected
    const std::error_code other(2, fake_protocol);        // does not
    CHECK(auth_failed == condition::handshake_rejected);
    CHECK(other != condition::handshake_rejected);
    CHECK(endpoint_down_for(auth_failed) == errc::endpoint_down_handshake);
    CHECK(endpoint_down_for(other) == errc::endpoint_down_other);
}

TEST_CASE("is_connection_fatal") {
    CHECK_FALSE(netpool::is_connection_fatal(std::error_code{}));
    CHECK(netpool::is_connection_fatal(ec(errc::operation_timeout)));
    CHECK(netpool::is_connection_fatal(ec(errc::protocol_error)));
    CHECK(netpool::is_connection_fatal(std::error_code(asio::error::eof)));
    CHECK(netpool::is_connection_fatal(std::error_code(asio::error::operation_aborted)));
}

}  // TEST_SUITE

TEST_SUITE("events") {

TEST_CASE("enum names match the enumerators") {
    using namespace netpool;
    CHECK(std::string(to_string(close_reason::broken)) == "broken");
    CHECK(std::string(to_string(close_reason::max_uses)) == "max_uses");
    CHECK(std::string(to_string(close_reason::drain)) == "drain");
    CHECK(std::string(to_string(checkout_result::ok)) == "ok");
    CHECK(std::string(to_string(checkout_result::endpoint_down)) == "endpoint_down");
    CHECK(std::string(to_string(checkout_result::closed)) == "closed");
    CHECK(std::string(to_string(event_kind::connect_failed)) == "connect_failed");
    CHECK(std::string(to_string(event_kind::endpoint_down)) == "endpoint_down");
    CHECK(std::string(to_string(event_kind::adapter_exception)) == "adapter_exception");
    CHECK(std::string(to_string(static_cast<close_reason>(99))) == "unknown");
    for (std::size_t i = 0; i < close_reason_count; ++i)
        CHECK(std::string(to_string(static_cast<close_reason>(i))) != "unknown");
    for (std::size_t i = 0; i < checkout_result_count; ++i)
        CHECK(std::string(to_string(static_cast<checkout_result>(i))) != "unknown");
}

}  // TEST_SUITE

TEST_SUITE("endpoint") {

TEST_CASE("tls_mode and endpoint strings") {
    using netpool::tls_mode;
    CHECK(std::string(netpool::to_string(tls_mode::none)) == "none");
    CHECK(std::string(netpool::to_string(tls_mode::implicit)) == "implicit");
    CHECK(std::string(netpool::to_string(tls_mode::starttls)) == "starttls");

    netpool::endpoint ep;
    ep.host = "mail.example";
    ep.port = 25;
    CHECK(ep.to_string() == "mail.example:25");
    ep.tls = tls_mode::starttls;
    CHECK(ep.to_string() == "mail.example:25+starttls");
    ep.host = "::1";
    ep.port = 993;
    ep.tls = tls_mode::implicit;
    CHECK(ep.to_string() == "[::1]:993+tls");
}

TEST_CASE("credential fingerprint") {
    const netpool::credentials alice{"alice", "s3cret"};
    // HMAC-SHA256 under a per-process random key (RFC 4231 vectors and the key: test_sha256.cpp).
    CHECK(alice.fingerprint().size() == 64);
    // Not the unsalted SHA-256("alice\0s3cret"), whose first 16 hex digits are 13ab6889a5081cba.
    CHECK(alice.fingerprint().find("13ab6889") == std::string::npos);
    CHECK(alice.fingerprint() == netpool::credentials{"alice", "s3cret"}.fingerprint());
    CHECK(alice.fingerprint() != netpool::credentials{"alice", "s3cret2"}.fingerprint());
    CHECK(alice.fingerprint() != netpool::credentials{"bob", "s3cret"}.fingerprint());
    // The separator keeps the user/secret boundary in the MAC.
    CHECK(netpool::credentials{"ab", "c"}.fingerprint() != netpool::credentials{"a", "bc"}.fingerprint());
    CHECK(netpool::credentials{}.fingerprint().empty());
    CHECK(netpool::credentials{"", "token"}.fingerprint().size() == 64);

    const netpool::credentials hexy{"u", "13ab"};  // a secret that looks like hex
    CHECK(hexy.fingerprint() != netpool::credentials{"u", "13ac"}.fingerprint());
    CHECK(alice.fingerprint().find("s3cret") == std::string::npos);
}

TEST_CASE("pool_key") {
    netpool::endpoint ep;
    ep.host = "mail.example";
    ep.port = 465;
    ep.tls = netpool::tls_mode::implicit;
    const netpool::credentials alice{"alice", "hunter2"};

    const auto k = netpool::pool_key::make(ep, alice);
    CHECK(k.host == "mail.example");
    CHECK(k.port == 465);
    CHECK(k.tls == netpool::tls_mode::implicit);
    CHECK(k.user == "alice");
    CHECK(k.credential_fingerprint == alice.fingerprint());
    // The endpoint only: no user, no secret, no fingerprint (the registry adds "#N").
    CHECK(k.to_string() == "mail.example:465+tls");

    ep.tls = netpool::tls_mode::none;
    ep.port = 25;
    CHECK(netpool::pool_key::make(ep, {}).to_string() == "mail.example:25");
    CHECK(netpool::pool_key::make(ep, {"", "token"}).to_string() == "mail.example:25");
    CHECK(netpool::pool_key::make(ep, {"", "token"}) != netpool::pool_key::make(ep, {}));

    // Same endpoint, different secret: different pools.
    ep.tls = netpool::tls_mode::implicit;
    ep.port = 465;
    const auto k2 = netpool::pool_key::make(ep, {"alice", "other"});
    CHECK(k != k2);
    CHECK((k < k2) != (k2 < k));
    CHECK(k == netpool::pool_key::make(ep, alice));
    CHECK(std::hash<netpool::pool_key>{}(k) == std::hash<netpool::pool_key>{}(netpool::pool_key::make(ep, alice)));

    std::unordered_set<netpool::pool_key> set{k, k2, netpool::pool_key::make(ep, alice)};
    CHECK(set.size() == 2);

    // Ordering is by host first (member order), so keys of one host sort together.
    auto a = k;
    auto b = k;
    a.host = "a.example";
    b.host = "b.example";
    b.port = 1;
    CHECK(a < b);
}

}  // TEST_SUITE

TEST_SUITE("adapter_registry") {

TEST_CASE("make, names, contains, errors") {
    netpool::adapter_registry reg;
    CHECK(reg.names().empty());
    CHECK(invalid_argument_text([&] { (void)reg.make("echo"); }) == "unknown protocol 'echo' (known: none)");

    reg.add("smtp", [](const netpool::adapter_params&) { return netpool::any_adapter(fake_adapter{"fake-smtp"}); });
    reg.add("echo", [](const netpool::adapter_params& p) {
        fake_adapter a;
        if (auto it = p.find("label"); it != p.end()) a.name_ = it->second;
        return netpool::any_adapter(a);
    });

    CHECK(reg.names() == std::vector<std::string>{"echo", "smtp"});
    CHECK(reg.contains("echo"));
    CHECK_FALSE(reg.contains("imap"));

    auto a = reg.make("echo", {{"label", "hello"}});
    REQUIRE(a);
    CHECK(a.name() == "hello");
    CHECK(a.target<fake_adapter>() != nullptr);
    CHECK(reg.make("smtp").name() == "fake-smtp");

    CHECK(invalid_argument_text([&] { (void)reg.make("x"); }) == "unknown protocol 'x' (known: echo, smtp)");
    CHECK(invalid_argument_text([&] { reg.add("echo", [](const netpool::adapter_params&) {
        return netpool::any_adapter(fake_adapter{});
    }); }).find("already registered") != std::string::npos);
    CHECK_THROWS_AS(reg.add("", [](const netpool::adapter_params&) { return netpool::any_adapter(fake_adapter{}); }),
                    std::invalid_argument);
    CHECK_THROWS_AS(reg.add("null", netpool::adapter_factory{}), std::invalid_argument);

    reg.add("broken", [](const netpool::adapter_params&) { return netpool::any_adapter{}; });
    CHECK_THROWS_AS((void)reg.make("broken"), std::logic_error);
}

TEST_CASE("global registry is one instance") {
    CHECK(&netpool::adapter_registry::global() == &netpool::adapter_registry::global());
}

}  // TEST_SUITE
