// The echo load of bench_scaling and bench_ports (over tools::drive, the driver the netpool
// command uses too): a fixed number of echo requests run by `concurrency` coroutines on one
// io_context, in three shapes:
//   baseline   a new connection per request: TCP connect (+ TLS), greeting, one request, close;
//   pooled     checkout from a netpool::pool, one request, checkin (discard on error);
//   dedicated  M connections opened beforehand, each driven by its own coroutine (no pool):
//              the ceiling a pool of M connections can approach.
// Everything here is header-only so each suite stays one translation unit.
#pragma once

#include "common.hpp"

#include <netpool/tools/load.hpp>
#include <netpool/tools/pool_run.hpp>
#include <netpool/tools/progress.hpp>

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>

#include <benchmark/benchmark.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::bench {

using bench_clock = std::chrono::steady_clock;

// ---- environment parameters ---------------------------------------------------------

inline std::string env_or(const char* name, std::string def) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : def;
}

inline std::size_t env_size(const char* name, std::size_t def) {
    const std::string s = env_or(name, "");
    if (s.empty()) return def;
    std::size_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) {
        std::fprintf(stderr, "%s: expected a non-negative integer, got '%s'\n", name, s.c_str());
        std::exit(2);
    }
    return v;
}

/// "a,b,c" -> {"a","b","c"} (empty items dropped).
inline std::vector<std::string> split_list(std::string_view s, char sep = ',') {
    std::vector<std::string> out;
    while (!s.empty()) {
        const auto i = s.find(sep);
        std::string_view item = s.substr(0, i);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!item.empty()) out.emplace_back(item);
        if (i == std::string_view::npos) break;
        s.remove_prefix(i + 1);
    }
    return out;
}

inline std::vector<std::size_t> env_sizes(const char* name, std::string def) {
    std::vector<std::size_t> out;
    for (const auto& item : split_list(env_or(name, std::move(def)))) {
        std::size_t v = 0;
        auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (ec != std::errc{} || p != item.data() + item.size() || v == 0) {
            std::fprintf(stderr, "%s: '%s' is not a positive integer\n", name, item.c_str());
            std::exit(2);
        }
        out.push_back(v);
    }
    return out;
}

struct pool_shape {
    std::size_t size = 0, overflow = 0;
    std::size_t capacity() const { return size + overflow; }
    std::string name() const { return "pool_" + std::to_string(size) + "_" + std::to_string(overflow); }
};

/// "10+90,50+450" -> shapes.
inline std::vector<pool_shape> env_pools(const char* name, std::string def) {
    std::vector<pool_shape> out;
    for (const auto& item : split_list(env_or(name, std::move(def)))) {
        const auto plus = item.find('+');
        pool_shape s;
        bool ok = plus != std::string::npos;
        if (ok) {
            auto [p1, e1] = std::from_chars(item.data(), item.data() + plus, s.size);
            auto [p2, e2] = std::from_chars(item.data() + plus + 1, item.data() + item.size(), s.overflow);
            ok = e1 == std::errc{} && e2 == std::errc{} && p1 == item.data() + plus &&
                 p2 == item.data() + item.size() && s.size > 0;
        }
        if (!ok) {
            std::fprintf(stderr, "%s: '%s' is not SIZE+OVERFLOW (e.g. 10+90)\n", name, item.c_str());
            std::exit(2);
        }
        out.push_back(s);
    }
    return out;
}

// ---- file descriptors ---------------------------------------------------------------

/// Raises the soft limit on open files to at least `want` (and the hard limit too, when
/// the process may: root, up to fs.nr_open). Returns the soft limit in force afterwards.
inline std::size_t ensure_fd_limit(std::size_t want) {
    std::size_t have = raise_fd_limit();
    if (have >= want) return have;
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return have;
    std::size_t nr_open = want;
    if (std::ifstream f("/proc/sys/fs/nr_open"); f) f >> nr_open;
    const auto target = static_cast<rlim_t>(std::min(want, nr_open));
    rlimit up = rl;
    up.rlim_cur = std::max(rl.rlim_cur, target);
    up.rlim_max = std::max(rl.rlim_max, target);
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<std::size_t>(rl.rlim_cur);
}

// ---- results ----------------------------------------------------------------------------

/// The stable key of an error: "errno:<NAME>" for an operating-system error (e.g.
/// "errno:EADDRNOTAVAIL"), else "<category>:<value>" (e.g. "netpool:12").
inline std::string error_key(const std::error_code& ec) {
    const auto& cat = ec.category();
    if (cat == asio::error::get_system_category() || cat == std::system_category() ||
        cat == std::generic_category()) {
        if (const char* name = strerrorname_np(ec.value())) return std::string("errno:") + name;
        return "errno:" + std::to_string(ec.value());
    }
    return std::string(cat.name()) + ":" + std::to_string(ec.value());
}

/// tools::load_result with what the baseline counts besides.
struct load_result : tools::load_result {
    std::size_t connected = 0, peak_connected = 0;  ///< baseline: sockets connected at once

    double ops_per_s() const { return per_second(); }
    std::size_t errors_with(const std::string& key) const {
        auto it = failures.find(key);
        return it == failures.end() ? 0 : it->second.count;
    }
};

/// "errno:EADDRNOTAVAIL Cannot assign requested address x938; ..." (empty without errors).
inline std::string describe_errors(const load_result& r) {
    std::string s;
    for (const auto& [key, e] : r.failures) {
        if (!s.empty()) s += "; ";
        s += key + " " + e.message + " x" + std::to_string(e.count);
    }
    return s;
}

/// Writes the standard counters of one run into a Google Benchmark state.
inline void report(benchmark::State& state, load_result& r, std::size_t concurrency, std::size_t total) {
    using benchmark::Counter;
    state.SetIterationTime(std::max(r.seconds, 1e-9));
    state.counters["ops_per_s"] = Counter(r.ops_per_s());
    state.counters["successes"] = Counter(static_cast<double>(r.ok));
    state.counters["failures"] = Counter(static_cast<double>(r.failed));
    state.counters["operations"] = Counter(static_cast<double>(total));
    state.counters["concurrency"] = Counter(static_cast<double>(concurrency));
    state.counters["seconds"] = Counter(r.seconds);
    state.counters["p50_us"] = Counter(r.lat.percentile(0.50));
    state.counters["p95_us"] = Counter(r.lat.percentile(0.95));
    state.counters["p99_us"] = Counter(r.lat.percentile(0.99));
    // One counter per distinct error, keyed "err:<category>:<value>"; the label carries
    // the messages ("<category>:<value> <message> x<count>; ...").
    for (const auto& [key, e] : r.failures) state.counters["err:" + key] = Counter(static_cast<double>(e.count));
    state.SetLabel(describe_errors(r));
}

// ---- the driver -------------------------------------------------------------------------

/// Runs `total` operations with `concurrency` coroutines (coroutine i calls op(i, reply)
/// until the shared count is used up) on `ioc` through tools::drive; op returns
/// asio::awaitable<std::error_code>, counted by error_key(). An exception counts as
/// errc::adapter_exception. Progress on stderr as tools::progress_wanted() says.
template <class Op>
load_result drive(asio::io_context& ioc, std::size_t total, std::size_t concurrency, load_result r, Op op) {
    std::vector<std::string> replies(concurrency);
    tools::progress shown("bench", total, tools::progress_wanted());
    const tools::load_options o{total, concurrency, &shown, [](const std::exception&) {
                                    const auto ec = make_error_code(errc::adapter_exception);
                                    return tools::outcome::failure(error_key(ec), ec.message());
                                }};
    static_cast<tools::load_result&>(r) = tools::drive(ioc, o, [&](std::size_t i) -> asio::awaitable<tools::outcome> {
        const std::error_code ec = co_await op(i, replies[i]);
        if (ec) co_return tools::outcome::failure(error_key(ec), ec.message());
        co_return tools::outcome::success();
    });
    return r;
}

// ---- the three shapes -------------------------------------------------------------------

struct echo_target {
    endpoint ep;
    std::shared_ptr<asio::ssl::context> tls_ctx;  ///< null for plain
    std::string payload;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds op_timeout{10000};  ///< baseline: greeting + request
};

/// The echo server at 127.0.0.1:port, plain or TLS; TLS verifies against the bench CA
/// with the host name "localhost" (verification on).
inline echo_target make_target(std::uint16_t port, bool tls, std::size_t payload_bytes) {
    echo_target t;
    t.ep.host = "127.0.0.1";
    t.ep.port = port;
    if (tls) {
        t.ep.tls = tls_mode::implicit;
        t.ep.tls_opts.ca_file = test_pki().ca;
        t.ep.tls_opts.server_name = "localhost";
        t.ep.tls_opts.verify = true;
        t.tls_ctx = make_client_tls_context(t.ep.tls_opts);
    }
    t.payload.assign(payload_bytes, 'x');
    return t;
}

inline asio::awaitable<std::error_code> greet_and_request(const echo::adapter& proto, connection& c,
                                                           const std::string& payload, std::string& reply) {
    auto ec = co_await proto.handshake(c);
    if (!ec) ec = co_await proto.request(c, payload, reply);
    if (!ec && reply != payload) ec = errc::protocol_error;
    co_return ec;
}

/// Connection per request. Counts the sockets connected at once in r.peak_connected.
inline load_result run_baseline(asio::io_context& ioc, const echo_target& t, std::size_t total,
                                std::size_t concurrency) {
    const echo::adapter proto;
    std::uint64_t next_id = 1;
    load_result r;
    std::size_t connected = 0, peak = 0;
    auto op = [&](std::size_t, std::string& reply) -> asio::awaitable<std::error_code> {
        connection c(ioc.get_executor(), t.ep, t.tls_ctx.get(), next_id++);
        auto ec = co_await connect_transport(c, t.connect_timeout, t.connect_timeout);
        if (!ec) {
            peak = std::max(peak, ++connected);
            ec = co_await with_timeout(greet_and_request(proto, c, t.payload, reply), t.op_timeout,
                                       errc::operation_timeout);
            --connected;
        }
        c.io().close();
        co_return ec;
    };
    r = drive(ioc, total, concurrency, std::move(r), op);
    r.peak_connected = peak;
    return r;
}

/// Default pool options for the benchmarks: see docs/benchmarks.md.
inline pool_options bench_pool_options(const pool_shape& shape) {
    pool_options po;
    po.size = shape.size;
    po.max_overflow = shape.overflow;
    po.overflow_ttl = std::chrono::seconds(5);       // no overflow churn within a run
    po.checkout_timeout = std::chrono::seconds(120);  // generous: 10,000 waiters queue
    po.connect_timeout = std::chrono::seconds(10);
    po.handshake_timeout = std::chrono::seconds(10);
    return po;
}

/// Opens `n` connections of the pool before timing (tools::warm_pool). Returns the number
/// of checkouts that failed.
inline std::size_t warm_pool(asio::io_context& ioc, pool& p, std::size_t n) { return tools::warm_pool(ioc, p, n).failed; }

/// One pooled operation: checkout, request, checkin; a failed request discards its lease.
inline auto pooled_op(pool& p, const echo::adapter& proto, const echo_target& t) {
    return [&p, &proto, &t](std::size_t, std::string& reply) -> asio::awaitable<std::error_code> {
        auto [ec, l] = co_await p.checkout();
        if (ec) co_return ec;
        ec = co_await proto.request(*l, t.payload, reply);
        if (!ec && reply != t.payload) ec = errc::protocol_error;
        if (ec) l.discard();
        co_return ec;
    };
}

using tools::close_pool;

struct dedicated_set {
    std::vector<std::unique_ptr<connection>> conns;
    std::size_t failed = 0;
    std::string first_error;
};

/// Opens n connections (connect, TLS, greeting) concurrently.
inline dedicated_set open_dedicated(asio::io_context& ioc, const echo_target& t, std::size_t n) {
    const echo::adapter proto;
    dedicated_set d;
    std::size_t left = n;
    for (std::size_t i = 0; i < n; ++i)
        d.conns.push_back(std::make_unique<connection>(ioc.get_executor(), t.ep, t.tls_ctx.get(), i + 1));
    auto one = [&](connection& c) -> asio::awaitable<void> {
        auto ec = co_await connect_transport(c, t.connect_timeout, t.connect_timeout);
        if (!ec) ec = co_await proto.handshake(c);
        if (ec) {
            if (d.failed++ == 0) d.first_error = ec.message();
            c.io().close();
        }
        if (--left == 0) ioc.stop();
    };
    ioc.restart();
    for (auto& c : d.conns) asio::co_spawn(ioc, one(*c), asio::detached);
    ioc.run();
    return d;
}

inline load_result run_dedicated(asio::io_context& ioc, dedicated_set& d, const echo_target& t, std::size_t total) {
    const echo::adapter proto;
    auto op = [&](std::size_t i, std::string& reply) -> asio::awaitable<std::error_code> {
        connection& c = *d.conns[i];
        if (!c.io().is_open()) co_return make_error_code(errc::connection_closed);
        auto ec = co_await proto.request(c, t.payload, reply);
        if (!ec && reply != t.payload) ec = errc::protocol_error;
        if (ec) c.io().close();
        co_return ec;
    };
    return drive(ioc, total, d.conns.size(), load_result{}, op);
}

}  // namespace netpool::bench
