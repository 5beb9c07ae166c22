// Leak benchmark: does a long run of checkouts and checkins, or a run full of faults, leave
// the process with more file descriptors, more memory or a different number of workers?
//
// Benchmarks (each runs once):
//   leak/cycles:N  N checkout/checkin cycles (NETPOOL_BENCH_LEAK_CYCLES, default 1,000,000)
//                  against a normal echo server. A cycle is a checkout and its checkin; every
//                  request_every-th cycle (32) also sends one echo request on the lease, so
//                  connections carry traffic and coroutine checkouts really queue (see below).
//   leak/faults:M  M cycles (NETPOOL_BENCH_LEAK_FAULTS, default 100,000), each with a request,
//                  against an echo server in fault mode reset_after_n (it closes every
//                  connection after answering 10 frames), while the client discards 2% of its
//                  leases at random (fixed seed). A failed request discards its lease and is
//                  retried on another checkout, up to 10 times; it is counted either way.
//
// Counters (the runner's gate reads fds_* and rss_*):
//   fds_before/fds_after          open descriptors of the process at the pool's steady state
//                                 before and after the measured run. Expected delta: 0.
//   rss_before/rss_after          resident bytes at the same two points, after malloc_trim
//                                 (see trimmed_resident_bytes: in-use memory, not the heap's
//                                 high-water mark, so a leak cannot hide in pages freed by
//                                 the warm-up).
//   workers_before/workers_after  the pool's open connections (idle+leased+connecting+busy).
//   heap_before/heap_after        bytes allocated and not freed (mallinfo2) at the same points:
//                                 exact, so it shows what RSS shows in pages. Not gated.
//   fds_no_pool_before/after      descriptors before the pool existed and after it was closed
//                                 and every worker had exited. Expected delta: 0.
//   cycles, cycles_per_s, requests, request_errors (attempts that failed: expected in the
//   fault run, 0 otherwise), requests_failed (gave up after the retries: expected 0),
//   checkout_errors (expected 0), discards (by the client), reconnects (connects during the
//   run), closes_broken, idle_after, leased_after, settle_timeouts (expected 0), tls.
//
// NETPOOL_BENCH_LEAK_TLS=1 runs both over TLS instead of plain TCP (same names, counter tls=1):
// every reconnect of the fault run then makes and frees a TLS stream. Off by default: the
// issue asks for the plain run, and TLS handshakes triple the fault run's time.
//
// Method, and why:
// - The echo servers run in a child process forked at the top of main, before any thread,
//   so their sockets and memory are not the client's: what is measured is the pool.
// - One io_context run by the benchmark thread serves the pool and 12 driver coroutines;
//   the pool has size 4 and max_overflow 4, so with requests in flight every connection is
//   leased, the others queue, and checkins hand connections over directly: the fast path,
//   the waiter queue, direct handoff and overflow growth are all in the run. overflow_ttl
//   is 100 ms so overflow workers stay while the load lasts instead of reconnecting at a
//   rate that would measure ephemeral ports rather than leaks. Drivers alternate
//   try_checkout (falling back to the coroutine checkout when it misses) and the coroutine
//   checkout.
// - Steady state: before each measurement the pool must be back to exactly `size` idle
//   workers, nothing leased, connecting, checking or waiting, no overflow (polled, up to 30 s;
//   a timeout is counted in settle_timeouts, the measurement taken anyway, and the benchmark
//   reported as failed: a lease that never came back keeps its socket, so the descriptor
//   count alone would not show it). Nothing runs during a measurement: the single io
//   thread is the one measuring.
//   So fds_after - fds_before is 0 for a leak-free pool: the same number of sockets,
//   and nothing else opened.
// - Warm-up: the pool connects, then runs the same workload (a tenth of the measured cycles,
//   at least 1,000) so allocator arenas, Asio's recycled handler memory, the timer heap and
//   lazily mapped code pages reach their steady state before rss_before.
// - Margin (the gate allows 1 MiB of RSS growth): every malloc chunk is at least 32 bytes,
//   so one leaked allocation per cycle grows the cycles run by ~32 MB; the fault run makes
//   about 11,000 connections (9,000 server resets, 2,000 discards), so 100 bytes or more
//   leaked per connection (a socket object, a TLS stream, a coroutine frame) exceeds 1 MiB,
//   and a descriptor leaked per connection shows in fds at once. Checked by planting leaks
//   in a scratch copy of the worker's connect step: 100 bytes per connect grew the fault
//   run's RSS by 1.4 MB; one dup()ed descriptor per connect grew fds by one per reconnect.
//   Without a planted leak RSS moved by 0 to 8 KiB, the same after 20,000,000 cycles: noise
//   is two orders of magnitude under the gate.
#include "common.hpp"

#include <netpool/config.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/pool.hpp>
#include <netpool/transport.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;
namespace bench = netpool::bench;

constexpr std::size_t pool_size = 4;
constexpr std::size_t pool_overflow = 4;
constexpr unsigned drivers = 12;
constexpr std::uint64_t request_every = 32;  // cycles run: one cycle in this many sends a request
constexpr std::size_t fault_reset_after = 10;  // frames the faulty server answers per connection
constexpr double fault_discard_fraction = 0.02;
constexpr int max_attempts = 10;  // per request, before it counts as failed
constexpr auto request_timeout = 10s;
constexpr auto settle_limit = 30s;

// Listener indices in the server process: plain, and with NETPOOL_BENCH_LEAK_TLS also TLS
// at tls_listeners + the same index.
constexpr std::size_t normal_listener = 0;
constexpr std::size_t faulty_listener = 1;
constexpr std::size_t tls_listeners = 2;
std::optional<bench::server_process> servers;
bool use_tls = false;

/// What one run (warm-up or measured) did.
struct tally {
    std::uint64_t cycles = 0;
    std::uint64_t requests = 0;
    std::uint64_t request_errors = 0;
    std::uint64_t requests_failed = 0;
    std::uint64_t checkout_errors = 0;
    std::uint64_t discards = 0;
};

struct workload {
    std::uint64_t cycles;
    std::uint64_t request_every;  // 1: every cycle
    double discard_fraction;
};

/// Shared by the drivers of one run; they all run on the one io thread, so plain fields.
struct run_state {
    workload w;
    std::uint64_t next = 0;
    tally t;
};

const std::string payload(32, 'x');

/// Checks out, alternating the non-blocking try (with the coroutine checkout as fallback)
/// and the coroutine checkout, so both entry points are in the run.
awaitable<netpool::lease> checkout(netpool::pool& p, std::uint64_t cycle, tally& t) {
    if (cycle % 2 == 0) {
        std::error_code ec;
        if (netpool::lease l = p.try_checkout(ec)) co_return l;
    }
    auto [ec, l] = co_await p.checkout(request_timeout);
    if (ec) ++t.checkout_errors;
    co_return std::move(l);
}

/// One request on `l`; a failure discards the connection (its state is unknown) and the
/// request is retried on another one.
awaitable<void> request(netpool::pool& p, const netpool::echo::adapter& echo, netpool::lease& l, std::string& reply,
                        tally& t, std::uint64_t cycle) {
    ++t.requests;
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
        if (!l) l = co_await checkout(p, cycle, t);
        if (!l) continue;
        auto ec = co_await netpool::with_timeout(echo.request(*l, payload, reply), request_timeout,
                                                 netpool::errc::operation_timeout);
        if (!ec && reply != payload) ec = netpool::errc::protocol_error;
        if (!ec) co_return;
        ++t.request_errors;
        l.discard();
        l.release();
    }
    ++t.requests_failed;
}

awaitable<void> driver(netpool::pool& p, const netpool::echo::adapter& echo, run_state& rs, unsigned seed) {
    std::minstd_rand rng(seed);
    std::bernoulli_distribution discard(rs.w.discard_fraction);
    std::string reply;  // capacity reused: no allocation per request in steady state
    reply.reserve(payload.size());
    while (rs.next < rs.w.cycles) {
        const std::uint64_t cycle = rs.next++;
        netpool::lease l = co_await checkout(p, cycle, rs.t);
        if (!l) continue;
        ++rs.t.cycles;
        if (cycle % rs.w.request_every == 0) co_await request(p, echo, l, reply, rs.t, cycle);
        if (l && rs.w.discard_fraction > 0 && discard(rng)) {
            l.discard();
            ++rs.t.discards;
        }
    }  // each lease goes back (checkin) at the end of its iteration
}

/// Runs `a` on `ioc` from this thread until it completes. The pool's workers keep the
/// io_context busy forever, so run() would not return: run one handler at a time instead.
template <class T> T run_until_done(asio::io_context& ioc, awaitable<T> a) {
    std::optional<T> result;
    std::exception_ptr error;
    asio::co_spawn(ioc, std::move(a), [&](std::exception_ptr e, T v) {
        error = e;
        result.emplace(std::move(v));
    });
    ioc.restart();
    while (!result && !error) {
        if (ioc.run_one() == 0) throw std::logic_error("io_context ran out of work before the run completed");
    }
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

awaitable<tally> run_workload(netpool::pool& p, const netpool::echo::adapter& echo, workload w) {
    run_state rs{w, 0, {}};
    auto ex = co_await asio::this_coro::executor;
    // Each driver reports back through a counter; the timer wakes the waiting parent.
    unsigned running = drivers;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (unsigned i = 0; i < drivers; ++i) {
        asio::co_spawn(ex, driver(p, echo, rs, 1234 + i), [&](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);  // a bug in the benchmark: stop loudly
            if (--running == 0) all_done.cancel();
        });
    }
    while (running > 0) {
        auto [ec] = co_await all_done.async_wait(asio::experimental::as_tuple(use_awaitable));
        (void)ec;  // cancelled: the last driver finished
    }
    co_return rs.t;
}

bool settled(const netpool::pool_stats& s) {
    return s.idle == pool_size && s.leased == 0 && s.connecting == 0 && s.busy == 0 && s.waiters == 0 &&
           s.overflow == 0;
}

/// Waits until the pool is back to its steady state (see the top of the file). True if it
/// got there within settle_limit.
awaitable<bool> settle(netpool::pool& p) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto limit = std::chrono::steady_clock::now() + settle_limit;
    while (!settled(p.stats())) {
        if (std::chrono::steady_clock::now() > limit) co_return false;
        t.expires_after(5ms);
        co_await t.async_wait(use_awaitable);
    }
    co_return true;
}

std::size_t workers(const netpool::pool_stats& s) { return s.idle + s.leased + s.connecting + s.busy; }

void run_leak(benchmark::State& state, std::size_t listener, workload measured) {
    asio::io_context ioc;
    // The io_context's reactor (epoll, eventfd, timerfd) is created on first use: use it once
    // so fds_no_pool_before already counts it.
    run_until_done(ioc, []() -> awaitable<bool> {
        asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
        co_await t.async_wait(use_awaitable);
        co_return true;
    }());
    const std::size_t fds_no_pool_before = bench::open_fds();

    netpool::endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = servers->port(use_tls ? tls_listeners + listener : listener);
    if (use_tls) {
        ep.tls = netpool::tls_mode::implicit;
        ep.tls_opts.ca_file = bench::test_pki().ca;
        ep.tls_opts.server_name = "localhost";
    }
    netpool::pool_options o;
    o.size = pool_size;
    o.max_overflow = pool_overflow;
    o.overflow_ttl = 100ms;
    o.checkout_timeout = request_timeout;
    const netpool::echo::adapter echo;
    std::optional<netpool::pool> p;
    p.emplace(ioc.get_executor(), ep, echo, o, "leak");

    std::size_t settle_timeouts = 0;
    workload warm = measured;
    warm.cycles = std::max<std::uint64_t>(measured.cycles / 10, 1000);
    const tally warm_tally = run_until_done(ioc, run_workload(*p, echo, warm));
    if (!run_until_done(ioc, settle(*p))) ++settle_timeouts;

    const auto stats_before = p->stats();
    const std::size_t fds_before = bench::open_fds();
    const std::size_t rss_before = bench::trimmed_resident_bytes();
    const std::size_t heap_before = bench::heap_in_use_bytes();

    tally t;
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) t = run_until_done(ioc, run_workload(*p, echo, measured));
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;

    if (!run_until_done(ioc, settle(*p))) ++settle_timeouts;
    const auto stats_after = p->stats();
    const std::size_t fds_after = bench::open_fds();
    const std::size_t rss_after = bench::trimmed_resident_bytes();
    const std::size_t heap_after = bench::heap_in_use_bytes();

    // Close the pool and let every worker finish: the drain completes when all of them have
    // closed their sockets; the rest of the queued work (worker coroutines returning, the
    // pool's timer) ends when run() runs out of it.
    run_until_done(ioc, [](netpool::pool& pl) -> awaitable<bool> {
        auto [ec] = co_await pl.async_drain(0ms, asio::experimental::as_tuple(use_awaitable));
        (void)ec;
        co_return true;
    }(*p));
    p.reset();
    ioc.restart();
    ioc.run();
    const std::size_t fds_no_pool_after = bench::open_fds();

    auto set = [&state](const char* name, double v) { state.counters[name] = benchmark::Counter(v); };
    set("fds_before", static_cast<double>(fds_before));
    set("fds_after", static_cast<double>(fds_after));
    set("rss_before", static_cast<double>(rss_before));
    set("rss_after", static_cast<double>(rss_after));
    set("workers_before", static_cast<double>(workers(stats_before)));
    set("workers_after", static_cast<double>(workers(stats_after)));
    set("heap_before", static_cast<double>(heap_before));
    set("heap_after", static_cast<double>(heap_after));
    set("fds_no_pool_before", static_cast<double>(fds_no_pool_before));
    set("fds_no_pool_after", static_cast<double>(fds_no_pool_after));
    set("cycles", static_cast<double>(t.cycles));
    set("cycles_per_s", static_cast<double>(t.cycles) / elapsed.count());
    set("requests", static_cast<double>(t.requests));
    set("request_errors", static_cast<double>(t.request_errors));
    set("requests_failed", static_cast<double>(t.requests_failed + warm_tally.requests_failed));
    set("checkout_errors", static_cast<double>(t.checkout_errors + warm_tally.checkout_errors));
    set("discards", static_cast<double>(t.discards));
    set("reconnects", static_cast<double>(stats_after.connects_ok - stats_before.connects_ok));
    set("connect_failures", static_cast<double>(stats_after.connects_failed - stats_before.connects_failed));
    set("closes_broken", static_cast<double>(
                             stats_after.closes[static_cast<std::size_t>(netpool::close_reason::broken)] -
                             stats_before.closes[static_cast<std::size_t>(netpool::close_reason::broken)]));
    set("idle_after", static_cast<double>(stats_after.idle));
    set("leased_after", static_cast<double>(stats_after.leased));
    set("settle_timeouts", static_cast<double>(settle_timeouts));
    set("tls", use_tls ? 1.0 : 0.0);
    if (settle_timeouts > 0) {
        const auto& s = stats_after;
        const std::string why = "the pool did not return to " + std::to_string(pool_size) + " idle workers: idle " +
                                std::to_string(s.idle) + ", leased " + std::to_string(s.leased) + ", connecting " +
                                std::to_string(s.connecting) + ", busy " + std::to_string(s.busy) + ", waiters " +
                                std::to_string(s.waiters) + ", overflow " + std::to_string(s.overflow);
        state.SkipWithError(why.c_str());
    }
}

void leak_cycles(benchmark::State& state, std::uint64_t n) {
    run_leak(state, normal_listener, workload{n, request_every, 0.0});
}

void leak_faults(benchmark::State& state, std::uint64_t n) {
    run_leak(state, faulty_listener, workload{n, 1, fault_discard_fraction});
}

/// A positive count from the environment, or `fallback` when unset. Exits on a bad value:
/// a typo must not silently run the default.
std::uint64_t env_count(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const auto n = std::strtoull(v, &end, 10);
    if (*end != '\0' || n == 0) {
        std::fprintf(stderr, "bench_leak: %s must be a positive integer, got '%s'\n", name, v);
        std::exit(2);
    }
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    const auto cycles = env_count("NETPOOL_BENCH_LEAK_CYCLES", 1'000'000);
    const auto faults = env_count("NETPOOL_BENCH_LEAK_FAULTS", 100'000);
    const char* tls_env = std::getenv("NETPOOL_BENCH_LEAK_TLS");
    use_tls = tls_env && std::string(tls_env) != "" && std::string(tls_env) != "0";
    if (use_tls && !NETPOOL_HAS_TLS) {
        std::fprintf(stderr, "bench_leak: NETPOOL_BENCH_LEAK_TLS is set, but netpool was built without TLS\n");
        return 2;
    }
    bench::raise_fd_limit();
    // First, while the process has one thread: fork() copies only the caller.
    bench::server_process::listener normal;
    bench::server_process::listener faulty;
    faulty.mode = netpool::echo::fault_mode::reset_after_n;
    faulty.reset_after = fault_reset_after;
    std::vector listeners{normal, faulty};
    if (use_tls) {
        for (auto l : {normal, faulty}) {
            l.tls = true;
            listeners.push_back(l);
        }
    }
    servers.emplace(listeners);

    benchmark::RegisterBenchmark(("leak/cycles:" + std::to_string(cycles)).c_str(), leak_cycles, cycles)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("leak/faults:" + std::to_string(faults)).c_str(), leak_faults, faults)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    servers.reset();
    return 0;
}
