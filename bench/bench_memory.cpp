// Memory benchmark: resident bytes per idle pooled connection, plain TCP and TLS.
//
// Benchmarks (each runs once):
//   memory/plain/idle:N, memory/tls/idle:N   N = NETPOOL_BENCH_MEMORY_CONNECTIONS (default 1000)
// Counters: bytes_per_connection = (rss_after - rss_before) / connections, rss_before,
// rss_after, connections (idle connections when measured; N unless connects failed),
// heap_bytes_per_connection (the same for bytes allocated and not freed: exact, without the
// pages that fragmentation keeps resident), fds_per_connection (a check: 1 socket each),
// connect_failures.
//
// Method, and why:
// - The echo servers (plain and TLS) run in a child process forked at the top of main,
//   before any thread, so the server's half of every connection is not counted.
// - Warm-up: a pool of 16 connections to the same server connects first and stays open, so
//   one-time costs (the io_context's reactor, OpenSSL's lazily built tables and per-thread
//   state, code pages, Asio's recycled handler memory) are paid before rss_before, and no
//   memory freed by a closed warm-up pool is there to be reused by the measured one.
// - rss_before / rss_after are read after malloc_trim (trimmed_resident_bytes): pages the
//   allocator holds free are given back first, so memory the measured pool reuses from
//   free lists still shows as growth, and both readings count memory in use.
// - Measured: a pool with size = N, max_overflow = 0, connecting all N at start; rss_after
//   once all N are idle. The pool's own fixed cost (its state, and for TLS its SSL_CTX with
//   the CA loaded) is included, spread over N. Kernel socket buffers are not in RSS and are
//   not counted: this is the process's cost of keeping a connection pooled.
// - The plain benchmark runs before the TLS one in the same process; the TLS one makes its
//   own io_context and warm-up, and trimming before rss_before keeps the plain pool's freed
//   memory from hiding the TLS pool's growth.
//
// One run on a shared 2-core VM (N = 1000): plain 6.5 KB resident (3.3 KB allocated) per idle
// connection, TLS 87 KB resident (109 KB allocated); N = 200 and 3000 gave the same within
// 10%. Most of the TLS figure is Asio's ssl::stream itself, 79 KB allocated before it connects:
// two 17 KB buffers in its stream core, a BIO pair of two 17 KB buffers, and the SSL object.
// Resident exceeds allocated for plain (pages that transient connect-time allocations leave
// half used) and trails it for TLS (buffer pages never written stay unmapped).
#include "common.hpp"

#include <netpool/config.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/pool.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;
namespace bench = netpool::bench;

constexpr std::size_t warm_connections = 16;
constexpr auto connect_limit = 180s;  // all N connected, or the measurement goes ahead without them

constexpr std::size_t plain_listener = 0;
constexpr std::size_t tls_listener = 1;
std::optional<bench::server_process> servers;

/// Runs `a` on `ioc` from this thread until it completes. A pool's workers keep the
/// io_context busy forever, so run() would not return: run one handler at a time instead.
void run_until_done(asio::io_context& ioc, awaitable<void> a) {
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(ioc, std::move(a), [&](std::exception_ptr e) {
        error = e;
        done = true;
    });
    ioc.restart();
    while (!done) {
        if (ioc.run_one() == 0) throw std::logic_error("io_context ran out of work before the run completed");
    }
    if (error) std::rethrow_exception(error);
}

/// Waits until `p` has `n` idle connections, or connect_limit passes.
awaitable<void> wait_idle(const netpool::pool& p, std::size_t n) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto limit = std::chrono::steady_clock::now() + connect_limit;
    while (p.stats().idle < n && std::chrono::steady_clock::now() < limit) {
        t.expires_after(10ms);
        co_await t.async_wait(use_awaitable);
    }
}

awaitable<void> drain(netpool::pool& p) {
    auto [ec] = co_await p.async_drain(0ms, asio::experimental::as_tuple(use_awaitable));
    (void)ec;
}

netpool::pool_options options(std::size_t n) {
    netpool::pool_options o;
    o.size = n;
    o.max_overflow = 0;
    // A thousand handshakes at once on 2 cores take seconds, not the defaults' budget, and a
    // few slow ones must not count as the endpoint failing.
    o.connect_timeout = 60s;
    o.handshake_timeout = 60s;
    o.max_restarts = 1'000'000;
    o.backoff_initial = 10ms;
    o.backoff_max = 100ms;
    return o;
}

void run_memory(benchmark::State& state, bool tls, std::size_t n) {
    if (tls && !NETPOOL_HAS_TLS) {
        state.SkipWithError("netpool was built without TLS");
        for (auto _ : state) {
        }
        return;
    }
    netpool::endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = servers->port(tls ? tls_listener : plain_listener);
    if (tls) {
        ep.tls = netpool::tls_mode::implicit;
        ep.tls_opts.ca_file = bench::test_pki().ca;
        ep.tls_opts.server_name = "localhost";
    }
    const netpool::echo::adapter echo;
    asio::io_context ioc;

    std::optional<netpool::pool> warm;
    warm.emplace(ioc.get_executor(), ep, echo, options(warm_connections), "memory-warm-up");
    run_until_done(ioc, wait_idle(*warm, warm_connections));

    const std::size_t fds_before = bench::open_fds();
    const std::size_t rss_before = bench::trimmed_resident_bytes();
    const std::size_t heap_before = bench::heap_in_use_bytes();
    std::optional<netpool::pool> measured;
    for (auto _ : state) {
        measured.emplace(ioc.get_executor(), ep, echo, options(n), "memory");
        run_until_done(ioc, wait_idle(*measured, n));
    }
    const auto stats = measured->stats();
    const std::string last_failure = measured->last_failure().message();
    const std::size_t rss_after = bench::trimmed_resident_bytes();
    const std::size_t heap_after = bench::heap_in_use_bytes();
    const std::size_t fds_after = bench::open_fds();

    run_until_done(ioc, drain(*measured));
    run_until_done(ioc, drain(*warm));
    measured.reset();
    warm.reset();
    ioc.restart();
    ioc.run();  // the workers' coroutines end; nothing else is left

    const double connections = static_cast<double>(stats.idle);
    const double grown = static_cast<double>(rss_after) - static_cast<double>(rss_before);
    auto set = [&state](const char* name, double v) { state.counters[name] = benchmark::Counter(v); };
    set("bytes_per_connection", connections > 0 ? grown / connections : 0.0);
    set("heap_bytes_per_connection",
        connections > 0 ? (static_cast<double>(heap_after) - static_cast<double>(heap_before)) / connections : 0.0);
    set("rss_before", static_cast<double>(rss_before));
    set("rss_after", static_cast<double>(rss_after));
    set("connections", connections);
    set("fds_per_connection",
        connections > 0 ? (static_cast<double>(fds_after) - static_cast<double>(fds_before)) / connections : 0.0);
    set("connect_failures", static_cast<double>(stats.connects_failed));
    if (stats.idle < n) {
        const std::string why = "only " + std::to_string(stats.idle) + " of " + std::to_string(n) +
                                " connections came up; last failure: " + last_failure;
        state.SkipWithError(why.c_str());
    }
}

void memory_plain(benchmark::State& state, std::size_t n) { run_memory(state, false, n); }
void memory_tls(benchmark::State& state, std::size_t n) { run_memory(state, true, n); }

/// A positive count from the environment, or `fallback` when unset. Exits on a bad value:
/// a typo must not silently run the default.
std::size_t env_count(const char* name, std::size_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const auto n = std::strtoull(v, &end, 10);
    if (*end != '\0' || n == 0) {
        std::fprintf(stderr, "bench_memory: %s must be a positive integer, got '%s'\n", name, v);
        std::exit(2);
    }
    return static_cast<std::size_t>(n);
}

}  // namespace

int main(int argc, char** argv) {
    const auto n = env_count("NETPOOL_BENCH_MEMORY_CONNECTIONS", 1000);
    // N connections need N descriptors here (and N in the child, which inherits the limit).
    bench::raise_fd_limit();
    // First, while the process has one thread: fork() copies only the caller. Two server
    // threads, so a thousand TLS handshakes do not queue behind one core.
    bench::server_process::listener plain;
    bench::server_process::listener tls;
    // Without TLS the second listener is plain too, only to keep the indices.
    tls.tls = NETPOOL_HAS_TLS != 0;
    servers.emplace(std::vector{plain, tls}, 2);

    const std::string suffix = "/idle:" + std::to_string(n);
    benchmark::RegisterBenchmark(("memory/plain" + suffix).c_str(), memory_plain, n)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("memory/tls" + suffix).c_str(), memory_tls, n)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    servers.reset();
    return 0;
}
