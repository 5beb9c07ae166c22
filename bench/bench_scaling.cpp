// bench_scaling: echo over loopback, a new connection per request (baseline) against pools
// of several sizes and against the same number of dedicated connections with no pool in
// between, at several concurrencies, plain and TLS.
//
// Names: scaling/<plain|tls>/<baseline|pool_S_O|dedicated_M>/c:<concurrency>
// The echo server runs in a child process (bench::server_process, one io_context thread):
// client and server each have their own descriptors (10,000 connections need 10,000 on
// each side) and share nothing but the kernel and the two cores.
// Each benchmark runs once (Iterations(1), manual time = the timed load) and reports
// counters: ops_per_s, successes, failures, p50_us, p95_us, p99_us, err:<category>:<value>
// per distinct error (messages in the label), and more (see docs/benchmarks.md).
//
// Sizes come from the environment (bench/run.py sets them):
//   NETPOOL_BENCH_MODES           plain,tls
//   NETPOOL_BENCH_CONCURRENCY     50,100,200,500,1000,10000
//   NETPOOL_BENCH_POOLS           10+90,50+450,100+900
//   NETPOOL_BENCH_KINDS           baseline,pool,dedicated
//   NETPOOL_BENCH_OPS_BASELINE_PLAIN 20000   NETPOOL_BENCH_OPS_BASELINE_TLS 3000
//   NETPOOL_BENCH_OPS_POOLED_PLAIN   200000  NETPOOL_BENCH_OPS_POOLED_TLS   100000
//     (pooled and dedicated runs; every run does at least `concurrency` operations)
//   NETPOOL_BENCH_PAYLOAD         64 (bytes per request)
//   NETPOOL_BENCH_CONNECT_TIMEOUT_MS 10000 (baseline connect, TLS handshake, greeting+request)
//   NETPOOL_BENCH_SERVER_THREADS  1
#include "load.hpp"

#include <netpool/config.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

namespace nb = netpool::bench;

namespace {

struct config {
    std::vector<std::string> modes;
    std::vector<std::size_t> concurrency;
    std::vector<nb::pool_shape> pools;
    std::vector<std::string> kinds;
    std::size_t ops_baseline_plain, ops_baseline_tls, ops_pooled_plain, ops_pooled_tls;
    std::size_t payload;
    std::chrono::milliseconds timeout;
    unsigned server_threads;
    int client_hint;  ///< the client io_context's concurrency hint (1: one thread runs it)

    std::size_t ops(bool tls, bool baseline, std::size_t c) const {
        const std::size_t n = baseline ? (tls ? ops_baseline_tls : ops_baseline_plain)
                                       : (tls ? ops_pooled_tls : ops_pooled_plain);
        return std::max(n, c);
    }
    bool has_kind(std::string_view k) const { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); }
};

config read_config() {
    config c;
    c.modes = nb::split_list(nb::env_or("NETPOOL_BENCH_MODES", "plain,tls"));
    c.concurrency = nb::env_sizes("NETPOOL_BENCH_CONCURRENCY", "50,100,200,500,1000,10000");
    c.pools = nb::env_pools("NETPOOL_BENCH_POOLS", "10+90,50+450,100+900");
    c.kinds = nb::split_list(nb::env_or("NETPOOL_BENCH_KINDS", "baseline,pool,dedicated"));
    c.ops_baseline_plain = nb::env_size("NETPOOL_BENCH_OPS_BASELINE_PLAIN", 20000);
    c.ops_baseline_tls = nb::env_size("NETPOOL_BENCH_OPS_BASELINE_TLS", 3000);
    c.ops_pooled_plain = nb::env_size("NETPOOL_BENCH_OPS_POOLED_PLAIN", 200000);
    c.ops_pooled_tls = nb::env_size("NETPOOL_BENCH_OPS_POOLED_TLS", 100000);
    c.payload = nb::env_size("NETPOOL_BENCH_PAYLOAD", 64);
    c.timeout = std::chrono::milliseconds(nb::env_size("NETPOOL_BENCH_CONNECT_TIMEOUT_MS", 10000));
    c.server_threads = static_cast<unsigned>(std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SERVER_THREADS", 1)));
    c.client_hint = static_cast<int>(nb::env_size("NETPOOL_BENCH_CLIENT_HINT", 1));
    for (const auto& m : c.modes)
        if (m != "plain" && m != "tls") {
            std::fprintf(stderr, "NETPOOL_BENCH_MODES: unknown mode '%s' (plain, tls)\n", m.c_str());
            std::exit(2);
        }
    for (const auto& k : c.kinds)
        if (k != "baseline" && k != "pool" && k != "dedicated") {
            std::fprintf(stderr, "NETPOOL_BENCH_KINDS: unknown kind '%s' (baseline, pool, dedicated)\n", k.c_str());
            std::exit(2);
        }
    return c;
}

/// A build without TLS skips the TLS runs, saying why (never counted as measured).
bool tls_available(benchmark::State& state, bool tls) {
    if (!tls || NETPOOL_HAS_TLS) return true;
    const std::string why = std::string("netpool was built without TLS: ") + NETPOOL_NO_TLS_REASON;
    state.SkipWithError(why.c_str());
    return false;
}

/// Makes sure this process (the client) and the echo server's process (which inherits the
/// limit) may each open one descriptor per connection plus slack; false (and a skip) when
/// they cannot.
bool enough_fds(benchmark::State& state, std::size_t connections) {
    const std::size_t want = connections + 256;
    const std::size_t have = nb::ensure_fd_limit(want);
    state.counters["fd_limit"] = static_cast<double>(have);
    if (have >= want) return true;
    const std::string why = "open-file limit " + std::to_string(have) + " is below the " + std::to_string(want) +
                            " this run needs (ulimit -n)";
    state.SkipWithError(why.c_str());
    return false;
}

void bm_baseline(benchmark::State& state, const config& cfg, bool tls, std::size_t c) {
    if (!tls_available(state, tls)) return;
    if (!enough_fds(state, c)) return;
    for (auto _ : state) {
        nb::server_process srv({{.tls = tls}}, cfg.server_threads);
        asio::io_context ioc(cfg.client_hint);
        auto t = nb::make_target(srv.port(0), tls, cfg.payload);
        t.connect_timeout = t.op_timeout = cfg.timeout;
        const std::size_t total = cfg.ops(tls, true, c);
        auto r = nb::run_baseline(ioc, t, total, c);
        nb::report(state, r, c, total);
        state.counters["peak_connected"] = static_cast<double>(r.peak_connected);
        state.counters["connections"] = static_cast<double>(r.ok + r.failed);
    }
}

void bm_pooled(benchmark::State& state, const config& cfg, bool tls, std::size_t c, nb::pool_shape shape) {
    if (!tls_available(state, tls)) return;
    if (!enough_fds(state, shape.capacity())) return;
    for (auto _ : state) {
        nb::server_process srv({{.tls = tls}}, cfg.server_threads);
        asio::io_context ioc(cfg.client_hint);
        auto t = nb::make_target(srv.port(0), tls, cfg.payload);
        const netpool::echo::adapter proto;
        netpool::pool p(ioc.get_executor(), t.ep, proto, nb::bench_pool_options(shape),
                        "bench-" + shape.name());
        // Steady state: open as many connections as this concurrency can use before timing.
        const std::size_t warm = std::min(c, shape.capacity());
        const std::size_t warm_failed = nb::warm_pool(ioc, p, warm);
        const auto before = p.stats();
        const std::size_t total = cfg.ops(tls, false, c);
        auto r = nb::drive(ioc, total, c, nb::load_result{}, nb::pooled_op(p, proto, t));
        const auto after = p.stats();
        nb::close_pool(ioc, p);
        nb::report(state, r, c, total);
        state.counters["pool_size"] = static_cast<double>(shape.size);
        state.counters["pool_overflow"] = static_cast<double>(shape.overflow);
        state.counters["warm_connections"] = static_cast<double>(before.connects_ok);
        state.counters["warmup_failures"] = static_cast<double>(warm_failed);
        state.counters["connects_during_run"] = static_cast<double>(after.connects_ok - before.connects_ok);
        state.counters["connects_failed"] = static_cast<double>(after.connects_failed);
        state.counters["checkout_wait_p99_us"] = after.checkout_wait.quantile(0.99) * 1e6;
        if (warm_failed > 0) {
            const std::string why = "warm-up: " + std::to_string(warm_failed) + " of " + std::to_string(warm) +
                                    " checkouts failed (last connect failure: " + p.last_failure().message() + ")";
            state.SetLabel(why + (r.failures.empty() ? "" : "; " + nb::describe_errors(r)));
        }
    }
}

void bm_dedicated(benchmark::State& state, const config& cfg, bool tls, std::size_t c, std::size_t m) {
    if (!tls_available(state, tls)) return;
    const std::size_t n = std::min(c, m);
    if (!enough_fds(state, n)) return;
    for (auto _ : state) {
        nb::server_process srv({{.tls = tls}}, cfg.server_threads);
        asio::io_context ioc(cfg.client_hint);
        auto t = nb::make_target(srv.port(0), tls, cfg.payload);
        auto d = nb::open_dedicated(ioc, t, n);
        if (d.failed > 0) {
            const std::string why = std::to_string(d.failed) + " of " + std::to_string(n) +
                                    " dedicated connections failed to open: " + d.first_error;
            state.SkipWithError(why.c_str());
            break;
        }
        const std::size_t total = cfg.ops(tls, false, c);
        auto r = nb::run_dedicated(ioc, d, t, total);
        nb::report(state, r, c, total);
        state.counters["connections"] = static_cast<double>(n);
        for (auto& conn : d.conns) conn->io().close();
    }
}

}  // namespace

int main(int argc, char** argv) {
    static const config cfg = read_config();
    nb::raise_fd_limit();
    for (const auto& mode : cfg.modes) {
        const bool tls = mode == "tls";
        for (std::size_t c : cfg.concurrency) {
            const std::string suffix = "/c:" + std::to_string(c);
            std::vector<benchmark::internal::Benchmark*> regs;
            if (cfg.has_kind("baseline"))
                regs.push_back(benchmark::RegisterBenchmark(("scaling/" + mode + "/baseline" + suffix).c_str(),
                                                            bm_baseline, cfg, tls, c));
            // Each pool next to its dedicated ceiling, so the runs a ratio compares are
            // made one after the other.
            std::vector<std::size_t> seen;
            for (const auto& shape : cfg.pools) {
                if (cfg.has_kind("pool"))
                    regs.push_back(benchmark::RegisterBenchmark(
                        ("scaling/" + mode + "/" + shape.name() + suffix).c_str(), bm_pooled, cfg, tls, c, shape));
                const std::size_t m = shape.capacity();
                if (!cfg.has_kind("dedicated") || std::find(seen.begin(), seen.end(), m) != seen.end()) continue;
                seen.push_back(m);
                regs.push_back(benchmark::RegisterBenchmark(
                    ("scaling/" + mode + "/dedicated_" + std::to_string(m) + suffix).c_str(), bm_dedicated, cfg, tls,
                    c, m));
            }
            for (auto* b : regs) b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
        }
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
