// Redis end to end: the adapter and the client against a real redis-server (a private
// instance per test, on loopback, on a free port, no persistence) and against a scripted
// misbehaving server (tests/servers/bad_redis_server.py). redis-server comes from the Debian
// package redis-server (scripts/test installs it). Without it the suite exits 77 (skipped),
// unless CI is set: then it fails.
#include "../integration/support.hpp"
#include "../smtp/servers.hpp"

#include <netpool/netpool.hpp>
#include <netpool/redis/adapter.hpp>
#include <netpool/redis/client.hpp>
#include <netpool/redis/error.hpp>

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <unistd.h>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;
namespace fs = std::filesystem;

namespace {

const std::string redis_server = "/usr/bin/redis-server";
// Distinctive, so that a leak into any message is easy to find.
const std::string password = "Redis-netpool-xyzzy s3cret";
const std::string wrong_password = "Wr0ng-redis-netpool-plugh";

std::string new_dir(const std::string& label) {
    static std::atomic<int> n{0};
    const fs::path p = fs::path(test::temp_dir()) / (label + '-' + std::to_string(++n));
    fs::create_directories(p);
    return p.string();
}

/// A private redis-server in the foreground (so that nothing outlives the test), killable
/// and restartable on the same port.
class redis_instance {
public:
    explicit redis_instance(std::vector<std::string> extra = {}) : extra_(std::move(extra)) { start(); }

    std::uint16_t port() const noexcept { return port_; }

    void start() {
        if (port_ == 0) port_ = test::free_port();
        std::vector<std::string> argv{redis_server, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--daemonize", "no",
                                      "--dir", dir_, "--logfile", dir_ + "/redis.log"};
        argv.insert(argv.end(), extra_.begin(), extra_.end());
        proc_ = std::make_unique<test::child_process>(argv, "redis-server", false);
        REQUIRE_MESSAGE(test::wait_listening(port_, 10s), "redis-server did not listen: " << log());
    }
    /// As if the machine lost the process: no goodbye to its clients beyond the kernel's FIN.
    void kill9() {
        ::kill(proc_->pid(), SIGKILL);
        proc_->stop();
        proc_.reset();
    }
    std::string log() const { return test::read_file(dir_ + "/redis.log"); }

private:
    std::vector<std::string> extra_;
    std::string dir_ = new_dir("redis");
    std::uint16_t port_ = 0;
    std::unique_ptr<test::child_process> proc_;
};

/// The scripted misbehaving server.
test::child_process bad_server(const std::string& scenario) {
    return test::child_process({"/usr/bin/python3", test::source_dir() + "/tests/servers/bad_redis_server.py",
                                "--scenario", scenario},
                               "bad_redis_server " + scenario);
}

redis::account account_for(std::uint16_t port) {
    redis::account a;
    a.server.host = "127.0.0.1";
    a.server.port = port;
    return a;
}

/// Runs one command through the client (the awaitable made in its own statement: no
/// temporary lives across the suspension).
awaitable<redis::result> run_command(const redis::client& cl, const redis::account& a, std::vector<std::string> args) {
    auto op = cl.command(a, std::move(args));
    co_return co_await std::move(op);
}

/// Spawns `n` coroutines made by `make(i)` on `ioc` and runs it until all have finished, or
/// fails the test after `guard`.
template <class Make> void run_all(asio::io_context& ioc, std::size_t n, Make make, std::chrono::milliseconds guard) {
    std::size_t left = n;
    std::exception_ptr failure;
    ioc.restart();
    for (std::size_t i = 0; i < n; ++i)
        asio::co_spawn(ioc, make(i), [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--left == 0) ioc.stop();  // the pools' idle workers would keep it running
        });
    ioc.run_for(guard);
    REQUIRE_MESSAGE(left == 0, left << " of " << n << " coroutines still running after " << guard.count() << " ms");
    if (failure) std::rethrow_exception(failure);
}

/// `callers` coroutines each send `per_caller` INCR of `key` through `cl`, all run to the end
/// on `ioc` (or the test fails after `guard`). Returns the failures and the first of them.
std::pair<std::size_t, std::string> incr_load(asio::io_context& ioc, const redis::client& cl, const redis::account& a,
                                              std::size_t callers, int per_caller, const std::string& key,
                                              std::chrono::milliseconds guard) {
    std::size_t failures = 0;
    std::string first;
    run_all(
        ioc, callers,
        [&](std::size_t) -> awaitable<void> {
            for (int i = 0; i < per_caller; ++i) {
                std::vector<std::string> incr{"INCR", key};
                const auto r = co_await run_command(cl, a, std::move(incr));
                if (!r.ok() && failures++ == 0) first = r.to_string();
            }
        },
        guard);
    return {failures, first};
}

/// Closes the pools and lets their goodbyes (QUIT) and drains finish before `ioc` goes.
void shut_down(asio::io_context& ioc, std::optional<registry>& reg) {
    reg.reset();
    ioc.restart();
    ioc.run_for(3s);
}

awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::use_awaitable);
}

std::uint64_t broken_closes(const pool& p) {
    return p.stats().closes[static_cast<std::size_t>(close_reason::broken)];
}

bool typed(const std::error_code& ec) {
    return ec.category() == netpool_category() || ec.category() == redis::redis_category() ||
           ec.category() == std::system_category();
}

}  // namespace

TEST_CASE("200 coroutines x 500 INCR through one pool give exactly 100000") {
    redis_instance srv;
    asio::io_context ioc;
    std::optional<registry> reg(std::in_place, ioc.get_executor());
    const redis::client cl(*reg);
    auto a = account_for(srv.port());
    a.pool.size = 8;  // every other option as it comes

    const auto [failures, first_failure] = incr_load(ioc, cl, a, 200, 500, "counter", 300s);
    CHECK_MESSAGE(failures == 0, first_failure);
    const auto r = test::run(ioc, run_command(cl, a, {"GET", "counter"}));
    REQUIRE(r.ok());
    CHECK(r.value.type == redis::reply_type::bulk_string);
    CHECK(r.value.str == "100000");
    const auto st = cl.pool_for(a).pool().stats();
    CHECK(st.connects_ok <= st.size + st.max_overflow);
    CHECK(broken_closes(cl.pool_for(a).pool()) == 0);
    shut_down(ioc, reg);
}

TEST_CASE("redis killed and restarted mid-run: typed errors, nothing hangs, then every command succeeds") {
    redis_instance srv;
    test::io_threads io(1);
    std::optional<registry> reg(std::in_place, io.executor());
    const redis::client cl(*reg);
    auto a = account_for(srv.port());
    a.pool.size = 4;

    // phase 0: before the kill; 1: server down or coming back; 2: the restarted server is
    // listening (commands go to key "after"); 3: one has succeeded since: all must.
    std::atomic<int> phase{0};
    std::atomic<std::size_t> ok_before{0}, ok_after{0}, failed_after_recovery{0}, running{0};
    std::atomic<long long> longest_ms{0};
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::map<std::string, std::size_t> errors;  // what callers saw, by message
    bool all_typed = true;

    const auto worker = [&]() -> awaitable<void> {
        while (!stop) {
            const int ph = phase;
            const auto t0 = std::chrono::steady_clock::now();
            std::vector<std::string> incr{"INCR", ph >= 2 ? "after" : "before"};
            const auto r = co_await run_command(cl, a, std::move(incr));
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
            if (ms.count() > longest_ms) longest_ms = ms.count();
            if (r.ok()) {
                if (ph >= 2) ++ok_after;
                else ++ok_before;
                int recovering = 2;
                if (ph == 2) phase.compare_exchange_strong(recovering, 3);
                continue;
            }
            {
                std::lock_guard lk(mu);
                ++errors[r.ec.category().name() + std::string(": ") + r.ec.message()];
                all_typed = all_typed && typed(r.ec);
            }
            if (ph == 3) ++failed_after_recovery;
            co_await pause(20ms);  // a caller's own retry pace while the server is away
        }
    };
    // However the test ends, the callers stop before what they use goes.
    struct stopper {
        std::atomic<bool>& stop;
        std::atomic<std::size_t>& running;
        ~stopper() {
            stop = true;
            test::wait_for([&] { return running == 0; }, 30s);
        }
    } stop_callers{stop, running};
    const auto summary = [&] {
        std::lock_guard lk(mu);
        std::string seen;
        for (const auto& [what, n] : errors) seen += "\n  " + std::to_string(n) + " x " + what;
        const auto st = cl.pool_for(a).pool().stats();
        return "errors:" + seen + "\nlongest call " + std::to_string(longest_ms) + " ms; ok before " +
               std::to_string(ok_before) + ", after " + std::to_string(ok_after) + "; pool: idle " +
               std::to_string(st.idle) + ", leased " + std::to_string(st.leased) + ", connecting " +
               std::to_string(st.connecting) + ", waiters " + std::to_string(st.waiters) + ", down " +
               std::to_string(st.endpoint_down) + "; last failure " + cl.pool_for(a).pool().last_failure().message();
    };
    for (int i = 0; i < 20; ++i) {
        ++running;
        asio::co_spawn(io.executor(), worker(), [&](std::exception_ptr) { --running; });
    }

    REQUIRE(test::wait_for([&] { return ok_before >= 2000; }, 60s));
    phase = 1;
    srv.kill9();
    std::this_thread::sleep_for(1s);  // callers meet a dead server for a while
    srv.start();
    phase = 2;
    REQUIRE_MESSAGE(test::wait_for([&] { return phase == 3; }, 60s), "no command succeeded after the restart; " << summary());
    const std::size_t at_recovery = ok_after;
    REQUIRE(test::wait_for([&] { return ok_after >= at_recovery + 2000; }, 60s));
    stop = true;
    REQUIRE_MESSAGE(test::wait_for([&] { return running == 0; }, 30s), "callers still running: one hangs");

    std::lock_guard lk(mu);
    std::string seen;
    std::size_t failures = 0;
    for (const auto& [what, n] : errors) {
        seen += "\n  " + std::to_string(n) + " x " + what;
        failures += n;
    }
    MESSAGE("errors while the server was away:" << seen << "\nlongest call " << longest_ms.load() << " ms");
    CHECK(failures > 0);  // the kill was noticed
    CHECK(all_typed);
    CHECK(failed_after_recovery == 0);
    CHECK(longest_ms < 20000);  // checkout_timeout + command_timeout at most: nothing hung

    // Every INCR of "after" that succeeded ran once on the new server, and only those.
    const auto check = test::run_on(io.executor(), run_command(cl, a, {"GET", "after"}));
    REQUIRE(check.ok());
    CHECK(check.value.str == std::to_string(ok_after.load()));

    reg.reset();
    std::this_thread::sleep_for(200ms);  // the pools' QUITs
    io.stop();
}

TEST_CASE("redis restarted while the pool sits idle: the dead connections are replaced before a command is sent") {
    redis_instance srv;
    asio::io_context ioc;
    std::optional<registry> reg(std::in_place, ioc.get_executor());
    const redis::client cl(*reg);
    auto a = account_for(srv.port());
    a.pool.size = 4;

    const auto batch = [&] {
        const auto [failures, first] = incr_load(ioc, cl, a, 8, 50, "n", 60s);
        CHECK_MESSAGE(failures == 0, first);
    };
    batch();
    const std::size_t idle = cl.pool_for(a).pool().stats().idle;  // overflow ones closed on return
    srv.kill9();
    srv.start();
    // Every pooled connection is dead now, which only a read shows. INCR must not be sent
    // on one (its reply would never come, and a retry might count twice): none fails.
    batch();
    const auto r = test::run(ioc, run_command(cl, a, {"GET", "n"}));
    CHECK(r.value.str == "400");
    CHECK(idle == a.pool.size);
    // Each dead one discarded unused, nothing sent on it (the counter is exact, so a command
    // on a dead connection would have shown as a failure). A connection whose connect the
    // old server's kernel accepted while the batch ended is dead too, and is discarded the
    // same way: more than `idle` may be.
    CHECK(broken_closes(cl.pool_for(a).pool()) >= idle);
    shut_down(ioc, reg);
}

TEST_CASE("redis restarted: a connection opened at start and never leased is checked like a used one") {
    // The pool opens its base connections at start (lazy = false). Those a burst never
    // reached have served no lease, but they sat idle as long as the others: after a
    // restart they are just as dead.
    redis_instance srv;
    asio::io_context ioc;
    std::optional<registry> reg(std::in_place, ioc.get_executor());
    const redis::client cl(*reg);
    auto a = account_for(srv.port());
    a.pool.size = 4;

    auto r = test::run(ioc, run_command(cl, a, {"INCR", "m"}));
    REQUIRE(r.ok());
    const auto& p = cl.pool_for(a).pool();
    for (int i = 0; i < 1000 && p.stats().idle < a.pool.size; ++i) {
        ioc.restart();
        ioc.run_for(10ms);
    }
    REQUIRE(p.stats().idle == a.pool.size);
    srv.kill9();
    srv.start();
    for (int i = 0; i < 6; ++i) {
        r = test::run(ioc, run_command(cl, a, {"INCR", "m"}));
        CHECK_MESSAGE(r.ok(), "INCR " << i << " after the restart: " << r.to_string());
    }
    r = test::run(ioc, run_command(cl, a, {"GET", "m"}));
    CHECK(r.value.str == "6");
    CHECK(broken_closes(p) == a.pool.size);  // each dead one discarded before anything was sent on it
    shut_down(ioc, reg);
}

TEST_CASE("a malformed reply and an oversized reply: a clear error, the connection discarded") {
    for (const std::string scenario : {"malformed", "oversized"}) {
        CAPTURE(scenario);
        auto bad = bad_server(scenario);
        asio::io_context ioc;
        std::optional<registry> reg(std::in_place, ioc.get_executor());
        const redis::client cl(*reg);
        auto a = account_for(bad.port());
        a.pool.size = 1;
        a.client.limits.max_bulk = 1024 * 1024;

        auto r = test::run(ioc, run_command(cl, a, {"SET", "k", "v"}));
        CHECK(r.ok());
        r = test::run(ioc, run_command(cl, a, {"GET", "k"}));
        CHECK(r.stage == "command");
        if (scenario == "malformed") {
            CHECK(r.ec == errc::protocol_error);
            CHECK(r.detail.find("unknown type byte 0x3f") != std::string::npos);
        } else {
            CHECK(r.ec == errc::frame_too_large);
            CHECK(r.detail.find("1000000000 bytes exceeds max_bulk (1048576)") != std::string::npos);
        }
        MESSAGE(r.to_string());
        const auto& p = cl.pool_for(a).pool();
        ioc.restart();
        ioc.run_for(100ms);  // the worker closes the discarded connection
        CHECK(broken_closes(p) == 1);
        // The pool carries on with a new connection.
        r = test::run(ioc, run_command(cl, a, {"SET", "k", "v"}));
        CHECK(r.ok());
        CHECK(p.stats().connects_ok == 2);
        shut_down(ioc, reg);
    }
}

TEST_CASE("AUTH: a wrong password is auth_failed with the server's words and no password; ACL user and SELECT") {
    redis_instance srv({"--requirepass", password, "--user", "alice", "on", ">" + password, "~*", "&*", "+@all"});
    asio::io_context ioc;
    std::optional<registry> reg(std::in_place, ioc.get_executor());
    const redis::client cl(*reg);

    for (const std::string user : {"", "alice"}) {
        CAPTURE(user);
        auto bad = account_for(srv.port());
        bad.client.cred = {user, wrong_password};
        bad.pool.size = 1;
        const auto r = test::run(ioc, run_command(cl, bad, {"PING"}), 30s);
        CHECK(r.stage == "checkout");
        CHECK(r.ec == redis::errc::auth_failed);
        CHECK(r.ec == condition::handshake_rejected);
        CHECK(r.detail.find("AUTH: -WRONGPASS") != std::string::npos);
        const std::string text = r.to_string();
        MESSAGE(text);
        CHECK(text.find(wrong_password) == std::string::npos);
        CHECK(text.find(password) == std::string::npos);
        CHECK(cl.pool_for(bad).adapter().last_handshake_failure().find(wrong_password) == std::string::npos);
    }

    // No credentials: the server refuses the command itself, a result, not a broken connection.
    auto none = account_for(srv.port());
    auto r = test::run(ioc, run_command(cl, none, {"PING"}));
    CHECK(r.ec == redis::errc::server_error);
    CHECK(r.detail.find("NOAUTH") != std::string::npos);
    CHECK(broken_closes(cl.pool_for(none).pool()) == 0);

    // The right password, as the default user and as alice, with a database.
    auto good = account_for(srv.port());
    good.client.cred = {"alice", password};
    good.client.db = 3;
    r = test::run(ioc, run_command(cl, good, {"SET", "where", "db3"}));
    CHECK(r.ok());
    auto in_db0 = account_for(srv.port());
    in_db0.client.cred = {"", password};
    r = test::run(ioc, run_command(cl, in_db0, {"GET", "where"}));
    CHECK(r.ok());
    CHECK(r.value.is_null());
    r = test::run(ioc, run_command(cl, good, {"GET", "where"}));
    CHECK(r.value.str == "db3");
    shut_down(ioc, reg);
}

TEST_CASE("pipelining: several commands in one lease, replies in order, an error reply among them") {
    redis_instance srv;
    asio::io_context ioc;
    std::optional<registry> reg(std::in_place, ioc.get_executor());
    const redis::client cl(*reg);
    auto a = account_for(srv.port());
    a.pool.size = 1;
    const auto h = cl.pool_for(a);

    test::run(ioc, [&]() -> awaitable<void> {
        auto [ec, l] = co_await h.checkout();
        REQUIRE(!ec);
        const std::vector<redis::command> cmds{
            {"SET", "p", "1"}, {"INCR", "p"}, {"NO-SUCH-COMMAND"}, {"GET", "p"}, {"LPUSH", "list", "a", "b", "c"},
            {"LRANGE", "list", "0", "-1"}};
        std::vector<redis::reply> out;
        const auto pec = co_await h.adapter().pipeline(*l, cmds, out);
        CHECK(pec == redis::errc::server_error);  // one reply is an error: the others are there
        REQUIRE(out.size() == cmds.size());
        CHECK(out[0].to_string() == "+OK");
        CHECK(out[1].integer == 2);
        CHECK(out[2].is_error());
        CHECK(out[3].str == "2");
        CHECK(out[4].integer == 3);
        REQUIRE(out[5].elements.size() == 3);
        CHECK(out[5].elements[0].str == "c");
        // The session is in step: the next command on the same lease gets its own reply.
        redis::reply pong;
        const std::string_view ping[] = {"PING"};
        CHECK(!co_await h.adapter().command(*l, ping, pong));
        CHECK(pong.to_string() == "+PONG");
        // 500 commands in one write.
        std::vector<redis::command> many(500, redis::command{"INCR", "many"});
        CHECK(!co_await h.adapter().pipeline(*l, many, out));
        REQUIRE(out.size() == 500);
        CHECK(out.back().integer == 500);
    }());
    CHECK(h.pool().stats().connects_ok == 1);
    shut_down(ioc, reg);
}

TEST_CASE("reset: a lease that changed the database and asked for a reset gives the next one a clean session") {
    redis_instance srv;
    asio::io_context ioc;
    std::optional<registry> reg(std::in_place, ioc.get_executor());
    const redis::client cl(*reg);
    auto a = account_for(srv.port());
    a.pool.size = 1;
    a.pool.max_overflow = 0;
    a.client.db = 2;
    a.client.resp3 = true;
    const auto h = cl.pool_for(a);

    test::run(ioc, [&]() -> awaitable<void> {
        redis::reply r;
        {
            auto [ec, l] = co_await h.checkout();
            REQUIRE(!ec);
            const std::string_view select[] = {"SELECT", "7"};
            CHECK(!co_await h.adapter().command(*l, select, r));
            l->request_reset();
        }
        auto [ec, l] = co_await h.checkout();
        REQUIRE(!ec);
        CHECK(l->uses() == 2);  // the same connection
        const std::string_view info[] = {"CLIENT", "INFO"};
        CHECK(!co_await h.adapter().command(*l, info, r));
        CHECK(r.type == redis::reply_type::verbatim);  // RESP3 (HELLO 3 again after RESET)
        CHECK(r.str.find(" db=2 ") != std::string::npos);
        CHECK(r.str.find(" resp=3") != std::string::npos);
        const std::string_view hello[] = {"HSET", "h", "f", "v"};
        CHECK(!co_await h.adapter().command(*l, hello, r));
        const std::string_view all[] = {"HGETALL", "h"};
        CHECK(!co_await h.adapter().command(*l, all, r));
        CHECK(r.type == redis::reply_type::map);
    }());
    shut_down(ioc, reg);
}

TEST_CASE("a keyed pool retired while callers are suspended on it: typed errors, no use after free") {
    auto silent = bad_server("silent");  // accepts, never answers: a command waits
    asio::io_context ioc;
    std::optional<registry> reg(std::in_place, ioc.get_executor());
    std::optional<redis::client> cl(std::in_place, *reg);
    auto a = account_for(silent.port());
    a.pool.size = 1;
    a.pool.max_overflow = 0;

    std::optional<redis::result> mid_command, in_checkout;
    std::size_t retired = 0;
    run_all(
        ioc, 3,
        [&](std::size_t i) -> awaitable<void> {
            std::vector<std::string> get{"GET", "k"};
            if (i == 0) {
                mid_command = co_await run_command(*cl, a, std::move(get));
            } else if (i == 1) {
                co_await pause(50ms);  // behind the first: waits for the only connection
                in_checkout = co_await run_command(*cl, a, std::move(get));
            } else {
                co_await pause(300ms);
                retired = reg->retire_all(100ms);
                // The registry and the client go too: what the callers hold must suffice.
                cl.reset();
                reg.reset();
            }
        },
        8s);
    CHECK(retired == 1);
    REQUIRE(mid_command);
    REQUIRE(in_checkout);
    MESSAGE("mid-command: " << mid_command->to_string() << "; in checkout: " << in_checkout->to_string());
    CHECK(in_checkout->ec == errc::pool_closed);
    CHECK(in_checkout->stage == "checkout");
    CHECK(mid_command->stage == "command");
    CHECK(mid_command->ec);
    CHECK(mid_command->ec != errc::operation_timeout);  // ended by the retirement, not its own timeout
    ioc.restart();
    ioc.run_for(2s);
}

int main(int argc, char** argv) {
    if (::access(redis_server.c_str(), X_OK) != 0) {
        if (std::getenv("CI") != nullptr) {
            std::cerr << "redis tests: " << redis_server
                      << " not found and CI is set: scripts/setup installs it (Debian package redis-server)\n";
            return 1;
        }
        std::cout << "redis tests: skipped, " << redis_server << " not found (Debian package redis-server)\n";
        return 77;
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
