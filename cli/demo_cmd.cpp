// `netpool demo`: the main job. Starts netpool's echo server on loopback (plain and TLS,
// with a throwaway CA made on the spot), drives the same load through a new connection per
// request and through a pool, and prints what was done, the errors, and the pool's stats.
// Built without TLS, it runs the plain half and says that the TLS half was skipped.
#include "args.hpp"
#include "commands.hpp"

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

using clock_type = std::chrono::steady_clock;

struct demo_config {
    std::size_t requests = 20000;
    std::size_t concurrency = 100;
    std::size_t size = 10;
    std::size_t overflow = 90;
    std::size_t payload = 64;
    bool json = false;
};

/// A CA and a server certificate for 127.0.0.1/localhost, made with the openssl command in a
/// fresh temporary directory (removed at exit). Throws std::runtime_error if that fails.
struct throwaway_pki {
    std::filesystem::path dir;
    std::string ca, cert, key;

    throwaway_pki() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "netpool-demo-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory");
        dir = tmpl;
        ca = (dir / "ca.pem").string();
        cert = (dir / "server.pem").string();
        key = (dir / "server.key").string();
        const std::string d = dir.string();
        const std::string script =
            "set -e; cd '" + d + "'; "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
            "-subj '/CN=netpool demo CA' -keyout ca.key -out ca.pem; "
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost' "
            "-keyout server.key -out server.csr; "
            "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext; "
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
            "-extfile san.ext -out server.pem";
        const std::string cmd = "sh -c \"" + script + "\" > '" + d + "/openssl.log' 2>&1";
        if (std::system(cmd.c_str()) != 0)
            throw std::runtime_error("could not make a test certificate with the openssl command (see " + d +
                                     "/openssl.log); is openssl installed?");
    }
    ~throwaway_pki() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
};

struct run_result {
    std::string name;
    std::size_t ok = 0, failed = 0;
    std::map<std::string, std::size_t> errors;
    double seconds = 0;
    std::vector<double> latencies_us;

    double ops() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
    double pct(double q) {
        if (latencies_us.empty()) return 0;
        std::sort(latencies_us.begin(), latencies_us.end());
        const auto i = static_cast<std::size_t>(q * static_cast<double>(latencies_us.size() - 1));
        return latencies_us[i];
    }
};

/// Runs `requests` operations with `concurrency` coroutines on `ioc`; `op` does one.
template <class Op>
run_result drive(asio::io_context& ioc, std::string name, const demo_config& cfg, Op op) {
    run_result r;
    r.name = std::move(name);
    r.latencies_us.reserve(cfg.requests);
    std::size_t next = 0, done = 0;
    const auto t0 = clock_type::now();
    auto last_progress = t0;
    std::size_t running = cfg.concurrency;
    auto worker = [&]() -> asio::awaitable<void> {
        while (next < cfg.requests) {
            ++next;
            const auto s = clock_type::now();
            std::error_code ec = co_await op();
            const auto e = clock_type::now();
            ++done;
            if (ec) {
                ++r.failed;
                ++r.errors[ec.message()];
            } else {
                ++r.ok;
                r.latencies_us.push_back(std::chrono::duration<double, std::micro>(e - s).count());
            }
            if (!cfg.json && e - last_progress > std::chrono::milliseconds(250)) {
                last_progress = e;
                std::fprintf(stderr, "\r  %-28s %zu/%zu", r.name.c_str(), done, cfg.requests);
            }
        }
        // A pool's idle workers keep the io_context busy: stop it when the load is done.
        if (--running == 0) ioc.stop();
    };
    for (std::size_t i = 0; i < cfg.concurrency; ++i) asio::co_spawn(ioc, worker(), asio::detached);
    ioc.restart();
    ioc.run();
    r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    if (!cfg.json) std::fprintf(stderr, "\r%60s\r", "");
    return r;
}

endpoint target(std::uint16_t port, const throwaway_pki* pki) {
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
                  r.name.c_str(), r.ok, r.failed, r.ops(), r.pct(0.5), r.pct(0.99));
    std::string s = line;
    for (const auto& [msg, n] : r.errors) s += "\n      error: " + msg + " x" + std::to_string(n);
    return s;
}

}  // namespace

int demo_main(std::span<const std::string_view> args) {
    static constexpr std::array specs{
        option_spec{"requests", true}, option_spec{"concurrency", true}, option_spec{"size", true},
        option_spec{"overflow", true}, option_spec{"payload", true},     option_spec{"json", false},
        option_spec{"help", false},
    };
    std::string error;
    auto opts = parse_options(args, specs, error);
    if (!opts) {
        std::cerr << "netpool demo: " << error << " (see --help)\n";
        return exit_usage;
    }
    if (opts->count("help")) {
        std::cout << "usage: netpool demo [--requests N] [--concurrency C] [--size S] [--overflow O]\n"
                     "                    [--payload BYTES] [--json]\n"
                     "Starts netpool's echo server on 127.0.0.1 (plain, then TLS with a throwaway CA),\n"
                     "runs N echo requests at concurrency C with a new connection per request, then\n"
                     "through a pool of S + O connections, and prints throughput, latency, errors and\n"
                     "the pool's stats (--json: everything, with histograms, as JSON).\n"
                     "Defaults: 20000 requests, concurrency 100, pool 10 + 90 (overflow lingers 1 s), 64 B.\n";
        if (!NETPOOL_HAS_TLS) std::cout << "The TLS half is skipped: " << NETPOOL_NO_TLS_REASON << ".\n";
        return exit_ok;
    }
    demo_config cfg;
    const std::pair<std::string_view, std::size_t*> numeric[] = {
        {"requests", &cfg.requests}, {"concurrency", &cfg.concurrency}, {"size", &cfg.size},
        {"overflow", &cfg.overflow}, {"payload", &cfg.payload}};
    for (auto [name, field] : numeric) {
        if (auto it = opts->find(name); it != opts->end()) {
            auto v = parse_unsigned(it->second, 1, 10'000'000);
            if (!v) {
                std::cerr << "netpool demo: --" << name << " expects a positive integer, got '" << it->second << "'\n";
                return exit_usage;
            }
            *field = static_cast<std::size_t>(*v);
        }
    }
    cfg.json = opts->count("json") > 0;

    // The TLS half needs a TLS-capable netpool; without one there is no CA to make either.
    constexpr bool with_tls = NETPOOL_HAS_TLS != 0;
    std::optional<throwaway_pki> pki;
    if (with_tls) pki.emplace();
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
    std::vector<std::string> json_runs;
    int status = exit_ok;

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
        if (baseline.failed || pooled.failed) status = exit_failure;
        if (cfg.json) {
            char buf[512];
            std::snprintf(buf, sizeof buf,
                          "{\"mode\":\"%s\",\"requests\":%zu,\"concurrency\":%zu,"
                          "\"baseline\":{\"ok\":%zu,\"failed\":%zu,\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f},"
                          "\"pooled\":{\"ok\":%zu,\"failed\":%zu,\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f},"
                          "\"ratio\":%.2f,\"pool_stats\":",
                          mode.c_str(), cfg.requests, cfg.concurrency, baseline.ok, baseline.failed, baseline.ops(),
                          baseline.pct(0.5), baseline.pct(0.99), pooled.ok, pooled.failed, pooled.ops(),
                          pooled.pct(0.5), pooled.pct(0.99), ratio);
            json_runs.push_back(std::string(buf) + to_json(stats) + "}");
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
        if (cfg.json) json_runs.push_back("{\"mode\":\"tls\",\"skipped\":\"" + why + "\"}");
        else std::cout << "\ntls echo: skipped: " << why << "\n";
    }

    plain_srv.stop();
    if (tls_srv) tls_srv->stop();
    server_work.reset();
    server_thread.join();
    if (cfg.json) {
        std::cout << "[";
        for (std::size_t i = 0; i < json_runs.size(); ++i) std::cout << (i ? "," : "") << json_runs[i];
        std::cout << "]\n";
    } else {
        std::cout << "\n" << (status == exit_ok ? "every request succeeded" : "some requests FAILED (see above)")
                  << "\n";
    }
    return status;
}

}  // namespace netpool::cli
