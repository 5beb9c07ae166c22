// `netpool demo`: the main job. Starts netpool's echo server on loopback (plain and TLS,
// with a throwaway CA made on the spot), drives the same load through a new connection per
// request and through a pool, and prints what was done, the errors, and the pool's stats.
// Built without TLS, it runs the plain half and says that the TLS half was skipped.
#include "commands.hpp"

#include <netpool/tools/args.hpp>
#include <netpool/tools/load.hpp>
#include <netpool/tools/metrics_server.hpp>
#include <netpool/tools/pki.hpp>
#include <netpool/tools/progress.hpp>
#include <netpool/tools/report.hpp>

#include <netpool/config.hpp>
#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace netpool::cli {

namespace {


struct demo_config {
    std::size_t requests = 20000;
    std::size_t concurrency = 100;
    std::size_t size = 10;
    std::size_t overflow = 90;
    std::size_t payload = 64;
    bool json = false;
    bool progress = false;
};

struct run_result {
    std::string name;
    tools::load_result r;

    double ops() const { return r.per_second(); }
    double pct(double q) { return r.lat.percentile(q); }
};

/// Runs cfg.requests operations with cfg.concurrency coroutines on `ioc`; `op` does one and
/// returns its error.
template <class Op>
run_result drive(asio::io_context& ioc, std::string name, const demo_config& cfg, Op op) {
    tools::progress shown("  " + name, cfg.requests, tools::progress_wanted(cfg.progress));
    const tools::load_options lo{cfg.requests, cfg.concurrency, &shown, {}};
    auto r = tools::drive(ioc, lo, [&](std::size_t) -> asio::awaitable<tools::outcome> {
        const std::error_code ec = co_await op();
        // GCC 12: no conditional expression's temporary in a co_return.
        if (ec) co_return tools::outcome::failure(ec.message());
        co_return tools::outcome::success();
    });
    return {std::move(name), std::move(r)};
}

tools::json run_json(run_result& x) {
    return {{"ok", x.r.ok},
            {"failed", x.r.failed},
            {"ops_per_s", tools::rounded(x.ops(), 1)},
            {"p50_us", tools::rounded(x.pct(0.5), 1)},
            {"p99_us", tools::rounded(x.pct(0.99), 1)}};
}

endpoint target(std::uint16_t port, const tools::throwaway_pki* pki) {
    endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = port;
    if (pki) {
        ep.tls = tls_mode::implicit;
        ep.tls_opts.ca_file = pki->ca;  // verification stays on: we trust our own CA
        ep.tls_opts.server_name = "localhost";
    }
    return ep;
}

std::string describe(run_result& r) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-28s %8zu ok %6zu failed %10.0f ops/s   p50 %8.1f us   p99 %8.1f us",
                  r.name.c_str(), r.r.ok, r.r.failed, r.ops(), r.pct(0.5), r.pct(0.99));
    std::string s = line;
    for (const auto& [msg, n] : r.r.failures_by_count()) s += "\n      error: " + msg + " x" + std::to_string(n);
    return s;
}

}  // namespace

int demo_main(std::span<const std::string_view> args) {
    tools::command_report report("demo", tools::json_requested(args));
    demo_config cfg;
    bool help = false;
    tools::command_line cl;
    cl.count("requests", cfg.requests, 1, 10'000'000);
    cl.count("concurrency", cfg.concurrency, 1, 10'000'000);
    cl.count("size", cfg.size, 1, 10'000'000);
    cl.count("overflow", cfg.overflow, 1, 10'000'000);
    cl.count("payload", cfg.payload, 1, 10'000'000);
    cl.flag("json", cfg.json);
    cl.flag("progress", cfg.progress);
    cl.flag("help", help);
    tools::metrics_options metrics_opts;
    metrics_opts.declare(cl);
    try {
        cl.parse(args);
        metrics_opts.check(cl);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }
    if (help) {
        std::cout << "usage: netpool demo [--requests N] [--concurrency C] [--size S] [--overflow O]\n"
                     "                    [--payload BYTES] [--json] [--progress]\n"
                     "                    [--metrics-port PORT [--metrics-address ADDR]]\n"
                     "Starts netpool's echo server on 127.0.0.1 (plain, then TLS with a throwaway CA),\n"
                     "runs N echo requests at concurrency C with a new connection per request, then\n"
                     "through a pool of S + O connections, and prints throughput, latency, errors and\n"
                     "the pool's stats (--json: everything, with histograms, as a JSON array of runs;\n"
                     "on a failure to start, {\"error\": {\"where\", \"what\"}}).\n"
                     "Defaults: 20000 requests, concurrency 100, pool 10 + 90 (overflow lingers 1 s), 64 B.\n"
                  << tools::metrics_usage;
        if (!NETPOOL_HAS_TLS) std::cout << "The TLS half is skipped: " << NETPOOL_NO_TLS_REASON << ".\n";
        return tools::exit_ok;
    }

    // Shows the pool of the pooled run in progress (none during the baseline runs).
    std::unique_ptr<tools::metrics_server> metrics;
    try {
        metrics = tools::start_metrics(metrics_opts);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }

    // The TLS half needs a TLS-capable netpool; without one there is no CA to make either.
    constexpr bool with_tls = NETPOOL_HAS_TLS != 0;
    std::optional<tools::throwaway_pki> pki;
    if (with_tls) {
        try {
            pki.emplace("netpool demo");
        } catch (const std::exception& e) {
            return report.failure("certificate", e.what());
        }
    }
    asio::io_context server_ctx;
    auto server_work = asio::make_work_guard(server_ctx);
    echo::server plain_srv(server_ctx.get_executor(), {});
    std::optional<echo::server> tls_srv;
    if (pki) {
        echo::server_options tls_opts;
        tls_opts.cert_file = pki->cert;
        tls_opts.key_file = pki->key;
        tls_srv.emplace(server_ctx.get_executor(), tls_opts);
    }
    plain_srv.start();
    if (tls_srv) tls_srv->start();
    std::thread server_thread([&] { server_ctx.run(); });

    const std::string payload(cfg.payload, 'x');
    const echo::adapter proto;
    tools::json json_runs = tools::json::array();
    int status = tools::exit_ok;

    std::vector<bool> modes{false};
    if (tls_srv) modes.push_back(true);
    for (bool use_tls : modes) {
        const endpoint ep = target(use_tls ? tls_srv->port() : plain_srv.port(), use_tls ? &*pki : nullptr);
        const std::string mode = use_tls ? "tls" : "plain";
        asio::io_context ioc;
        auto tls_ctx = use_tls ? make_client_tls_context(ep.tls_opts) : nullptr;
        if (!cfg.json)
            std::cout << "\n" << mode << " echo on " << ep.to_string() << ": " << cfg.requests << " requests, concurrency "
                      << cfg.concurrency << ", " << cfg.payload << " B payload\n";

        // Baseline: connect, handshake, one request, close; per request.
        std::uint64_t next_id = 1;
        auto baseline = drive(ioc, "new connection per request", cfg, [&]() -> asio::awaitable<std::error_code> {
            connection c(ioc.get_executor(), ep, tls_ctx.get(), next_id++);
            std::error_code ec = co_await connect_transport(c, std::chrono::seconds(5), std::chrono::seconds(5));
            if (!ec) ec = co_await proto.handshake(c);
            std::string reply;
            if (!ec) ec = co_await proto.request(c, payload, reply);
            c.io().close();
            co_return ec;
        });

        // Pooled.
        pool_options po;
        po.size = cfg.size;
        po.max_overflow = cfg.overflow;
        po.checkout_timeout = std::chrono::seconds(30);
        po.overflow_ttl = std::chrono::seconds(1);  // a returned overflow worker waits for the next request
        pool p(ioc.get_executor(), ep, proto, po, "demo-" + mode);
        const tools::metrics_publication published(metrics.get(),
                                                   [&p] { return std::vector<pool_stats>{p.stats()}; });
        auto pooled = drive(ioc, "pooled " + std::to_string(cfg.size) + "+" + std::to_string(cfg.overflow), cfg,
                            [&]() -> asio::awaitable<std::error_code> {
                                auto [ec, l] = co_await p.checkout();
                                if (ec) co_return ec;
                                thread_local std::string reply;
                                ec = co_await proto.request(*l, payload, reply);
                                if (ec) l.discard();
                                co_return ec;
                            });
        const auto stats = p.stats();
        p.close();
        ioc.restart();
        ioc.run_for(std::chrono::seconds(2));

        const double ratio = baseline.ops() > 0 ? pooled.ops() / baseline.ops() : 0;
        if (baseline.r.failed || pooled.r.failed) status = tools::exit_failure;
        if (cfg.json) {
            json_runs.push_back({{"mode", mode},
                                 {"requests", cfg.requests},
                                 {"concurrency", cfg.concurrency},
                                 {"baseline", run_json(baseline)},
                                 {"pooled", run_json(pooled)},
                                 {"ratio", tools::rounded(ratio, 2)},
                                 {"pool_stats", tools::stats_json(stats)}});
        } else {
            std::cout << describe(baseline) << "\n" << describe(pooled) << "\n";
            std::printf("  pooled/baseline throughput: %.1fx\n", ratio);
            std::printf("  pool: %zu connects (%llu failed), checkouts ok %llu, timeouts %llu; closes: overflow %llu, broken %llu;\n"
                        "        checkout wait p50 <= %.0f us, p99 <= %.0f us\n",
                        static_cast<std::size_t>(stats.connects_ok),
                        static_cast<unsigned long long>(stats.connects_failed),
                        static_cast<unsigned long long>(stats.checkouts[static_cast<int>(checkout_result::ok)]),
                        static_cast<unsigned long long>(stats.checkouts[static_cast<int>(checkout_result::timeout)]),
                        static_cast<unsigned long long>(stats.closes[static_cast<int>(close_reason::overflow)]),
                        static_cast<unsigned long long>(stats.closes[static_cast<int>(close_reason::broken)]),
                        stats.checkout_wait.quantile(0.5) * 1e6, stats.checkout_wait.quantile(0.99) * 1e6);
            std::printf("  pool now: %zu idle, %zu leased, %zu closing; lease time p50 <= %.0f us (sampled)\n",
                        stats.idle, stats.leased, stats.busy, stats.lease_time.quantile(0.5) * 1e6);
        }
    }

    if (!with_tls) {
        const std::string why = NETPOOL_NO_TLS_REASON;
        if (cfg.json) json_runs.push_back({{"mode", "tls"}, {"skipped", why}});
        else std::cout << "\ntls echo: skipped: " << why << "\n";
    }

    plain_srv.stop();
    if (tls_srv) tls_srv->stop();
    server_work.reset();
    server_thread.join();
    if (cfg.json) {
        report.result(json_runs);
    } else {
        std::cout << "\n" << (status == tools::exit_ok ? "every request succeeded" : "some requests FAILED (see above)")
                  << "\n";
    }
    return status;
}

}  // namespace netpool::cli
