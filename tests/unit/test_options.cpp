// pool_options::validate() and the JSON reader/writer.
#include <netpool/options.hpp>
#include <netpool/options_json.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

using netpool::config_error;
using netpool::duration;
using netpool::pool_options;

namespace {

// The field named by the config_error that `f` throws, or "<no throw>".
std::string thrown_field(const std::function<void()>& f) {
    try {
        f();
    } catch (const config_error& e) {
        return e.field();
    }
    return "<no throw>";
}

std::string invalid_field(const std::function<void(pool_options&)>& change) {
    pool_options o;
    change(o);
    return thrown_field([&] { o.validate(); });
}

std::string json_error_field(std::string_view text) {
    return thrown_field([&] { (void)netpool::parse_pool_options(text); });
}

std::string json_error_what(std::string_view text) {
    try {
        (void)netpool::parse_pool_options(text);
    } catch (const config_error& e) {
        return e.what();
    }
    return "<no throw>";
}

}  // namespace

TEST_SUITE("options") {

TEST_CASE("defaults are valid") { CHECK_NOTHROW(pool_options{}.validate()); }

TEST_CASE("validate names each impossible field") {
    using o_t = pool_options&;
    CHECK(invalid_field([](o_t o) { o.size = 0; o.max_overflow = 0; }) == "size");
    CHECK(invalid_field([](o_t o) { o.max_overflow = std::numeric_limits<std::size_t>::max(); }) == "max_overflow");
    CHECK(invalid_field([](o_t o) { o.overflow_ttl = duration{-1}; }) == "overflow_ttl");
    CHECK(invalid_field([](o_t o) { o.order = static_cast<netpool::idle_order>(7); }) == "order");
    CHECK(invalid_field([](o_t o) { o.health_check_after_idle = duration{-1}; }) == "health_check_after_idle");
    CHECK(invalid_field([](o_t o) { o.keepalive_interval = duration{-1}; }) == "keepalive_interval");
    CHECK(invalid_field([](o_t o) { o.idle_timeout = duration{-1}; }) == "idle_timeout");
    CHECK(invalid_field([](o_t o) { o.max_lifetime = duration{-1}; }) == "max_lifetime");
    CHECK(invalid_field([](o_t o) { o.lease_deadline = duration{-1}; }) == "lease_deadline");
    CHECK(invalid_field([](o_t o) { o.backoff_max = duration{50}; }) == "backoff_max");  // < backoff_initial
    CHECK(invalid_field([](o_t o) { o.max_restarts = 0; }) == "max_restarts");

    SUBCASE("durations that must be positive reject zero and negatives") {
        const std::pair<const char*, duration pool_options::*> positive[] = {
            {"checkout_timeout", &pool_options::checkout_timeout},
            {"connect_timeout", &pool_options::connect_timeout},
            {"handshake_timeout", &pool_options::handshake_timeout},
            {"close_timeout", &pool_options::close_timeout},
            {"reset_timeout", &pool_options::reset_timeout},
            {"health_check_timeout", &pool_options::health_check_timeout},
            {"backoff_initial", &pool_options::backoff_initial},
            {"restart_period", &pool_options::restart_period},
            {"down_cooldown", &pool_options::down_cooldown},
        };
        for (const auto& [name, member] : positive) {
            CAPTURE(name);
            CHECK(invalid_field([m = member](o_t o) { o.*m = duration{0}; }) == name);
            CHECK(invalid_field([m = member](o_t o) { o.*m = duration{-5}; }) == name);
        }
    }

    SUBCASE("huge durations are valid: they saturate to \"never\"") {
        pool_options o;
        o.max_lifetime = duration::max();
        o.checkout_timeout = duration::max();
        o.backoff_max = duration::max();
        CHECK_NOTHROW(o.validate());
    }

    SUBCASE("jitter fractions, including NaN") {
        const double nan = std::nan("");
        CHECK(invalid_field([](o_t o) { o.lifetime_jitter = 0.51; }) == "lifetime_jitter");
        CHECK(invalid_field([](o_t o) { o.lifetime_jitter = -0.01; }) == "lifetime_jitter");
        CHECK(invalid_field([=](o_t o) { o.lifetime_jitter = nan; }) == "lifetime_jitter");
        CHECK(invalid_field([](o_t o) { o.backoff_jitter = 1.01; }) == "backoff_jitter");
        CHECK(invalid_field([=](o_t o) { o.backoff_jitter = nan; }) == "backoff_jitter");
    }
}

TEST_CASE("validate accepts odd but possible values") {
    pool_options o;
    o.size = 0;  // all-overflow pool: legal as long as size + max_overflow >= 1
    o.max_overflow = 1;
    o.keepalive_interval = duration{1};
    o.health_check_after_idle = duration{0};
    o.lifetime_jitter = 0.5;
    o.backoff_jitter = 1.0;
    o.backoff_max = o.backoff_initial;
    o.max_uses = 1;
    o.max_waiters = 0;
    o.max_restarts = 1;
    CHECK_NOTHROW(o.validate());
}

TEST_CASE("config_error message names the field") {
    pool_options o;
    o.connect_timeout = duration{0};
    try {
        o.validate();
        FAIL("no throw");
    } catch (const config_error& e) {
        CHECK(e.field() == "connect_timeout");
        CHECK(std::string(e.what()).starts_with("connect_timeout: "));
    }
}

TEST_CASE("parse a good document") {
    const auto o = netpool::parse_pool_options(R"({
        "size": 3, "max_overflow": 7, "lazy": true, "overflow_ttl": 250,
        "checkout_timeout": 1500, "max_waiters": 64, "order": "fifo",
        "lifetime_jitter": 0.25, "backoff_jitter": 1, "max_uses": 1000,
        "max_lifetime": 600000, "backoff_initial": 20, "backoff_max": 2000
    })");
    CHECK(o.size == 3);
    CHECK(o.max_overflow == 7);
    CHECK(o.lazy);
    CHECK(o.overflow_ttl == duration{250});
    CHECK(o.checkout_timeout == duration{1500});
    CHECK(o.max_waiters == 64);
    CHECK(o.order == netpool::idle_order::fifo);
    CHECK(o.lifetime_jitter == doctest::Approx(0.25));
    CHECK(o.backoff_jitter == doctest::Approx(1.0));
    CHECK(o.max_uses == 1000);
    CHECK(o.max_lifetime == duration{600000});
    CHECK(o.backoff_max == duration{2000});
    // Untouched fields keep their defaults.
    CHECK(o.connect_timeout == pool_options{}.connect_timeout);
    CHECK(netpool::parse_pool_options("{}").size == pool_options{}.size);
}

TEST_CASE("unknown fields are errors") {
    CHECK(json_error_field(R"({"size": 2, "max_overflw": 1})") == "/max_overflw");
    CHECK(json_error_what(R"({"max_overflw": 1})") == "/max_overflw: unknown field");
    // RFC 6901 escaping of '/' and '~' in the reported pointer.
    CHECK(json_error_field(R"({"a/b~c": 1})") == "/a~1b~0c");
}

TEST_CASE("wrong types name the field and the expectation") {
    CHECK(json_error_what(R"({"connect_timeout": "5s"})") ==
          "/connect_timeout: expected a non-negative integer (milliseconds)");
    CHECK(json_error_field(R"({"connect_timeout": -1})") == "/connect_timeout");
    CHECK(json_error_field(R"({"connect_timeout": 1.5})") == "/connect_timeout");
    CHECK(json_error_field(R"({"connect_timeout": 99999999999999999999})") == "/connect_timeout");
    CHECK(json_error_what(R"({"size": -3})") == "/size: expected a non-negative integer");
    CHECK(json_error_what(R"({"lazy": 1})") == "/lazy: expected true or false");
    CHECK(json_error_what(R"({"backoff_jitter": "half"})") == "/backoff_jitter: expected a number");
    CHECK(json_error_what(R"({"order": "random"})") == R"(/order: expected "lifo" or "fifo")");
    CHECK(json_error_what(R"({"order": 1})") == R"(/order: expected "lifo" or "fifo")");
    CHECK(json_error_what("[1, 2]") == "/: expected a JSON object of pool options");
}

TEST_CASE("validation errors carry the JSON pointer") {
    CHECK(json_error_what(R"({"size": 0, "max_overflow": 0})").starts_with("/size: "));
    CHECK(json_error_field(R"({"backoff_initial": 500, "backoff_max": 100})") == "/backoff_max");
    CHECK(json_error_field(R"({"lifetime_jitter": 0.9})") == "/lifetime_jitter");
    CHECK(json_error_field(R"({"max_restarts": 0})") == "/max_restarts");
}

TEST_CASE("bad JSON") {
    const auto what = json_error_what(R"({"size": 3,)");
    CHECK(json_error_field(R"({"size": 3,)") == "/");
    CHECK(what.starts_with("/: invalid JSON: "));
    CHECK(what.find("at byte ") != std::string::npos);
    CHECK(what.find("json.exception") == std::string::npos);
    CHECK(json_error_what("").starts_with("/: invalid JSON: "));
    // nlohmann reports a number too large for a double as out_of_range, not parse_error.
    CHECK(json_error_what(R"({"size": 1e400})") == "/: invalid JSON: number overflow parsing '1e400'");
}

TEST_CASE("duplicate fields are rejected") {
    CHECK(json_error_what(R"({"size": 3, "size": 30})") == "/size: duplicate field");
}

TEST_CASE("nested document: errors name the full pointer") {
    const auto doc = nlohmann::json::parse(R"({"pools": {"mail": {"size": 2, "max_overflow": 1, "idle_timeout": -1}}})");
    const auto& mail = doc.at("pools").at("mail");
    CHECK(thrown_field([&] { (void)netpool::parse_pool_options(mail, "/pools/mail"); }) == "/pools/mail/idle_timeout");

    auto fixed = mail;
    fixed["idle_timeout"] = 60000;
    const auto o = netpool::parse_pool_options(fixed, "/pools/mail");
    CHECK(o.size == 2);
    CHECK(o.idle_timeout == duration{60000});

    fixed["size"] = 0;
    fixed["max_overflow"] = 0;
    CHECK(thrown_field([&] { (void)netpool::parse_pool_options(fixed, "/pools/mail"); }) == "/pools/mail/size");
    CHECK(thrown_field([&] { (void)netpool::parse_pool_options(nlohmann::json(5), "/pools/mail"); }) == "/pools/mail");

    // Values built in code are signed integers in nlohmann::json; they must be accepted.
    nlohmann::json built = {{"size", 4}, {"checkout_timeout", 100}};
    CHECK(netpool::parse_pool_options(built).size == 4);
}

TEST_CASE("to_json round-trips") {
    pool_options o;
    o.size = 1;
    o.max_overflow = 0;
    o.lazy = true;
    o.order = netpool::idle_order::fifo;
    o.keepalive_interval = duration{12345};
    o.lifetime_jitter = 0.1;
    o.backoff_jitter = 0.3;
    o.max_uses = 1ULL << 40;
    o.down_cooldown = duration{1};

    const auto j = netpool::to_json(o);
    CHECK(j.at("order") == "fifo");
    CHECK(j.at("keepalive_interval") == 12345);
    CHECK(j.size() == 26);  // every field of pool_options

    const auto back = netpool::parse_pool_options(j.dump());
    CHECK(netpool::to_json(back) == j);
    CHECK(back.lifetime_jitter == o.lifetime_jitter);  // exact: shortest round-trip printing
    CHECK(back.max_uses == o.max_uses);
    CHECK(back.order == o.order);
    CHECK(netpool::to_json(pool_options{}) == netpool::to_json(netpool::parse_pool_options("{}")));
}

}  // TEST_SUITE
