// bench_imap: "fetch the newest N messages of INBOX" against a real IMAP server on loopback
// (Dovecot, or Cyrus IMAP: NETPOOL_BENCH_IMAP_SERVER_NAME), with a reused, logged-in session
// against a new connection per fetch.
//
//   imap/<plain|tls>/reuse/top:<n>/c:<c>   imap::client::fetch_latest through a fresh registry
//                                           (one keyed pool of c sessions), c coroutines
//   imap/<plain|tls>/new/top:<n>/c:<c>     per fetch, the adapter's hooks on a bare
//                                           netpool::connection: connect, TLS, greeting,
//                                           CAPABILITY, login, EXAMINE, UID SEARCH of the
//                                           newest n, UID FETCH of them, LOGOUT, close;
//                                           c coroutines
// plain = the imap port, no TLS, plaintext LOGIN allowed (both servers' scripts allow it); tls = the
// imaps port, implicit TLS, the certificate verified against the bench's throwaway CA for
// "localhost". Each benchmark runs NETPOOL_BENCH_IMAP_WARMUP iterations first (not measured;
// for reuse they create the pool, and then the benchmark waits until its c sessions are
// open), then its measured iterations. A latency runs from the start of an iteration to its end (LOGOUT included
// for new); every fetch must return min(n, messages in INBOX) messages, else it counts as a
// failure.
//
// Counters: success, failures, avg_ms, median_ms, p95_ms, qps (successful fetches per second
// of the measured phase), top, concurrency, iterations, warmup, connections (sessions
// opened during the measured phase: the pool's connects, or one per fetch for new),
// err:<category>:<value>; the label lists the failures' messages. bench/run.py reports
// median(new)/median(reuse) per (mode, top, concurrency).
//
// The server is started once per process, INBOX seeded with NETPOOL_BENCH_IMAP_SEED messages:
//   dovecot (default)  tests/servers/dovecot_server.py; root and the Debian package
//                      dovecot-imapd needed
//   cyrus              tests/servers/cyrus_server.py; root, the Debian packages cyrus-common
//                      and sasl2-bin, and the imapd that scripts/cyrus-fetch unpacks
//                      (NETPOOL_CYRUS_IMAPD, default
//                      /var/cache/netpool/cyrus-imapd/root/usr/lib/cyrus/bin/imapd)
// Which one is in the JSON output's context ("imap_server": dovecot | cyrus; the benchmark
// names are the same for both). When the server cannot be started every benchmark is skipped
// with the reason (SkipWithError), nothing is estimated in its place.
//
// Sizes (bench/run.py sets them):
//   NETPOOL_BENCH_IMAP_MODES            plain,tls
//   NETPOOL_BENCH_IMAP_KINDS            reuse,new
//   NETPOOL_BENCH_IMAP_TOPS             1,5,20
//   NETPOOL_BENCH_IMAP_CONCURRENCY      1,16
//   NETPOOL_BENCH_IMAP_ITERATIONS       400   (reuse)
//   NETPOOL_BENCH_IMAP_ITERATIONS_NEW   200   (new)
//   NETPOOL_BENCH_IMAP_WARMUP           20
//   NETPOOL_BENCH_IMAP_SEED             30    (messages in INBOX)
//   NETPOOL_BENCH_IMAP_TIMEOUT_MS       30000 (connect, handshake, each command, a checkout)
//   NETPOOL_BENCH_IMAP_REVERSE          0     (1: register the benchmarks in reverse order,
//                                              so run.py's rounds can alternate the order)
// Server and tools:
//   NETPOOL_BENCH_IMAP_SERVER_NAME      dovecot | cyrus (default dovecot)
//   NETPOOL_BENCH_IMAP_SERVER           the server's script (default: tests/servers/
//                                       <name>_server.py of the source tree, found from this
//                                       executable's path)
//   NETPOOL_CYRUS_IMAPD                 cyrus only: Cyrus's imapd (passed as --imapd)
//   NETPOOL_BENCH_PYTHON                /usr/bin/python3
#include "load.hpp"

#include <netpool/config.hpp>
#include <netpool/imap/adapter.hpp>
#include <netpool/imap/client.hpp>
#include <netpool/imap/error.hpp>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace nb = netpool::bench;
namespace imap = netpool::imap;

namespace {

struct config {
    std::vector<std::string> modes, kinds;
    std::vector<std::size_t> tops, concurrency;
    std::size_t iterations, iterations_new, warmup, seed;
    std::chrono::milliseconds timeout;
    bool reverse;
    std::string server_name;  ///< "dovecot" or "cyrus"
    std::string python, server_script;
    std::string cyrus_imapd;  ///< cyrus only
};

const char* const kCyrusImapd = "/var/cache/netpool/cyrus-imapd/root/usr/lib/cyrus/bin/imapd";
const char* const kCyrusMaster = "/usr/lib/cyrus/bin/master";

/// "Dovecot" or "Cyrus IMAP", for messages.
std::string display_name(const config& c) { return c.server_name == "cyrus" ? "Cyrus IMAP" : "Dovecot"; }

config read_config() {
    config c;
    c.modes = nb::split_list(nb::env_or("NETPOOL_BENCH_IMAP_MODES", "plain,tls"));
    c.kinds = nb::split_list(nb::env_or("NETPOOL_BENCH_IMAP_KINDS", "reuse,new"));
    c.tops = nb::env_sizes("NETPOOL_BENCH_IMAP_TOPS", "1,5,20");
    c.concurrency = nb::env_sizes("NETPOOL_BENCH_IMAP_CONCURRENCY", "1,16");
    c.iterations = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_IMAP_ITERATIONS", 400));
    c.iterations_new = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_IMAP_ITERATIONS_NEW", 200));
    c.warmup = nb::env_size("NETPOOL_BENCH_IMAP_WARMUP", 20);
    c.seed = std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_IMAP_SEED", 30));
    c.timeout = std::chrono::milliseconds(std::max<std::size_t>(1, nb::env_size("NETPOOL_BENCH_IMAP_TIMEOUT_MS", 30000)));
    c.reverse = nb::env_size("NETPOOL_BENCH_IMAP_REVERSE", 0) != 0;
    c.python = nb::env_or("NETPOOL_BENCH_PYTHON", "/usr/bin/python3");
    c.server_name = nb::env_or("NETPOOL_BENCH_IMAP_SERVER_NAME", "dovecot");
    if (c.server_name.empty()) c.server_name = "dovecot";
    if (c.server_name != "dovecot" && c.server_name != "cyrus") {
        std::fprintf(stderr, "NETPOOL_BENCH_IMAP_SERVER_NAME: unknown server '%s' (dovecot, cyrus)\n",
                     c.server_name.c_str());
        std::exit(2);
    }
    c.server_script = nb::env_or("NETPOOL_BENCH_IMAP_SERVER",
                                 netpool::tools::source_tree_file("tests/servers/" + c.server_name + "_server.py"));
    c.cyrus_imapd = nb::env_or("NETPOOL_CYRUS_IMAPD", kCyrusImapd);
    if (c.cyrus_imapd.empty()) c.cyrus_imapd = kCyrusImapd;
    for (const auto& m : c.modes)
        if (m != "plain" && m != "tls") {
            std::fprintf(stderr, "NETPOOL_BENCH_IMAP_MODES: unknown mode '%s' (plain, tls)\n", m.c_str());
            std::exit(2);
        }
    for (const auto& k : c.kinds)
        if (k != "reuse" && k != "new") {
            std::fprintf(stderr, "NETPOOL_BENCH_IMAP_KINDS: unknown kind '%s' (reuse, new)\n", k.c_str());
            std::exit(2);
        }
    return c;
}

// ---- The IMAP server, in a child process ------------------------------------------------

/// The server's wrapper script (dovecot_server.py or cyrus_server.py) as a child
/// (tools::child_process): stdout to a pipe (for the READY line), stderr kept for the reason
/// when it fails. Dies with this process (PR_SET_PDEATHSIG SIGTERM: the script stops its
/// server on SIGTERM; SIGKILL of the script would leave the server's master process running,
/// so it is stopped with SIGTERM and given 5 s).
class server_process {
public:
    std::string reason;  ///< why it is not running ("" when it is)
    std::uint16_t imap_port = 0, imaps_port = 0;
    std::string user = "bench";
    std::string password;

    explicit server_process(const config& cfg) { reason = start(cfg); }
    ~server_process() {
        proc_.reset();
        std::error_code ignored;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    }
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

private:
    std::optional<netpool::tools::password_file> pw_;
    std::optional<netpool::tools::child_process> proc_;
    std::string dir_;

    std::string start(const config& cfg) {
        const bool cyrus = cfg.server_name == "cyrus";
        if (cyrus) {
            if (::geteuid() != 0)
                return "Cyrus IMAP needs root (its master switches to the cyrus user); run the benchmark as root";
            if (::access(kCyrusMaster, X_OK) != 0)
                return std::string("Cyrus IMAP's master is not installed (") + kCyrusMaster +
                       " missing): run scripts/cyrus-fetch (installs cyrus-common and sasl2-bin)";
            if (::access(cfg.cyrus_imapd.c_str(), X_OK) != 0)
                return "Cyrus IMAP's imapd not found (" + cfg.cyrus_imapd +
                       "): run scripts/cyrus-fetch (it unpacks cyrus-imapd, which is not installed because it "
                       "conflicts with dovecot-imapd), or set NETPOOL_CYRUS_IMAPD";
        } else {
            if (::geteuid() != 0) return "Dovecot needs root (its privilege separation); run the benchmark as root";
            if (::access("/usr/sbin/dovecot", X_OK) != 0)
                return "Dovecot is not installed (/usr/sbin/dovecot missing): apt-get install dovecot-imapd "
                       "(scripts/setup dovecot-imapd)";
        }
        if (::access(cfg.python.c_str(), X_OK) != 0) return cfg.python + " not found";
        if (::access(cfg.server_script.c_str(), R_OK) != 0)
            return cfg.server_script + " not found (set NETPOOL_BENCH_IMAP_SERVER to tests/servers/" +
                   cfg.server_name + "_server.py)";
        char tmpl[] = "/tmp/netpool-bench-imap-XXXXXX";
        if (!::mkdtemp(tmpl)) return std::string("mkdtemp failed: ") + std::strerror(errno);
        dir_ = tmpl;
        pw_.emplace();
        password = pw_->password();
        const auto& pki = nb::test_pki();
        const std::string server_dir = dir_ + "/" + cfg.server_name;
        std::filesystem::create_directories(server_dir);
        netpool::tools::child_process::options o;
        o.stdout_pipe = true;
        o.death_signal = SIGTERM;
        o.grace = std::chrono::seconds(5);
        std::vector<std::string> argv{cfg.python, cfg.server_script, "--dir", server_dir, "--cert",
                                      pki.cert, "--key", pki.key, "--user", user, "--password-file",
                                      pw_->path(), "--seed", "INBOX:" + std::to_string(cfg.seed)};
        if (cyrus) {
            argv.push_back("--imapd");
            argv.push_back(cfg.cyrus_imapd);
        }
        proc_.emplace(argv, o);
        // Seeding runs doveadm (Dovecot) or an APPEND (Cyrus) once per message: allow for it.
        const auto until = nb::bench_clock::now() + std::chrono::seconds(60 + cfg.seed / 5);
        while (nb::bench_clock::now() < until) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - nb::bench_clock::now());
            const auto line = proc_->read_line(left);
            if (!line) break;
            unsigned a = 0, b = 0;
            if (std::sscanf(line->c_str(), "READY %u %u", &a, &b) == 2 && a > 0 && a < 65536 && b > 0 && b < 65536) {
                imap_port = static_cast<std::uint16_t>(a);
                imaps_port = static_cast<std::uint16_t>(b);
                return {};
            }
        }
        const std::string err = proc_->stderr_tail();
        return display_name(cfg) + " did not start (" + cfg.server_script + "): " + (err.empty() ? "no READY line" : err);
    }
};

const config* g_cfg = nullptr;
std::unique_ptr<server_process> g_server;

/// Started on first use (so listing the benchmarks starts nothing), stopped by main().
server_process& server() {
    if (!g_server) g_server = std::make_unique<server_process>(*g_cfg);
    return *g_server;
}

// ---- netpool's side ---------------------------------------------------------------------

struct target {
    netpool::endpoint ep;
    std::shared_ptr<asio::ssl::context> tls_ctx;
    imap::client_options client;
    std::chrono::milliseconds timeout{30000};
};

target make_target(const server_process& d, bool tls, const config& cfg) {
    target t;
    t.ep.host = "127.0.0.1";
    if (tls) {
        t.ep.port = d.imaps_port;
        t.ep.tls = netpool::tls_mode::implicit;
        t.ep.tls_opts.ca_file = nb::test_pki().ca;
        t.ep.tls_opts.server_name = "localhost";
        t.ep.tls_opts.verify = true;
        t.tls_ctx = netpool::make_client_tls_context(t.ep.tls_opts);
    } else {
        t.ep.port = d.imap_port;
        t.client.allow_plaintext_login = true;
    }
    t.client.cred.user = d.user;
    t.client.cred.secret = d.password;
    t.client.command_timeout = cfg.timeout;
    t.timeout = cfg.timeout;
    return t;
}

asio::awaitable<std::error_code> logout(const imap::adapter& proto, netpool::connection& c) {
    co_await proto.close(c);
    co_return std::error_code{};
}

/// One fetch on a new connection: connect (+ TLS), greeting, CAPABILITY, login, EXAMINE,
/// UID SEARCH of the newest `top` (sequence numbers EXISTS-top+1:*, as fetch_latest),
/// UID FETCH, LOGOUT, close.
asio::awaitable<std::error_code> fetch_new(asio::io_context& ioc, const imap::adapter& proto, const target& t,
                                           std::uint64_t id, std::size_t top, std::size_t want) {
    netpool::connection c(ioc.get_executor(), t.ep, t.tls_ctx.get(), id);
    auto ec = co_await netpool::connect_transport(c, t.timeout, t.timeout);
    if (!ec)
        ec = co_await netpool::with_timeout(proto.handshake(c), t.timeout,
                                            make_error_code(netpool::errc::handshake_timeout));
    imap::mailbox_info info{};
    if (!ec) ec = co_await proto.select(c, "INBOX", true, &info);
    std::vector<std::uint32_t> uids;
    if (!ec) {
        const std::string criteria =
            info.exists > top ? std::to_string(info.exists - top + 1) + ":*" : std::string("ALL");
        ec = co_await proto.uid_search(c, criteria, uids);
    }
    std::vector<imap::fetched_message> msgs;
    if (!ec && !uids.empty()) {
        std::sort(uids.begin(), uids.end());
        if (uids.size() > top) uids.erase(uids.begin(), uids.end() - static_cast<std::ptrdiff_t>(top));
        ec = co_await proto.uid_fetch(c, uids, msgs);
    }
    if (!ec && msgs.size() != want) ec = make_error_code(netpool::errc::protocol_error);
    if (!ec)
        co_await netpool::with_timeout(logout(proto, c), t.timeout, make_error_code(netpool::errc::operation_timeout));
    c.io().close();
    co_return ec;
}

/// Lets the registry's pools finish opening their sessions (a pool opens `size` of them at
/// creation; a short warm-up can end before the last ones are logged in), up to 10 s.
void wait_for_sessions(asio::io_context& ioc, netpool::registry& reg, std::size_t n) {
    const auto until = nb::bench_clock::now() + std::chrono::seconds(10);
    ioc.restart();
    while (nb::bench_clock::now() < until) {
        std::size_t open = 0;
        for (const auto& s : reg.stats()) open += s.idle + s.leased;
        if (open >= n) break;
        ioc.run_for(std::chrono::milliseconds(5));
    }
}

void report(benchmark::State& state, nb::load_result& r, std::size_t top, std::size_t concurrency,
            std::size_t iterations, std::size_t warmup, std::size_t connections) {
    using benchmark::Counter;
    state.SetIterationTime(std::max(r.seconds, 1e-9));
    const double avg_us = r.lat.average();
    state.counters["success"] = Counter(static_cast<double>(r.ok));
    state.counters["failures"] = Counter(static_cast<double>(r.failed));
    state.counters["avg_ms"] = Counter(avg_us / 1e3);
    state.counters["median_ms"] = Counter(r.lat.percentile(0.50) / 1e3);
    state.counters["p95_ms"] = Counter(r.lat.percentile(0.95) / 1e3);
    state.counters["qps"] = Counter(r.ops_per_s());
    state.counters["top"] = Counter(static_cast<double>(top));
    state.counters["concurrency"] = Counter(static_cast<double>(concurrency));
    state.counters["iterations"] = Counter(static_cast<double>(iterations));
    state.counters["warmup"] = Counter(static_cast<double>(warmup));
    state.counters["connections"] = Counter(static_cast<double>(connections));
    for (const auto& [key, e] : r.failures) state.counters["err:" + key] = Counter(static_cast<double>(e.count));
    state.SetLabel(nb::describe_errors(r));
}

void bm_imap(benchmark::State& state, const config& cfg, bool tls, bool reuse, std::size_t top, std::size_t c) {
    for (auto _ : state) {
        if (tls && !NETPOOL_HAS_TLS) {
            const std::string why = std::string("netpool was built without TLS: ") + NETPOOL_NO_TLS_REASON;
            state.SkipWithError(why.c_str());
            break;
        }
        auto& d = server();
        if (!d.reason.empty()) {
            state.SkipWithError(d.reason.c_str());
            break;
        }
        const target t = make_target(d, tls, cfg);
        const std::size_t want = std::min(top, cfg.seed);
        asio::io_context ioc(1);
        if (reuse) {
            imap::account acct;
            acct.server = t.ep;
            acct.client = t.client;
            acct.pool.size = c;
            acct.pool.max_overflow = 0;
            acct.pool.checkout_timeout = t.timeout;
            acct.pool.connect_timeout = t.timeout;
            acct.pool.handshake_timeout = t.timeout;
            std::optional<netpool::registry> reg;
            reg.emplace(ioc.get_executor());
            std::optional<imap::client> client;  // destroyed before the registry it uses
            client.emplace(*reg);
            auto op = [&](std::size_t, std::string&) -> asio::awaitable<std::error_code> {
                const auto res = co_await client->fetch_latest(acct, "INBOX", top);
                if (res.ec) co_return res.ec;
                co_return res.messages.size() == want ? std::error_code{}
                                                      : make_error_code(netpool::errc::protocol_error);
            };
            if (cfg.warmup > 0) nb::drive(ioc, cfg.warmup, std::min(c, cfg.warmup), nb::load_result{}, op);
            wait_for_sessions(ioc, *reg, c);
            auto connects_before = [&] {
                std::uint64_t n = 0;
                for (const auto& s : reg->stats()) n += s.connects_ok;
                return n;
            };
            const auto before = connects_before();
            auto r = nb::drive(ioc, cfg.iterations, c, nb::load_result{}, op);
            const auto opened = connects_before() - before;
            report(state, r, top, c, cfg.iterations, cfg.warmup, opened);
            client.reset();
            reg.reset();  // closes the pool (LOGOUT)
            ioc.restart();
            ioc.run_for(std::chrono::milliseconds(200));
        } else {
            const imap::adapter proto(t.client);
            std::uint64_t next_id = 1;
            auto op = [&](std::size_t, std::string&) -> asio::awaitable<std::error_code> {
                return fetch_new(ioc, proto, t, next_id++, top, want);
            };
            if (cfg.warmup > 0) nb::drive(ioc, cfg.warmup, std::min(c, cfg.warmup), nb::load_result{}, op);
            auto r = nb::drive(ioc, cfg.iterations_new, c, nb::load_result{}, op);
            report(state, r, top, c, cfg.iterations_new, cfg.warmup, r.ok + r.failed);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    static const config cfg = read_config();
    g_cfg = &cfg;
    nb::raise_fd_limit();
    ::signal(SIGPIPE, SIG_IGN);
    // Order: per (mode, top, concurrency), reuse next to new, so each ratio's two runs are
    // close together in time; NETPOOL_BENCH_IMAP_REVERSE=1 runs the whole list backwards
    // (bench/run.py alternates it from round to round).
    struct entry {
        std::string name;
        bool tls, reuse;
        std::size_t top, c;
    };
    std::vector<entry> all;
    for (const auto& mode : cfg.modes)
        for (std::size_t top : cfg.tops)
            for (std::size_t c : cfg.concurrency)
                for (const auto& kind : cfg.kinds)
                    all.push_back({"imap/" + mode + "/" + kind + "/top:" + std::to_string(top) + "/c:" +
                                       std::to_string(c),
                                   mode == "tls", kind == "reuse", top, c});
    if (cfg.reverse) std::reverse(all.begin(), all.end());
    for (const auto& e : all)
        benchmark::RegisterBenchmark(e.name.c_str(), bm_imap, cfg, e.tls, e.reuse, e.top, e.c)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    // Which server every figure of this run is from (the names are the same for both).
    benchmark::AddCustomContext("imap_server", cfg.server_name);
    benchmark::AddCustomContext("imap_server_script", cfg.server_script);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    g_server.reset();  // stop the server (if a benchmark started it) before the static destructors
    return 0;
}
