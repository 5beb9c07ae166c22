// `netpool imap-bench`: the latency of "fetch the newest N messages of a mailbox" with a
// reused, logged-in session against a new connection per fetch.
//
//   --mode reuse  imap::client::fetch_latest through a pool of CONCURRENCY sessions that did
//                 connect, TLS, greeting and login once (the registry's keyed pool);
//   --mode new    per iteration, the adapter's hooks on a bare netpool::connection: connect,
//                 TLS, greeting, CAPABILITY, login, EXAMINE, UID SEARCH of the newest N
//                 (sequence numbers EXISTS-N+1:*), UID FETCH of them, LOGOUT, close;
//   --mode both   new, then reuse, and the ratio of their medians.
// Each mode runs --warmup iterations (not measured; for reuse the pool is created by them and
// its sessions are all open before the clock starts), then --iterations measured ones, CONCURRENCY at a time, and prints one row: mode, top,
// warmup, iterations, success, avg(ms), median(ms), p95(ms), qps. A latency runs from the
// start of an iteration to its end (LOGOUT included for new); qps = successful iterations
// per second of the measured phase.
#include "commands.hpp"
#include "imap_common.hpp"

#include <netpool/tools/load.hpp>
#include <netpool/tools/load_json.hpp>
#include <netpool/tools/metrics_server.hpp>
#include <netpool/tools/pool_run.hpp>
#include <netpool/tools/progress.hpp>
#include <netpool/tools/report.hpp>
#include <netpool/tools/terminal.hpp>

#include <netpool/config.hpp>
#include <netpool/netpool.hpp>
#include <netpool/imap/adapter.hpp>
#include <netpool/imap/client.hpp>
#include <netpool/imap/error.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

// See protocols/imap/src/adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine
// frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::cli {

namespace {

namespace ic = imap_common;

constexpr std::string_view usage_head =
    "usage: netpool imap-bench --user USER (--password-file FILE | --password-env VAR) [options]\n\n"
    "Measures fetching the newest --top messages of a mailbox, --iterations times,\n"
    "--concurrency at a time, with a reused logged-in session (--mode reuse: a pool) or a\n"
    "new connection per fetch (--mode new: connect, TLS, greeting, login, EXAMINE, UID\n"
    "SEARCH, UID FETCH, LOGOUT), and prints: mode, top, warmup, iterations, success,\n"
    "avg(ms), median(ms), p95(ms), qps. One session is opened first to check that the\n"
    "server and the login work; if not, the cause is printed and nothing is measured.\n\n";
constexpr std::string_view usage_tail =
    "  --top N                  messages per fetch, the newest (default 5)\n"
    "  --fetch PARTS            summary (flags, envelope, size) | header (+ the header) |\n"
    "                           full (+ the whole message) (default header)\n"
    "load:\n"
    "  --mode MODE              reuse | new | both (default reuse; both: new, then reuse,\n"
    "                           and the ratio of the medians)\n"
    "  --warmup N               iterations before measuring, not counted (default 10); for\n"
    "                           reuse, the pool's sessions are all open before measuring\n"
    "  --iterations N           measured iterations (default 100)\n"
    "  --concurrency C          iterations in flight at once; the pool's size (default 1)\n"
    "output:\n"
    "  --json                   one JSON object instead of the table (and on any failure,\n"
    "                           {\"error\": {\"where\", \"what\"}})\n"
    "  --progress               progress on stderr even when it is not a terminal\n"
    "  --redact                 show neither the user name nor the host ([user], [host])\n";
constexpr std::string_view usage_exit =
    "\nExit status: 0 every iteration succeeded, 1 some failed or the server could not be\n"
    "used, 2 a mistake in the options.\n";

struct bench_config {
    ic::server_config server;
    std::vector<std::string> modes;  // "new", "reuse"
    std::size_t warmup = 10, iterations = 100, concurrency = 1;
    imap::fetch_parts parts = imap::fetch_parts::header;
};

/// A failed fetch's error and the server's words (for the preflight's hint).
struct failure_record {
    std::error_code ec;
    std::string detail;
};

/// Success for a fetch that got what it asked for, else what went wrong: the stage, the error
/// and the server's words (the login's from the adapter, a command's from the session).
tools::outcome outcome(const std::string& stage, const std::error_code& ec, const std::string& detail,
                       std::size_t got, std::size_t want) {
    if (ec) return tools::outcome::failure(describe_failure(stage, ec, detail));
    if (got != want)
        return tools::outcome::failure("UID FETCH: " + std::to_string(got) + " messages instead of " + std::to_string(want));
    return tools::outcome::success();
}

asio::awaitable<std::error_code> logout(const imap::adapter& proto, connection& c) {
    co_await proto.close(c);
    co_return std::error_code{};
}

/// One fetch on a new connection. `exists` gets the mailbox's message count.
asio::awaitable<tools::outcome> fetch_on_new_connection(asio::io_context& ioc, const imap::adapter& proto,
                                                     const ic::server_config& cfg, asio::ssl::context* tls_ctx,
                                                     std::uint64_t id, std::size_t top, imap::fetch_parts parts,
                                                     bool logout_after, std::uint32_t* exists = nullptr,
                                                     failure_record* failure = nullptr) {
    connection c(ioc.get_executor(), cfg.ep, tls_ctx, id);
    std::string stage = "connect";
    auto ec = co_await connect_transport(c, cfg.timeout, cfg.timeout);
    if (!ec) {
        stage = "login";
        ec = co_await with_timeout(proto.handshake(c), cfg.timeout, make_error_code(errc::handshake_timeout));
    }
    imap::mailbox_info info{};
    if (!ec) {
        stage = "EXAMINE";
        ec = co_await proto.select(c, cfg.mailbox, true, &info);
    }
    std::vector<std::uint32_t> uids;
    if (!ec) {
        // As fetch_latest does: only the sequence numbers of the newest `top`.
        stage = "UID SEARCH";
        const std::string criteria =
            info.exists > top ? std::to_string(info.exists - top + 1) + ":*" : std::string("ALL");
        ec = co_await proto.uid_search(c, criteria, uids);
    }
    std::vector<imap::fetched_message> msgs;
    std::size_t want = 0;
    if (!ec) {
        std::sort(uids.begin(), uids.end());
        want = std::min(top, uids.size());
        std::vector<std::uint32_t> newest(uids.end() - static_cast<std::ptrdiff_t>(want), uids.end());
        stage = "UID FETCH";
        if (!newest.empty()) ec = co_await proto.uid_fetch(c, newest, msgs, parts);
    }
    if (exists) *exists = info.exists;
    std::string detail;
    if (ec) {
        const imap::session* s = imap::adapter::session_state(c);
        detail = stage == "login" ? proto.last_handshake_failure() : s ? s->last_failure : std::string();
        if (failure) *failure = {ec, detail};
    }
    if (!ec && logout_after)
        co_await with_timeout(logout(proto, c), cfg.timeout, make_error_code(errc::operation_timeout));
    c.io().close();
    co_return outcome(stage, ec, detail, msgs.size(), want);
}

}  // namespace

int imap_bench_main(std::span<const std::string_view> args) {
    tools::command_report report("imap-bench", tools::json_requested(args));
    bench_config cfg;
    cfg.server.top = 5;
    cfg.modes = {"reuse"};
    option_values v;
    bool help = false, progress = false;
    tools::command_line cl;
    ic::declare_server_options(cl, v, cfg.server);
    cl.option("mode", [&](const std::string& m) {
        if (m == "reuse" || m == "new") cfg.modes = {m};
        else if (m == "both") cfg.modes = {"new", "reuse"};
        else throw tools::command_line::bad_value("mode", "reuse, new or both", m);
    });
    cl.option("fetch", [&](const std::string& p) {
        const auto parts = imap::parse_fetch_parts(p);
        if (!parts) throw tools::command_line::bad_value("fetch", "summary, header or full", p);
        cfg.parts = *parts;
    });
    cl.count("warmup", cfg.warmup, 0, 100'000'000);
    cl.count("iterations", cfg.iterations, 1, 100'000'000);
    cl.count("concurrency", cfg.concurrency, 1, 10'000);
    cl.flag("progress", progress);
    cl.flag("help", help);
    tools::metrics_options metrics_opts;
    metrics_opts.declare(cl);
    try {
        cl.parse(args);
        if (help) {
            ic::print_usage(usage_head, std::string(usage_tail) + std::string(tools::metrics_usage) +
                                            std::string(usage_exit));
            return tools::exit_ok;
        }
        ic::read_server_options(cl, v, cfg.server);
        metrics_opts.check(cl);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }
    const auto& srv = cfg.server;
    const ic::redactor redact(srv);
    report.set_scrub([&redact](std::string s) { return redact(std::move(s)); });
    const std::string server = ic::shown_server(srv);
    report.set_context("server", server);
    // Before the preflight, so that a taken port is reported at once. It shows the pool of
    // --mode reuse while it exists (--mode new has none: an empty exposition).
    std::unique_ptr<tools::metrics_server> metrics;
    try {
        metrics = tools::start_metrics(metrics_opts);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }

    imap::client_options copts;
    copts.cred.user = srv.user;
    copts.cred.secret = srv.password;
    copts.allow_plaintext_login = srv.allow_plaintext_login;
    copts.command_timeout = srv.timeout;
    imap::account acct;
    acct.server = srv.ep;
    acct.client = copts;
    acct.pool.size = cfg.concurrency;
    acct.pool.max_overflow = 0;
    acct.pool.checkout_timeout = srv.timeout;
    acct.pool.connect_timeout = srv.timeout;
    acct.pool.handshake_timeout = srv.timeout;
    std::optional<imap::adapter> proto;
    try {
        copts.validate();
        acct.pool.validate();
        proto.emplace(copts);
    } catch (const config_error& e) {
        return report.usage(std::string("invalid setting: ") + e.what());
    }
    std::shared_ptr<asio::ssl::context> tls_ctx;
    try {
        tls_ctx = client_tls_context(srv.ep);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }

    asio::io_context ioc;
    std::uint64_t next_id = 1;

    // Preflight: one session, so that an unusable server or login is reported once, with its
    // cause, instead of as ITERATIONS identical failures (or checkouts waiting out timeouts).
    std::uint32_t exists = 0;
    {
        tools::outcome first = tools::outcome::failure("did not run");
        failure_record why_not;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                first = co_await fetch_on_new_connection(ioc, *proto, srv, tls_ctx.get(), next_id++, 1, cfg.parts, true, &exists,
                                                       &why_not);
            },
            asio::detached);
        ioc.run();
        if (!first.ok()) {
            return report.failure("preflight", "cannot use " + server + ": " + first.message,
                                  hint_for(ic::hints(srv), why_not.ec, why_not.detail));
        }
    }
    if (!srv.json) {
        std::ostringstream h;
        h << "server " << server << ", user " << ic::shown_user(srv)
          << (srv.ep.tls == tls_mode::none ? ", no TLS" : ", TLS verified") << "; mailbox "
          << tools::dump(srv.mailbox) << " with " << exists << " messages; concurrency " << cfg.concurrency
          << "\n";
        if (exists < srv.top)
            h << "note: the mailbox holds fewer messages than --top " << srv.top << ": each fetch gets " << exists
              << "\n";
        std::cout << redact(h.str()) << std::flush;
    }

    struct run {
        std::string mode;
        tools::load_result r;
    };
    std::vector<run> results;
    const bool show = tools::progress_wanted(progress);
    for (const auto& mode : cfg.modes) {
        tools::progress shown("imap-bench " + mode, cfg.iterations, show);
        const tools::load_options warm{cfg.warmup, std::min(cfg.concurrency, cfg.warmup), nullptr, {}};
        const tools::load_options measured{cfg.iterations, std::min(cfg.concurrency, cfg.iterations), &shown, {}};
        tools::load_result r;
        if (mode == "new") {
            const auto op = [&](std::size_t) {
                return fetch_on_new_connection(ioc, *proto, srv, tls_ctx.get(), next_id++, srv.top, cfg.parts, true);
            };
            if (cfg.warmup > 0) tools::drive(ioc, warm, op);
            r = tools::drive(ioc, measured, op);
        } else {
            std::optional<registry> reg;
            reg.emplace(ioc.get_executor());
            std::optional<imap::client> client;  // destroyed before the registry it uses
            client.emplace(*reg);
            // The labels (pool name, endpoint) through the redactor, as every other output:
            // with --redact the host is [host] there too.
            std::optional<tools::metrics_publication> published;  // gone before the registry
            published.emplace(metrics.get(), [&reg, &redact] {
                auto pools = reg->stats();
                for (auto& p : pools) {
                    p.name = redact(std::move(p.name));
                    p.endpoint = redact(std::move(p.endpoint));
                }
                return pools;
            });
            const std::size_t want = std::min<std::size_t>(srv.top, exists);
            const auto op = [&](std::size_t) -> asio::awaitable<tools::outcome> {
                const auto res = co_await client->fetch_latest(acct, srv.mailbox, srv.top, cfg.parts);
                if (res.ec) co_return tools::outcome::failure(describe_failure(res.stage, res.ec, res.detail));
                // The mailbox does not change during a run: every fetch gets the same count.
                if (res.messages.size() != want)
                    co_return tools::outcome::failure("fetch_latest: " + std::to_string(res.messages.size()) +
                                                      " messages instead of " + std::to_string(want));
                co_return tools::outcome::success();
            };
            if (cfg.warmup > 0) tools::drive(ioc, warm, op);
            // The pool opens its CONCURRENCY sessions at creation; a short warm-up can end
            // before the last ones are logged in: let them finish (up to 10 s) before timing.
            // With --warmup 0 no fetch has run, so there is no pool yet and nothing to wait
            // for (waiting for its sessions would only wait out the 10 s).
            if (cfg.warmup > 0) tools::wait_for_connections(ioc, *reg, cfg.concurrency);
            r = tools::drive(ioc, measured, op);
            published.reset();
            client.reset();
            reg.reset();  // closes the pool: LOGOUT on each session
            tools::settle(ioc);
        }
        results.push_back({mode, std::move(r)});
    }

    std::optional<double> ratio;
    if (results.size() == 2 && results[0].r.ok > 0 && results[1].r.ok > 0) {
        const double reuse = results[1].r.lat.percentile(0.5);
        if (reuse > 0) ratio = results[0].r.lat.percentile(0.5) / reuse;
    }
    bool failed = false;
    for (const auto& x : results) failed |= x.r.failed > 0;
    if (srv.json) {
        tools::json doc;
        doc["server"] = server;
        doc["user"] = ic::shown_user(srv);
        doc["tls"] = srv.ep.tls != tls_mode::none;
        doc["mailbox"] = srv.mailbox;
        doc["exists"] = exists;
        doc["concurrency"] = cfg.concurrency;
        doc["runs"] = tools::json::array();
        for (auto& [mode, r] : results) {
            tools::json run;
            run["mode"] = mode;
            run["top"] = srv.top;
            run["fetch"] = imap::to_string(cfg.parts);
            run["warmup"] = cfg.warmup;
            run["iterations"] = cfg.iterations;
            tools::add_run_summary(run, r, "qps", 3);
            doc["runs"].push_back(std::move(run));
        }
        if (ratio) doc["median_ratio_new_over_reuse"] = *ratio;
        report.result(doc);
        return failed ? tools::exit_failure : tools::exit_ok;
    }
    std::ostringstream t;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-6s %5s %7s %11s %8s %9s %11s %8s %9s\n", "mode", "top", "warmup", "iterations",
                  "success", "avg(ms)", "median(ms)", "p95(ms)", "qps");
    t << buf;
    for (auto& [mode, r] : results) {
        std::snprintf(buf, sizeof buf, "%-6s %5zu %7zu %11zu %8zu %9.2f %11.2f %8.2f %9.1f\n", mode.c_str(), srv.top,
                      cfg.warmup, cfg.iterations, r.ok, r.lat.average() / 1e3, r.lat.percentile(0.5) / 1e3,
                      r.lat.percentile(0.95) / 1e3, r.per_second());
        t << buf;
    }
    if (ratio) {
        std::snprintf(buf, sizeof buf, "median latency, new / reuse: %.1fx\n", *ratio);
        t << buf;
    }
    for (const auto& [mode, r] : results) {
        if (r.failures.empty()) continue;
        t << mode << " failures:\n";
        for (const auto& [why, n] : r.failures_by_count())
            t << "  " << n << " x " << tools::terminal_safe(redact(why)) << "\n";
    }
    std::cout << redact(t.str());
    return failed ? tools::exit_failure : tools::exit_ok;
}

}  // namespace netpool::cli
