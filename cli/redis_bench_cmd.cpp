// `netpool redis-bench`: Redis commands through a pool of sessions against a new connection
// per command, measured in the same run.
//
//   --mode pooled       redis::client::command (INCR) through a keyed pool of CONCURRENCY
//                       connections, opened before the clock starts;
//   --mode per-command  per request: connect, the adapter's handshake (nothing to send
//                       without credentials), INCR, QUIT, close;
//   --mode both         per-command, then pooled, and the ratio of their throughputs.
// Without --port it starts a private redis-server on loopback (no persistence) for the run.
#include "commands.hpp"

#include <netpool/tools/args.hpp>
#include <netpool/tools/child_process.hpp>
#include <netpool/tools/load.hpp>
#include <netpool/tools/load_json.hpp>
#include <netpool/tools/metrics_server.hpp>
#include <netpool/tools/pool_run.hpp>
#include <netpool/tools/progress.hpp>
#include <netpool/tools/report.hpp>
#include <netpool/tools/terminal.hpp>

#include <netpool/netpool.hpp>
#include <netpool/redis/adapter.hpp>
#include <netpool/redis/client.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

// See protocols/imap/src/adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine
// frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::cli {

namespace {


constexpr std::string_view usage =
    "usage: netpool redis-bench [options]\n\n"
    "Sends --requests INCR commands, --concurrency at a time, through a pool of connections\n"
    "(--mode pooled) or over a new connection each (--mode per-command: connect, INCR, QUIT,\n"
    "close), and prints: mode, requests, success, avg(ms), median(ms), p95(ms), rps.\n\n"
    "server:\n"
    "  --host HOST              default 127.0.0.1\n"
    "  --port PORT              default: start a private redis-server on loopback for the run\n"
    "                           (no persistence; needs the redis-server program)\n"
    "load:\n"
    "  --mode MODE              pooled | per-command | both (default both: per-command, then\n"
    "                           pooled, and pooled/per-command throughput)\n"
    "  --requests N             commands per mode (default 10000)\n"
    "  --concurrency C          commands in flight; the pool's size (default 10)\n"
    "output:\n"
    "  --json                   one JSON object instead of the table (and on any failure,\n"
    "                           {\"error\": {\"where\", \"what\"}})\n"
    "  --progress               progress on stderr even when it is not a terminal\n";
constexpr std::string_view usage_exit =
    "\nExit status: 0 every command succeeded, 1 some failed or the server could not be used,\n"
    "2 a mistake in the options.\n";

/// One INCR on a connection of its own: connect, handshake, INCR, QUIT, close.
asio::awaitable<tools::outcome> per_command(asio::io_context& ioc, const redis::adapter& proto, const endpoint& ep,
                                            std::uint64_t id) {
    connection c(ioc.get_executor(), ep, nullptr, id);
    constexpr std::chrono::milliseconds timeout{5000};
    std::string stage = "connect";
    auto ec = co_await connect_transport(c, timeout, timeout);
    if (!ec) {
        stage = "handshake";
        ec = co_await with_timeout(proto.handshake(c), timeout, make_error_code(errc::handshake_timeout));
    }
    redis::reply r;
    if (!ec) {
        stage = "INCR";
        const std::string_view incr[] = {"INCR", "netpool-bench:counter"};
        ec = co_await proto.command(c, incr, r);
    }
    if (!ec) co_await proto.close(c);  // QUIT
    c.io().close();
    if (!ec) co_return tools::outcome::success();
    std::string why = stage + ": " + ec.message();
    if (ec == redis::errc::server_error) why += " (" + r.to_string() + ")";
    if (stage == "handshake" && !proto.last_handshake_failure().empty())
        why += " (" + proto.last_handshake_failure() + ")";
    co_return tools::outcome::failure(std::move(why));
}

/// A private redis-server on a free loopback port (no persistence), stopped (SIGTERM) with
/// the child_process. nullptr with `why` set when it cannot be started.
std::unique_ptr<tools::child_process> start_redis_server(std::uint16_t& port, std::string& why) {
    std::string program;
    for (const char* p : {"/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"})
        if (::access(p, X_OK) == 0) program = p;
    if (program.empty()) {
        why = "no --port given and no redis-server found to start (Debian: apt-get install redis-server)";
        return nullptr;
    }
    port = tools::free_loopback_port();
    if (port == 0) {
        why = "no free port on 127.0.0.1";
        return nullptr;
    }
    tools::child_process::options o;
    o.grace = std::chrono::seconds(5);
    auto child = std::make_unique<tools::child_process>(
        std::vector<std::string>{program, "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--daemonize", "no", "--logfile", "", "--loglevel", "warning",
                                 "--dir", "/tmp"},
        o);
    why = tools::wait_until_listening(*child, port, std::chrono::seconds(5), program);
    if (!why.empty()) return nullptr;
    return child;
}

}  // namespace

int redis_bench_main(std::span<const std::string_view> args) {
    tools::command_report report("redis-bench", tools::json_requested(args));
    std::string host, mode = "both";
    std::uint16_t port = 0;
    std::size_t requests = 10000, concurrency = 10;
    bool json = false, help = false, progress = false;
    tools::command_line cl;
    cl.text("host", host);
    cl.port("port", port);
    cl.option("mode", [&](const std::string& v) {
        if (v != "pooled" && v != "per-command" && v != "both")
            throw tools::command_line::bad_value("mode", "pooled, per-command or both", v);
        mode = v;
    });
    cl.count("requests", requests, 1, 100'000'000);
    cl.count("concurrency", concurrency, 1, 10'000);
    cl.flag("json", json);
    cl.flag("progress", progress);
    cl.flag("help", help);
    tools::metrics_options metrics_opts;
    metrics_opts.declare(cl);
    try {
        cl.parse(args);
        metrics_opts.check(cl);
        if (cl.given("host") && host.empty()) throw tools::usage_error("--host expects a host name or address");
        if (cl.given("host") && !cl.given("port"))
            throw tools::usage_error("--host needs --port (without --port a private redis-server is started)");
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }
    if (help) {
        std::cout << usage << tools::metrics_usage << usage_exit;
        return tools::exit_ok;
    }
    // Before anything long, so that a taken port is reported at once. It shows the pool of
    // --mode pooled while it exists (per-command runs have none: an empty exposition).
    std::unique_ptr<tools::metrics_server> metrics;
    try {
        metrics = tools::start_metrics(metrics_opts);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }
    const std::vector<std::string> modes =
        mode == "both" ? std::vector<std::string>{"per-command", "pooled"} : std::vector<std::string>{mode};
    endpoint ep;
    if (!host.empty()) ep.host = host;
    std::unique_ptr<tools::child_process> own;
    const bool started = !cl.given("port");
    if (started) {
        std::string why;
        own = start_redis_server(port, why);
        if (!own) return report.failure("server", why);
    }
    ep.port = port;
    const std::string server = ep.to_string();
    report.set_context("server", server);

    asio::io_context ioc;
    const redis::adapter proto;
    std::uint64_t next_id = 1;
    // Preflight: one request, so that an unusable server is reported once, with its cause.
    {
        tools::outcome first = tools::outcome::failure("did not run");
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { first = co_await per_command(ioc, proto, ep, next_id++); },
            asio::detached);
        ioc.run();
        if (!first.ok()) return report.failure("preflight", "cannot use " + server + ": " + first.message);
    }

    struct run {
        std::string mode;
        tools::load_result r;
    };
    std::vector<run> results;
    const bool show = tools::progress_wanted(progress);
    for (const auto& m : modes) {
        tools::progress shown("redis-bench " + m, requests, show);
        tools::load_options lo{requests, std::min(concurrency, requests), &shown, {}};
        tools::load_result r;
        if (m == "per-command") {
            r = tools::drive(ioc, lo, [&](std::size_t) { return per_command(ioc, proto, ep, next_id++); });
        } else {
            std::optional<registry> reg;
            reg.emplace(ioc.get_executor());
            std::optional<redis::client> client;  // destroyed before the registry it uses
            client.emplace(*reg);
            std::optional<tools::metrics_publication> published;  // gone before the registry
            published.emplace(metrics.get(), [&reg] { return reg->stats(); });
            redis::account acct;
            acct.server = ep;
            acct.pool.size = concurrency;
            acct.pool.max_overflow = 0;
            const auto op = [&](std::size_t) -> asio::awaitable<tools::outcome> {
                std::vector<std::string> incr{"INCR", "netpool-bench:counter"};
                auto call = client->command(acct, std::move(incr));
                const auto res = co_await std::move(call);
                // GCC 12: no conditional expression's temporary in a co_return.
                if (!res.ok()) co_return tools::outcome::failure(res.to_string());
                co_return tools::outcome::success();
            };
            // Open the pool's connections before the clock starts (up to 10 s).
            tools::drive(ioc, {concurrency, concurrency, nullptr, {}}, op);
            tools::wait_for_connections(ioc, *reg, concurrency);
            r = tools::drive(ioc, lo, op);
            published.reset();
            client.reset();
            reg.reset();  // closes the pool: QUIT on each connection
            tools::settle(ioc);
        }
        results.push_back({m, std::move(r)});
    }

    std::optional<double> ratio;
    if (results.size() == 2 && results[0].r.per_second() > 0)
        ratio = results[1].r.per_second() / results[0].r.per_second();
    bool failed = false;
    for (const auto& x : results) failed |= x.r.failed > 0;
    if (json) {
        tools::json doc;
        doc["server"] = server;
        doc["started_server"] = started;
        doc["command"] = "INCR";
        doc["requests"] = requests;
        doc["concurrency"] = concurrency;
        doc["runs"] = tools::json::array();
        for (auto& [m, r] : results) {
            tools::json run;
            run["mode"] = m;
            run["requests"] = requests;
            tools::add_run_summary(run, r, "rps", 4);
            doc["runs"].push_back(std::move(run));
        }
        if (ratio) doc["rps_ratio_pooled_over_per_command"] = *ratio;
        report.result(doc);
        return failed ? tools::exit_failure : tools::exit_ok;
    }
    std::ostringstream t;
    t << "server " << server << (started ? " (a redis-server started for this run)" : "") << "; INCR, " << requests
      << " requests per mode, concurrency " << concurrency << "\n";
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-12s %9s %8s %9s %11s %8s %10s\n", "mode", "requests", "success", "avg(ms)",
                  "median(ms)", "p95(ms)", "rps");
    t << buf;
    for (auto& [m, r] : results) {
        std::snprintf(buf, sizeof buf, "%-12s %9zu %8zu %9.3f %11.3f %8.3f %10.1f\n", m.c_str(), requests, r.ok,
                      r.lat.average() / 1e3, r.lat.percentile(0.5) / 1e3, r.lat.percentile(0.95) / 1e3,
                      r.per_second());
        t << buf;
    }
    if (ratio) {
        std::snprintf(buf, sizeof buf, "throughput, pooled / per-command: %.1fx\n", *ratio);
        t << buf;
    }
    for (const auto& [m, r] : results) {
        if (r.failures.empty()) continue;
        t << m << " failures:\n";
        for (const auto& [why, n] : r.failures_by_count()) t << "  " << n << " x " << tools::terminal_safe(why) << "\n";
    }
    std::cout << t.str();
    return failed ? tools::exit_failure : tools::exit_ok;
}

}  // namespace netpool::cli
