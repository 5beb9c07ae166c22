// `netpool redis-bench`: Redis commands through a pool of sessions against a new connection
// per command, measured in the same run.
//
//   --mode pooled       redis::client::command (INCR) through a keyed pool of CONCURRENCY
//                       connections, opened before the clock starts;
//   --mode per-command  per request: connect, the adapter's handshake (nothing to send
//                       without credentials), INCR, QUIT, close;
//   --mode both         per-command, then pooled, and the ratio of their throughputs.
// Without --port it starts a private redis-server on loopback (no persistence) for the run.
#include "args.hpp"
#include "commands.hpp"
#include "load.hpp"
#include "imap_common.hpp"
#include "terminal.hpp"

#include <netpool/netpool.hpp>
#include <netpool/redis/adapter.hpp>
#include <netpool/redis/client.hpp>

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
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

// See protocols/imap/src/adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine
// frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::cli {

namespace {

using clock_type = std::chrono::steady_clock;

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
    "  --json                   one JSON object instead of the table\n\n"
    "Exit status: 0 every command succeeded, 1 some failed or the server could not be used,\n"
    "2 a mistake in the options.\n";

int usage_error(const std::string& message) {
    std::cerr << "netpool redis-bench: " << message << " (see netpool redis-bench --help)\n";
    return exit_usage;
}

/// One INCR on a connection of its own.
asio::awaitable<std::string> per_command(asio::io_context& ioc, const redis::adapter& proto, const endpoint& ep,
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
    if (!ec) co_return std::string();
    std::string why = stage + ": " + ec.message();
    if (ec == redis::errc::server_error) why += " (" + r.to_string() + ")";
    if (stage == "handshake" && !proto.last_handshake_failure().empty())
        why += " (" + proto.last_handshake_failure() + ")";
    co_return why;
}

/// A private redis-server for the run, stopped (SIGTERM) by the destructor.
class own_server {
public:
    own_server() = default;
    own_server(const own_server&) = delete;
    own_server& operator=(const own_server&) = delete;
    ~own_server() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
    }
    /// Starts one on a free loopback port; "" on success, else why not.
    std::string start(std::uint16_t& port) {
        std::string program;
        for (const char* p : {"/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"})
            if (::access(p, X_OK) == 0) program = p;
        if (program.empty())
            return "no --port given and no redis-server found to start (Debian: apt-get install redis-server)";
        port = free_port();
        if (port == 0) return "no free port on 127.0.0.1";
        std::vector<std::string> argv{program, "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                                      "--loglevel", "warning", "--dir", "/tmp"};
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) {
            pid_ = -1;
            return "cannot start " + program + ": " + std::generic_category().message(rc);
        }
        for (int i = 0; i < 500; ++i) {
            if (listening(port)) return {};
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return program + " exited at once (status " + std::to_string(st) + ")";
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return program + " did not listen on 127.0.0.1:" + std::to_string(port) + " within 5 s";
    }

private:
    static std::uint16_t free_port() {
        asio::io_context ioc;
        std::error_code ec;
        asio::ip::tcp::acceptor a(ioc);
        a.open(asio::ip::tcp::v4(), ec);
        if (!ec) a.bind({asio::ip::address_v4::loopback(), 0}, ec);
        return ec ? 0 : a.local_endpoint(ec).port();
    }
    static bool listening(std::uint16_t port) {
        asio::io_context ioc;
        asio::ip::tcp::socket s(ioc);
        std::error_code ec;
        s.connect({asio::ip::address_v4::loopback(), port}, ec);
        return !ec;
    }
    pid_t pid_ = -1;
};

}  // namespace

int redis_bench_main(std::span<const std::string_view> args) {
    static constexpr option_spec specs[] = {{"host", true},     {"port", true},        {"mode", true},
                                            {"requests", true}, {"concurrency", true}, {"json", false},
                                            {"help", false}};
    std::string error;
    const auto opts = parse_options(args, specs, error);
    if (!opts) return usage_error(error);
    const auto& o = *opts;
    if (o.count("help")) {
        std::cout << usage;
        return exit_ok;
    }
    std::vector<std::string> modes{"per-command", "pooled"};
    if (auto it = o.find("mode"); it != o.end()) {
        if (it->second == "pooled" || it->second == "per-command") modes = {std::string(it->second)};
        else if (it->second != "both")
            return usage_error("--mode expects pooled, per-command or both, got '" + std::string(it->second) + "'");
    }
    std::size_t requests = 10000, concurrency = 10;
    const std::pair<std::string_view, std::size_t*> numeric[] = {{"requests", &requests}, {"concurrency", &concurrency}};
    for (auto [name, field] : numeric) {
        auto it = o.find(name);
        if (it == o.end()) continue;
        auto v = parse_unsigned<std::size_t>(it->second, 1, name == "concurrency" ? 10'000 : 100'000'000);
        if (!v) return usage_error("--" + std::string(name) + " expects a positive integer, got '" + std::string(it->second) + "'");
        *field = *v;
    }
    endpoint ep;
    if (auto it = o.find("host"); it != o.end()) {
        if (it->second.empty()) return usage_error("--host expects a host name or address");
        ep.host = std::string(it->second);
    }
    own_server own;
    if (auto it = o.find("port"); it != o.end()) {
        auto v = parse_unsigned<std::uint16_t>(it->second, 1, 65535);
        if (!v) return usage_error("--port expects a port number (1-65535), got '" + std::string(it->second) + "'");
        ep.port = *v;
    } else {
        if (o.count("host")) return usage_error("--host needs --port (without --port a private redis-server is started)");
        if (auto why = own.start(ep.port); !why.empty()) {
            std::cerr << "netpool redis-bench: " << why << "\n";
            return exit_failure;
        }
    }
    const bool json = o.count("json") > 0;
    const bool started = !o.count("port");
    const std::string server = ep.to_string();

    asio::io_context ioc;
    const redis::adapter proto;
    std::uint64_t next_id = 1;
    // Preflight: one request, so that an unusable server is reported once, with its cause.
    {
        std::string why = "did not run";
        asio::co_spawn(
            ioc, [&]() -> asio::awaitable<void> { why = co_await per_command(ioc, proto, ep, next_id++); },
            asio::detached);
        ioc.run();
        if (!why.empty()) {
            std::cerr << "netpool redis-bench: cannot use " << server << ": " << terminal_safe(why) << "\n";
            return exit_failure;
        }
    }

    std::vector<run_result> results;
    for (const auto& mode : modes) {
        run_result r;
        if (mode == "per-command") {
            r = drive(ioc, requests, std::min(concurrency, requests),
                      [&]() { return per_command(ioc, proto, ep, next_id++); });
        } else {
            std::optional<registry> reg;
            reg.emplace(ioc.get_executor());
            std::optional<redis::client> client;  // destroyed before the registry it uses
            client.emplace(*reg);
            redis::account acct;
            acct.server = ep;
            acct.pool.size = concurrency;
            acct.pool.max_overflow = 0;
            const operation op = [&]() -> asio::awaitable<std::string> {
                std::vector<std::string> incr{"INCR", "netpool-bench:counter"};
                auto call = client->command(acct, std::move(incr));
                const auto res = co_await std::move(call);
                co_return res.ok() ? std::string() : res.to_string();
            };
            // Open the pool's connections before the clock starts (up to 10 s).
            drive(ioc, concurrency, concurrency, op);
            const auto until = clock_type::now() + std::chrono::seconds(10);
            ioc.restart();
            while (clock_type::now() < until) {
                const auto st = client->pool_for(acct).pool().stats();
                if (st.idle + st.leased >= concurrency) break;
                ioc.run_for(std::chrono::milliseconds(5));
            }
            r = drive(ioc, requests, std::min(concurrency, requests), op);
            client.reset();
            reg.reset();  // closes the pool: QUIT on each connection
            ioc.restart();
            ioc.run_for(std::chrono::milliseconds(500));
        }
        r.mode = mode;
        results.push_back(std::move(r));
    }

    std::optional<double> ratio;
    if (results.size() == 2 && results[0].per_second() > 0) ratio = results[1].per_second() / results[0].per_second();
    bool failed = false;
    std::ostringstream t;
    if (json) {
        t << "{\"server\":" << imap_common::json_string(server) << ",\"started_server\":" << (started ? "true" : "false")
          << ",\"command\":\"INCR\",\"requests\":" << requests << ",\"concurrency\":" << concurrency << ",\"runs\":[";
        for (std::size_t i = 0; i < results.size(); ++i) {
            auto& r = results[i];
            failed |= r.failed > 0;
            char buf[512];
            std::snprintf(buf, sizeof buf,
                          "{\"mode\":\"%s\",\"requests\":%zu,\"success\":%zu,\"failures\":%zu,\"avg_ms\":%.4f,"
                          "\"median_ms\":%.4f,\"p95_ms\":%.4f,\"rps\":%.1f,\"seconds\":%.3f",
                          r.mode.c_str(), requests, r.ok, r.failed, r.avg(), r.pct(0.5), r.pct(0.95), r.per_second(), r.seconds);
            t << (i ? "," : "") << buf << ",\"failure_reasons\":[";
            std::size_t k = 0;
            for (const auto& [why, n] : r.reasons)
                t << (k++ ? "," : "") << "{\"reason\":" << imap_common::json_string(why) << ",\"count\":" << n << "}";
            t << "]}";
        }
        t << "]";
        if (ratio) t << ",\"rps_ratio_pooled_over_per_command\":" << *ratio;
        t << "}\n";
    } else {
        t << "server " << server << (started ? " (a redis-server started for this run)" : "") << "; INCR, "
          << requests << " requests per mode, concurrency " << concurrency << "\n";
        char buf[256];
        std::snprintf(buf, sizeof buf, "%-12s %9s %8s %9s %11s %8s %10s\n", "mode", "requests", "success", "avg(ms)",
                      "median(ms)", "p95(ms)", "rps");
        t << buf;
        for (auto& r : results) {
            failed |= r.failed > 0;
            std::snprintf(buf, sizeof buf, "%-12s %9zu %8zu %9.3f %11.3f %8.3f %10.1f\n", r.mode.c_str(), requests, r.ok,
                          r.avg(), r.pct(0.5), r.pct(0.95), r.per_second());
            t << buf;
        }
        if (ratio) {
            std::snprintf(buf, sizeof buf, "throughput, pooled / per-command: %.1fx\n", *ratio);
            t << buf;
        }
        for (const auto& r : results) {
            if (r.reasons.empty()) continue;
            t << r.mode << " failures:\n";
            for (const auto& [why, n] : r.reasons) t << "  " << n << " x " << terminal_safe(why) << "\n";
        }
    }
    std::cout << t.str();
    return failed ? exit_failure : exit_ok;
}

}  // namespace netpool::cli
