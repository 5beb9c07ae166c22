// bench_smtp: SMTP over loopback against real servers netpool did not write.
//
//   smtp/sink/no_pool          netpool, a new session per message (connect, greeting, EHLO,
//                              one transaction, QUIT), S coroutines
//   smtp/sink/pooled           netpool, a pool of S sessions, S coroutines; timed from the
//                              pool's creation, so its S connects are included
//   smtp/sink/pooled_no_pipelining  the same without PIPELINING (4 round trips per message,
//                              as smtp-source, instead of 2): the protocol held equal
//   smtp/sink/smtp_source_d    Postfix's smtp-source -s S -d: S sessions, each reused
//   smtp/sink/smtp_source      Postfix's smtp-source -s S: a new session per message
//       against Postfix's smtp-sink (C, one process), a fresh one per benchmark
//   smtp/starttls_auth/no_pool  netpool, a new session per message with STARTTLS and AUTH
//   smtp/starttls_auth/pooled   netpool, a pool of T sessions that did STARTTLS and AUTH once
//       against aiosmtpd (tests/servers/smtp_server.py --mode starttls, AUTH PLAIN/LOGIN),
//       certificate verified against a throwaway CA
//
// Every netpool message is a message::render() of a body of NETPOOL_BENCH_SMTP_PAYLOAD bytes
// (about 300 bytes of headers on top); smtp-source's is `-l PAYLOAD` of payload plus its own
// few headers. Counters: ops_per_s (= messages/s), successes, failures, operations,
// concurrency, seconds, p50/p95/p99_us (netpool runs: per message, connect and QUIT included
// for no_pool), err:<category>:<value>, sessions, connections (sessions opened during the
// run), server_received (smtp-sink's own count of delivered messages; -1 if unknown),
// message_bytes. bench/run.py turns them into ratios (pooled/no_pool, pooled/smtp_source_d,
// smtp_source/smtp_source_d).
//
// Missing tools are skipped with the reason (SkipWithError), never replaced by a number.
//
// Sizes (bench/run.py sets them):
//   NETPOOL_BENCH_SMTP_TARGETS              sink,starttls_auth
//   NETPOOL_BENCH_SMTP_SESSIONS             20     (sink: pool size = concurrency = smtp-source -s)
//   NETPOOL_BENCH_SMTP_MESSAGES             20000  (sink: pooled and smtp_source_d)
//   NETPOOL_BENCH_SMTP_MESSAGES_NO_POOL     5000   (sink: no_pool and smtp_source)
//   NETPOOL_BENCH_SMTP_PAYLOAD              512    (body bytes)
//   NETPOOL_BENCH_SMTP_TLS_SESSIONS         10     (aiosmtpd: pool size = concurrency)
//   NETPOOL_BENCH_SMTP_TLS_MESSAGES         3000   (aiosmtpd: pooled)
//   NETPOOL_BENCH_SMTP_TLS_MESSAGES_NO_POOL 300    (aiosmtpd: no_pool)
//   NETPOOL_BENCH_SMTP_TIMEOUT_MS           30000  (connect, handshake, each command)
// Tools: NETPOOL_BENCH_SMTP_SINK (/usr/sbin/smtp-sink), NETPOOL_BENCH_SMTP_SOURCE
// (/usr/sbin/smtp-source), NETPOOL_BENCH_PYTHON (/usr/bin/python3: Debian's, which sees
// python3-aiosmtpd), NETPOOL_BENCH_SMTP_SERVER (default: tests/servers/smtp_server.py of
// the source tree, found from this executable's path, build*/bench/bench_smtp).
#include "load.hpp"

#include <netpool/config.hpp>
#include <netpool/smtp/adapter.hpp>
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/message.hpp>

#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace nb = netpool::bench;
namespace smtp = netpool::smtp;

namespace {

struct config {
    std::vector<std::string> targets;
    std::size_t sessions, messages, messages_no_pool, payload;
    std::size_t tls_sessions, tls_messages, tls_messages_no_pool;
    std::chrono::milliseconds timeout;
    std::string sink, source, python, server_script;

    bool has_target(std::string_view t) const {
        return std::find(targets.begin(), targets.end(), t) != targets.end();
    }
};

config read_config() {
    config c;
    c.targets = nb::split_list(nb::env_or("NETPOOL_BENCH_SMTP_TARGETS", "sink,starttls_auth"));
    c.sessions = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SMTP_SESSIONS", 20));
    c.messages = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SMTP_MESSAGES", 20000));
    c.messages_no_pool = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SMTP_MESSAGES_NO_POOL", 5000));
    c.payload = nb::env_size("NETPOOL_BENCH_SMTP_PAYLOAD", 512);
    c.tls_sessions = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SMTP_TLS_SESSIONS", 10));
    c.tls_messages = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SMTP_TLS_MESSAGES", 3000));
    c.tls_messages_no_pool = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SMTP_TLS_MESSAGES_NO_POOL", 300));
    c.timeout = std::chrono::milliseconds(std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_SMTP_TIMEOUT_MS", 30000)));
    c.sink = nb::env_or("NETPOOL_BENCH_SMTP_SINK", "/usr/sbin/smtp-sink");
    c.source = nb::env_or("NETPOOL_BENCH_SMTP_SOURCE", "/usr/sbin/smtp-source");
    c.python = nb::env_or("NETPOOL_BENCH_PYTHON", "/usr/bin/python3");
    c.server_script = nb::env_or("NETPOOL_BENCH_SMTP_SERVER", netpool::tools::source_tree_file("tests/servers/smtp_server.py"));
    for (const auto& t : c.targets)
        if (t != "sink" && t != "starttls_auth") {
            std::fprintf(stderr, "NETPOOL_BENCH_SMTP_TARGETS: unknown target '%s' (sink, starttls_auth)\n", t.c_str());
            std::exit(2);
        }
    return c;
}

// ---- child processes --------------------------------------------------------------------

using netpool::tools::child_process;

/// Started as a child: stdout to a pipe (for a READY line) or to a file (smtp-sink's count).
child_process::options child_options(bool stdout_pipe) {
    child_process::options o;
    o.stdout_pipe = stdout_pipe;
    return o;
}

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

/// Postfix's smtp-sink on a free loopback port, counting delivered messages (-c).
struct sink_server {
    std::uint16_t port = 0;
    std::unique_ptr<child_process> proc;

    /// Empty on success, else why it could not start.
    std::string start(const config& cfg) {
        if (!executable(cfg.sink))
            return cfg.sink + " not found: Postfix's smtp-sink is not installed (apt-get install postfix; "
                              "scripts/setup postfix)";
        for (int attempt = 0; attempt < 5; ++attempt) {
            port = netpool::tools::free_loopback_port();
            std::vector<std::string> argv{cfg.sink};
            if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "nobody"});  // it refuses to run as root
            argv.insert(argv.end(), {"-c", "127.0.0.1:" + std::to_string(port), "1000"});
            proc = std::make_unique<child_process>(argv, child_options(false));
            auto why = netpool::tools::wait_until_listening(*proc, port, std::chrono::seconds(5), "smtp-sink");
            if (why.empty()) return {};
            if (!proc->exited()) return why;
            // Lost the port to someone else between the probe and its bind: try another.
            if (proc->stderr_tail().find("in use") == std::string::npos)
                return "smtp-sink exited at once (status " + std::to_string(proc->wait()) + "): " + proc->stderr_tail();
        }
        return "smtp-sink could not bind a free port in 5 attempts: " + proc->stderr_tail();
    }
    /// Messages smtp-sink counted (-c prints a running count on stdout), or -1.
    double received() const {
        const std::string out = proc->stdout_text();
        std::size_t end = out.find_last_of("0123456789");
        if (end == std::string::npos) return -1;
        std::size_t begin = end;
        while (begin > 0 && std::isdigit(static_cast<unsigned char>(out[begin - 1]))) --begin;
        return std::stod(out.substr(begin, end - begin + 1));
    }
};

/// aiosmtpd with STARTTLS (certificate from the bench CA) and AUTH for one user.
struct aiosmtpd_server {
    std::uint16_t port = 0;
    std::unique_ptr<child_process> proc;
    std::string user = "bench";
    std::string password;
    std::optional<netpool::tools::password_file> pw;

    std::string start(const config& cfg) {
        if (!executable(cfg.python)) return cfg.python + " not found (Debian's python3, which sees python3-aiosmtpd)";
        if (::access(cfg.server_script.c_str(), R_OK) != 0)
            return cfg.server_script + " not found (set NETPOOL_BENCH_SMTP_SERVER to tests/servers/smtp_server.py)";
        pw.emplace();
        password = pw->password();
        const auto& pki = nb::test_pki();
        proc = std::make_unique<child_process>(
            std::vector<std::string>{cfg.python, cfg.server_script, "--mode", "starttls", "--host", "127.0.0.1",
                                     "--port", "0", "--cert", pki.cert, "--key", pki.key, "--user", user,
                                     "--password-file", pw->path()},
            child_options(true));
        const auto line_read = proc->read_line(std::chrono::seconds(20));
        if (line_read && line_read->rfind("READY ", 0) == 0) {
            port = static_cast<std::uint16_t>(std::stoul(line_read->substr(6)));
            return {};
        }
        if (proc->exited() || !line_read) {
            const std::string err = proc->stderr_tail();
            if (err.find("No module named 'aiosmtpd'") != std::string::npos)
                return "aiosmtpd is not installed for " + cfg.python + " (apt-get install python3-aiosmtpd)";
            return "the aiosmtpd server did not start: " + (err.empty() ? std::string("no READY line") : err);
        }
        return "the aiosmtpd server said '" + *line_read + "' instead of READY <port>";
    }
};

// ---- netpool's side ---------------------------------------------------------------------

/// A body of `size` bytes in lines of 76 characters (CRLF counted).
std::string make_body(std::size_t size) {
    std::string body;
    body.reserve(size);
    std::size_t column = 0;
    while (body.size() < size) {
        if (column == 76 && size - body.size() >= 2) {
            body += "\r\n";
            column = 0;
        } else {
            body += static_cast<char>('a' + body.size() % 26);
            ++column;
        }
    }
    return body;
}

struct smtp_target {
    netpool::endpoint ep;
    std::shared_ptr<asio::ssl::context> tls_ctx;  // STARTTLS needs it on the connection
    smtp::client_options client;
    smtp::envelope env;
    std::string content;
    std::chrono::milliseconds timeout{30000};
};

smtp_target make_target(std::uint16_t port, const config& cfg, bool starttls, const std::string& user = {},
                        const std::string& password = {}, bool pipelining = true) {
    smtp_target t;
    t.client.use_pipelining = pipelining;
    t.ep.host = "127.0.0.1";
    t.ep.port = port;
    if (starttls) {
        t.ep.tls = netpool::tls_mode::starttls;
        t.ep.tls_opts.ca_file = nb::test_pki().ca;
        t.ep.tls_opts.server_name = "localhost";
        t.ep.tls_opts.verify = true;
        t.tls_ctx = netpool::make_client_tls_context(t.ep.tls_opts);
        t.client.cred.user = user;
        t.client.cred.secret = password;
    }
    t.client.helo_name = "bench.localhost";
    t.client.command_timeout = cfg.timeout;
    t.client.data_timeout = cfg.timeout;
    t.timeout = cfg.timeout;
    smtp::message m;
    m.from = "bench-sender@localhost";
    m.to = {"bench-recipient@localhost"};
    m.subject = "netpool bench_smtp";
    m.text = make_body(cfg.payload);
    t.env = m.make_envelope();
    t.content = m.render();
    return t;
}

std::error_code outcome_of(const smtp::send_result& r) {
    if (r.sent) return {};
    return r.ec ? r.ec : make_error_code(netpool::errc::protocol_error);
}

asio::awaitable<std::error_code> quit(const smtp::adapter& proto, netpool::connection& c) {
    co_await proto.close(c);
    co_return std::error_code{};
}

/// A new session per message: connect, greeting, EHLO (STARTTLS, EHLO, AUTH), one
/// transaction, QUIT, close. The adapter's hooks on a bare connection, as the pool would
/// run them, with the pool's timeouts.
nb::load_result run_no_pool(const smtp_target& t, std::size_t total, std::size_t concurrency) {
    asio::io_context ioc(1);
    const smtp::adapter proto(t.client);
    std::uint64_t next_id = 1;
    auto op = [&](std::size_t, std::string&) -> asio::awaitable<std::error_code> {
        netpool::connection c(ioc.get_executor(), t.ep, t.tls_ctx.get(), next_id++);
        auto ec = co_await netpool::connect_transport(c, t.timeout, t.timeout);
        if (!ec)
            ec = co_await netpool::with_timeout(proto.handshake(c), t.timeout,
                                                make_error_code(netpool::errc::handshake_timeout));
        if (!ec) {
            const auto r = co_await proto.send(c, t.env, t.content);
            ec = outcome_of(r);
            if (!r.discard_connection())
                co_await netpool::with_timeout(quit(proto, c), t.timeout,
                                               make_error_code(netpool::errc::operation_timeout));
        }
        c.io().close();
        co_return ec;
    };
    return nb::drive(ioc, total, concurrency, nb::load_result{}, op);
}

struct pooled_run {
    nb::load_result r;
    netpool::pool_stats stats;
};

/// A pool of `sessions` (no overflow) driven by as many coroutines. The pool is created
/// when the timing starts: its connects and handshakes are part of the measured time.
pooled_run run_pooled(const smtp_target& t, std::size_t total, std::size_t sessions) {
    asio::io_context ioc(1);
    const smtp::adapter proto(t.client);
    netpool::pool_options po;
    po.size = sessions;
    po.max_overflow = 0;
    po.checkout_timeout = std::chrono::seconds(120);
    po.connect_timeout = t.timeout;
    po.handshake_timeout = t.timeout;
    pooled_run out;
    std::optional<netpool::pool> p;
    auto op = [&](std::size_t, std::string&) -> asio::awaitable<std::error_code> {
        auto [ec, l] = co_await p->checkout();
        if (ec) co_return ec;
        const auto r = co_await proto.send(*l, t.env, t.content);
        if (r.discard_connection()) l.discard();
        co_return outcome_of(r);
    };
    // drive() starts its clock before running the io_context; the pool's workers start
    // connecting only then.
    p.emplace(ioc.get_executor(), t.ep, proto, po, "bench-smtp");
    out.r = nb::drive(ioc, total, sessions, nb::load_result{}, op);
    out.stats = p->stats();
    nb::close_pool(ioc, *p);
    return out;
}

void report_netpool(benchmark::State& state, nb::load_result& r, std::size_t concurrency, std::size_t total,
                    std::size_t sessions_opened, const smtp_target& t) {
    nb::report(state, r, concurrency, total);
    state.counters["sessions"] = static_cast<double>(concurrency);
    state.counters["connections"] = static_cast<double>(sessions_opened);
    state.counters["message_bytes"] = static_cast<double>(t.content.size());
}

// ---- the benchmarks ---------------------------------------------------------------------

enum class sink_client { no_pool, pooled, pooled_no_pipelining };

void bm_sink_netpool(benchmark::State& state, const config& cfg, sink_client kind) {
    const bool pooled = kind != sink_client::no_pool;
    for (auto _ : state) {
        sink_server sink;
        if (auto why = sink.start(cfg); !why.empty()) {
            state.SkipWithError(why.c_str());
            break;
        }
        const auto t = make_target(sink.port, cfg, false, {}, {}, kind != sink_client::pooled_no_pipelining);
        if (pooled) {
            auto run = run_pooled(t, cfg.messages, cfg.sessions);
            report_netpool(state, run.r, cfg.sessions, cfg.messages, run.stats.connects_ok, t);
        } else {
            auto r = run_no_pool(t, cfg.messages_no_pool, cfg.sessions);
            report_netpool(state, r, cfg.sessions, cfg.messages_no_pool, r.ok + r.failed, t);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the last counter update
        state.counters["server_received"] = sink.received();
    }
}

void bm_sink_smtp_source(benchmark::State& state, const config& cfg, bool reuse) {
    for (auto _ : state) {
        if (!executable(cfg.source)) {
            const std::string why = cfg.source + " not found: Postfix's smtp-source is not installed "
                                                 "(apt-get install postfix; scripts/setup postfix)";
            state.SkipWithError(why.c_str());
            break;
        }
        sink_server sink;
        if (auto why = sink.start(cfg); !why.empty()) {
            state.SkipWithError(why.c_str());
            break;
        }
        const std::size_t total = reuse ? cfg.messages : cfg.messages_no_pool;
        std::vector<std::string> argv{cfg.source, "-s", std::to_string(cfg.sessions), "-m", std::to_string(total),
                                      "-l", std::to_string(cfg.payload)};
        if (reuse) argv.push_back("-d");
        argv.push_back("127.0.0.1:" + std::to_string(sink.port));
        const auto t0 = nb::bench_clock::now();
        child_process source(argv, child_options(false));
        const int status = source.wait();
        const double seconds = std::chrono::duration<double>(nb::bench_clock::now() - t0).count();
        const std::string err = source.stderr_tail();
        if (status != 0) {
            const std::string why = "smtp-source exited with status " + std::to_string(status) + ": " + err;
            state.SkipWithError(why.c_str());
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const double received = sink.received();
        // smtp-source stops at its first error (a fatal exit, handled above); with status 0
        // every message got its 250. smtp-sink's own count says the same, or the run is
        // reported as failing.
        using benchmark::Counter;
        state.SetIterationTime(std::max(seconds, 1e-9));
        const double ok = static_cast<double>(total);
        state.counters["ops_per_s"] = Counter(ok / seconds);
        state.counters["successes"] = Counter(ok);
        state.counters["failures"] = Counter(received >= 0 && received < ok ? ok - received : 0);
        state.counters["operations"] = Counter(ok);
        state.counters["concurrency"] = Counter(static_cast<double>(cfg.sessions));
        state.counters["sessions"] = Counter(static_cast<double>(cfg.sessions));
        state.counters["seconds"] = Counter(seconds);
        state.counters["connections"] = Counter(reuse ? static_cast<double>(cfg.sessions) : ok);
        state.counters["server_received"] = Counter(received);
        if (!err.empty()) state.SetLabel("smtp-source said: " + err);
    }
}

void bm_starttls_auth(benchmark::State& state, const config& cfg, bool pooled) {
    for (auto _ : state) {
        if (!NETPOOL_HAS_TLS) {
            const std::string why = std::string("netpool was built without TLS: ") + NETPOOL_NO_TLS_REASON;
            state.SkipWithError(why.c_str());
            break;
        }
        aiosmtpd_server srv;
        if (auto why = srv.start(cfg); !why.empty()) {
            state.SkipWithError(why.c_str());
            break;
        }
        const auto t = make_target(srv.port, cfg, true, srv.user, srv.password);
        if (pooled) {
            auto run = run_pooled(t, cfg.tls_messages, cfg.tls_sessions);
            report_netpool(state, run.r, cfg.tls_sessions, cfg.tls_messages, run.stats.connects_ok, t);
        } else {
            auto r = run_no_pool(t, cfg.tls_messages_no_pool, cfg.tls_sessions);
            report_netpool(state, r, cfg.tls_sessions, cfg.tls_messages_no_pool, r.ok + r.failed, t);
        }
        state.counters["server_received"] = -1;  // not counted (recording would cost the server disk writes)
    }
}

}  // namespace

int main(int argc, char** argv) {
    static const config cfg = read_config();
    nb::raise_fd_limit();
    ::signal(SIGPIPE, SIG_IGN);
    std::vector<benchmark::internal::Benchmark*> regs;
    // Order: each ratio's two runs close together in time (pooled next to no_pool, the
    // pooled runs next to smtp_source_d, smtp_source_d next to smtp_source); bench/run.py
    // alternates the order from round to round.
    if (cfg.has_target("sink")) {
        regs.push_back(benchmark::RegisterBenchmark("smtp/sink/no_pool", bm_sink_netpool, cfg, sink_client::no_pool));
        regs.push_back(benchmark::RegisterBenchmark("smtp/sink/pooled", bm_sink_netpool, cfg, sink_client::pooled));
        regs.push_back(benchmark::RegisterBenchmark("smtp/sink/pooled_no_pipelining", bm_sink_netpool, cfg,
                                                    sink_client::pooled_no_pipelining));
        regs.push_back(benchmark::RegisterBenchmark("smtp/sink/smtp_source_d", bm_sink_smtp_source, cfg, true));
        regs.push_back(benchmark::RegisterBenchmark("smtp/sink/smtp_source", bm_sink_smtp_source, cfg, false));
    }
    if (cfg.has_target("starttls_auth")) {
        regs.push_back(benchmark::RegisterBenchmark("smtp/starttls_auth/no_pool", bm_starttls_auth, cfg, false));
        regs.push_back(benchmark::RegisterBenchmark("smtp/starttls_auth/pooled", bm_starttls_auth, cfg, true));
    }
    for (auto* b : regs) b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
