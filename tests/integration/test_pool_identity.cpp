// Issue 13, item 2: what a keyed pool's identity reveals. Everything a reader of metrics
// or events sees (the pool's name, events, stats JSON, Prometheus text) must hold neither
// the password, nor any hex prefix of SHA-256(user '\0' password) (which an offline
// guesser could test passwords against), nor the user name unless the registry was told
// to label pools with it. Against netpool's echo server on loopback.
#include "support.hpp"

#include <netpool/netpool.hpp>
#include <netpool/detail/sha256.hpp>
#include <netpool/echo/adapter.hpp>

#include <asio/io_context.hpp>

#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <vector>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;

namespace {

pool_options small() {
    pool_options o;
    o.size = 1;
    o.max_overflow = 1;
    o.connect_timeout = 2000ms;
    o.handshake_timeout = 2000ms;
    return o;
}

/// Every output path of a registry's keyed pools, gathered as text.
struct observed {
    std::mutex mu;
    std::vector<std::string> names;
    std::vector<std::string> events;  // the pool field of every event seen
    std::string json;
    std::string prometheus;

    event_hook hook() {
        return [this](const event& e) {
            std::lock_guard lk(mu);
            events.emplace_back(e.pool);
        };
    }
    std::string all() {
        std::lock_guard lk(mu);
        std::string out = json + '\n' + prometheus + '\n';
        for (const auto& n : names) out += n + '\n';
        for (const auto& e : events) out += e + '\n';
        return out;
    }
};

/// Hex of SHA-256(user '\0' password): the old fingerprint was its first 16 digits.
std::string unsalted_hash_hex(const std::string& user, std::string_view password) {
    detail::sha256 h;
    h.update(user);
    h.update(std::string_view("\0", 1));
    h.update(password);
    const auto d = h.finish();
    return detail::to_hex(d.data(), d.size());
}

/// Fails if `text` holds the password or any prefix of 6 or more hex digits of the
/// unsalted hash (6: shorter strings of digits turn up in ports and counters by chance).
void check_no_credential_material(const std::string& text, const std::string& user, std::string_view password) {
    CHECK_MESSAGE(text.find(password) == std::string::npos, "the password is in the output");
    const std::string h = unsalted_hash_hex(user, password);
    for (std::size_t n = 6; n <= h.size(); ++n) {
        if (text.find(h.substr(0, n)) != std::string::npos) {
            FAIL_CHECK("a " << n << "-digit prefix of SHA-256(user '\\0' password) is in the output");
            break;
        }
    }
}

/// Three keyed pools (alice with two passwords, bob) through `reg`; each does one echo
/// round trip so that checkout/checkin events happen too. Returns the pools.
std::vector<std::shared_ptr<pool>> exercise(registry& reg, asio::io_context& ioc, std::uint16_t port, observed& out,
                                            const std::vector<credentials>& identities) {
    auto make = [] { return any_adapter(echo::adapter{}); };
    std::vector<std::shared_ptr<pool>> pools;
    for (const auto& c : identities) {
        auto p = reg.pool_for(test::loopback(port), c, make, small());
        p->set_event_hook(out.hook());
        pools.push_back(p);
        out.names.push_back(p->name());
    }
    test::run(ioc, [&]() -> awaitable<void> {
        for (auto& p : pools) {
            auto [ec, l] = co_await p->checkout(5s);
            REQUIRE_FALSE(ec);
            std::string reply;
            CHECK_FALSE(co_await echo::adapter{}.request(*l, "ping", reply));
            CHECK(reply == "ping");
        }
    }());
    out.json = to_json(reg.stats());
    out.prometheus = to_prometheus(reg.stats());
    return pools;
}

}  // namespace

TEST_CASE("identity: a keyed pool's name, events, stats JSON and Prometheus text hold no credential material") {
    test::server_thread srv;
    asio::io_context ioc;
    registry reg(ioc.get_executor());
    observed out;
    const credentials alice{"alice", "correct-horse-battery"};
    const credentials alice_new_pw{"alice", "staple-2026"};
    const credentials bob{"bob", "bobs-own-secret"};
    auto pools = exercise(reg, ioc, srv.port(), out, {alice, alice_new_pw, bob});

    // Two passwords for one user still mean two pools, with different names.
    CHECK(pools[0] != pools[1]);
    CHECK(pools[0]->name() != pools[1]->name());
    CHECK(pools[0] != pools[2]);
    // The same identity again is the same pool.
    CHECK(reg.pool_for(test::loopback(srv.port()), alice, [] { return any_adapter(echo::adapter{}); }, small()) == pools[0]);

    // Default naming: the endpoint and a per-registry sequence number.
    const std::string ep = test::loopback(srv.port()).to_string();
    CHECK(pools[0]->name() == ep + "#1");
    CHECK(pools[1]->name() == ep + "#2");
    CHECK(pools[2]->name() == ep + "#3");

    const std::string text = out.all();
    INFO(text);
    CHECK(!out.events.empty());
    CHECK(out.json.find(ep + "#1") != std::string::npos);
    CHECK(out.prometheus.find(ep + "#3") != std::string::npos);
    for (const auto& c : {alice, alice_new_pw, bob}) check_no_credential_material(text, c.user, c.secret);
    // Not opted in: no user names either.
    CHECK(text.find("alice") == std::string::npos);
    CHECK(text.find("bob") == std::string::npos);
}

TEST_CASE("identity: label_with_user puts the user name, and only that, into the name") {
    test::server_thread srv;
    asio::io_context ioc;
    registry_options ro;
    ro.label_with_user = true;
    registry reg(ioc.get_executor(), ro);
    observed out;
    const credentials alice{"alice", "correct-horse-battery"};
    const credentials alice_new_pw{"alice", "staple-2026"};
    auto pools = exercise(reg, ioc, srv.port(), out, {alice, alice_new_pw});

    const std::string ep = test::loopback(srv.port()).to_string();
    CHECK(pools[0]->name() == "alice@" + ep + "#1");
    CHECK(pools[1]->name() == "alice@" + ep + "#2");
    const std::string text = out.all();
    INFO(text);
    CHECK(out.prometheus.find("alice@" + ep + "#2") != std::string::npos);
    for (const auto& c : {alice, alice_new_pw}) check_no_credential_material(text, c.user, c.secret);
}

TEST_CASE("identity: a secret-only identity (a token) is named like any other") {
    test::server_thread srv;
    asio::io_context ioc;
    registry reg(ioc.get_executor());
    observed out;
    const credentials token{"", "tok-4c9f0e77"};
    auto pools = exercise(reg, ioc, srv.port(), out, {token, credentials{}});
    CHECK(pools[0] != pools[1]);
    const std::string text = out.all();
    INFO(text);
    check_no_credential_material(text, token.user, token.secret);
}
