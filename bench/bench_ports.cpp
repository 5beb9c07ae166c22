// bench_ports: ephemeral-port exhaustion, reproduced honestly.
//
// On loopback Linux reuses TIME_WAIT ports (tcp_tw_reuse = 2), so a new connection per
// request never runs out of ports on 127.0.0.1. Each benchmark here therefore runs in a
// forked child that enters its own private network namespace (unshare(CLONE_NEWNET) as
// root; otherwise inside a new user namespace, where the kernel allows unprivileged ones),
// brings its loopback up, and sets the namespace's own
// net.ipv4.tcp_tw_reuse = 0 and net.ipv4.ip_local_port_range to a small range (default
// 40000-40061: 62 ports). The machine's settings are not touched, every benchmark starts
// with a fresh namespace (no TIME_WAIT left by the one before), and this process itself
// never leaves the namespace it started in. Where a namespace cannot be made, every
// benchmark is skipped with the reason (SkipWithError); nothing is simulated.
//
// Names: ports/baseline/c:<C>      connect + greeting + request + close per operation
//        ports/pool_S_O/c:<C>      a pool of S+O connections (capacity below the port count)
// Counters: successes, failures, err:<category>:<value> (e.g. err:errno:EADDRNOTAVAIL),
// eaddrnotavail, peak_connected (baseline: sockets connected at once), ports, tcp_tw_reuse,
// ops_per_s, p50/p95/p99_us, connections_opened (pooled).
//
// Environment (bench/run.py sets these; --port-range there):
//   NETPOOL_BENCH_PORT_RANGE        "40000 40061" (also 40000-40061)
//   NETPOOL_BENCH_PORTS_LISTEN      the echo server's port (default: just below the range)
//   NETPOOL_BENCH_PORTS_BASELINE_C  50,100,200
//   NETPOOL_BENCH_PORTS_POOLED_C    100,1000,10000
//   NETPOOL_BENCH_PORTS_POOL        10+40
//   NETPOOL_BENCH_PORTS_OPS_BASELINE 1000   NETPOOL_BENCH_PORTS_OPS_POOLED 20000
//   NETPOOL_BENCH_PORTS_CHILD_TIMEOUT_S 120 (a child still running then is killed)
#include "load.hpp"

#include <benchmark/benchmark.h>

#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nb = netpool::bench;

namespace {

struct config {
    unsigned lo = 40000, hi = 40061;
    std::uint16_t listen_port = 0;
    std::vector<std::size_t> baseline_c, pooled_c;
    nb::pool_shape pool;
    std::size_t ops_baseline = 1000, ops_pooled = 20000;
    unsigned child_timeout_s = 120;
    std::string config_error;  ///< a bad parameter: every benchmark is skipped with it

    std::size_t ports() const { return hi - lo + 1; }
};

config read_config() {
    config c;
    std::string range = nb::env_or("NETPOOL_BENCH_PORT_RANGE", "40000 40061");
    for (char& ch : range)
        if (ch == '-' || ch == ',' || ch == ':' || ch == '\t') ch = ' ';
    std::istringstream in(range);
    long lo = 0, hi = 0;
    std::string rest;
    if (!(in >> lo >> hi) || (in >> rest) || lo < 1024 || hi > 65535 || lo > hi) {
        c.config_error = "NETPOOL_BENCH_PORT_RANGE '" + nb::env_or("NETPOOL_BENCH_PORT_RANGE", "") +
                         "' is not two ports LOW HIGH with 1024 <= LOW <= HIGH <= 65535";
    } else {
        c.lo = static_cast<unsigned>(lo);
        c.hi = static_cast<unsigned>(hi);
    }
    const std::size_t listen = nb::env_size("NETPOOL_BENCH_PORTS_LISTEN", 0);
    if (listen != 0) {
        c.listen_port = static_cast<std::uint16_t>(listen);
    } else {
        c.listen_port = static_cast<std::uint16_t>(c.lo > 1025 ? c.lo - 1 : c.hi + 1);
    }
    if (c.config_error.empty() && c.listen_port >= c.lo && c.listen_port <= c.hi)
        c.config_error = "NETPOOL_BENCH_PORTS_LISTEN " + std::to_string(c.listen_port) +
                         " lies inside the ephemeral range";
    c.baseline_c = nb::env_sizes("NETPOOL_BENCH_PORTS_BASELINE_C", "50,100,200");
    c.pooled_c = nb::env_sizes("NETPOOL_BENCH_PORTS_POOLED_C", "100,1000,10000");
    const auto pools = nb::env_pools("NETPOOL_BENCH_PORTS_POOL", "10+40");
    c.pool = pools.empty() ? nb::pool_shape{10, 40} : pools.front();
    if (c.config_error.empty() && c.pool.capacity() >= c.ports())
        c.config_error = "the pool's capacity " + std::to_string(c.pool.capacity()) +
                         " must be below the number of ephemeral ports " + std::to_string(c.ports());
    c.ops_baseline = nb::env_size("NETPOOL_BENCH_PORTS_OPS_BASELINE", 1000);
    c.ops_pooled = nb::env_size("NETPOOL_BENCH_PORTS_OPS_POOLED", 20000);
    c.child_timeout_s = static_cast<unsigned>(nb::env_size("NETPOOL_BENCH_PORTS_CHILD_TIMEOUT_S", 120));
    return c;
}

// ---- the namespace (in the child) ---------------------------------------------------------

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool write_file(const std::string& path, const std::string& value, std::string& why) {
    std::ofstream f(path);
    if (!f) {
        why = "cannot open " + path + " for writing: " + std::strerror(errno);
        return false;
    }
    f << value << '\n';
    f.flush();
    if (!f) {
        why = "cannot write '" + value + "' to " + path;
        return false;
    }
    return true;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::string s, word;
    while (f >> word) s += (s.empty() ? "" : " ") + word;
    return s;
}

/// Enters a new network namespace: as root directly; otherwise inside a new user namespace
/// (where the kernel allows unprivileged ones) mapping this user to root, which owns the
/// network namespace and may configure it. Returns "" or the reason it failed.
std::string g_ns_method;  // in the child: how the namespace was made

std::string unshare_network() {
    g_ns_method = "unshare(CLONE_NEWNET)";
    if (unshare(CLONE_NEWNET) == 0) return {};
    g_ns_method = "unshare(CLONE_NEWUSER|CLONE_NEWNET)";
    const std::string as_is = errno_text("unshare(CLONE_NEWNET)");
    const auto uid = getuid();
    const auto gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
        return as_is + "; " + errno_text("unshare(CLONE_NEWUSER|CLONE_NEWNET)") +
               " (needs root, CAP_SYS_ADMIN or unprivileged user namespaces; in a container, --privileged or a "
               "seccomp profile that allows unshare)";
    std::string why;
    if (!write_file("/proc/self/setgroups", "deny", why) ||
        !write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1", why) ||
        !write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1", why))
        return as_is + "; in a user namespace: " + why;
    return {};
}

/// Enters a new network namespace and configures it. Returns "" or the reason it failed.
std::string enter_namespace(const config& cfg) {
    if (auto why = unshare_network(); !why.empty()) return why;
    const int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) return errno_text("socket(AF_INET)");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
        const auto why = errno_text("ioctl(SIOCGIFFLAGS, lo)");
        ::close(s);
        return why;
    }
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
        const auto why = errno_text("ioctl(SIOCSIFFLAGS, lo up)");
        ::close(s);
        return why;
    }
    ::close(s);
    std::string why;
    const std::string range = std::to_string(cfg.lo) + " " + std::to_string(cfg.hi);
    if (!write_file("/proc/sys/net/ipv4/tcp_tw_reuse", "0", why)) return why;
    if (!write_file("/proc/sys/net/ipv4/ip_local_port_range", range, why)) return why;
    // Read back: the values must be the namespace's, as asked.
    if (const auto got = read_file("/proc/sys/net/ipv4/tcp_tw_reuse"); got != "0")
        return "tcp_tw_reuse reads back '" + got + "', not 0";
    if (const auto got = read_file("/proc/sys/net/ipv4/ip_local_port_range"); got != range)
        return "ip_local_port_range reads back '" + got + "', not '" + range + "'";
    return {};
}

// ---- child <-> parent ---------------------------------------------------------------------

struct child_result {
    std::string setup_error;  ///< non-empty: the namespace could not be made
    std::string run_error;    ///< non-empty: the child failed otherwise
    std::string ns_method;    ///< how the namespace was made
    nb::load_result r;
    double p50 = 0, p95 = 0, p99 = 0;
    std::size_t connections_opened = 0, warmup_failures = 0;
};

std::string encode(child_result& c) {
    std::ostringstream o;
    o.precision(17);
    if (!c.setup_error.empty()) o << "setup_error\t" << c.setup_error << "\n";
    if (!c.run_error.empty()) o << "run_error\t" << c.run_error << "\n";
    if (!c.ns_method.empty()) o << "ns_method\t" << c.ns_method << "\n";
    o << "ok\t" << c.r.ok << "\nfailed\t" << c.r.failed << "\nseconds\t" << c.r.seconds << "\npeak\t"
      << c.r.peak_connected << "\np50\t" << c.r.lat.percentile(0.5) << "\np95\t" << c.r.lat.percentile(0.95)
      << "\np99\t" << c.r.lat.percentile(0.99) << "\nopened\t" << c.connections_opened << "\nwarmup_failures\t"
      << c.warmup_failures << "\n";
    for (const auto& [key, e] : c.r.failures) o << "err\t" << key << "\t" << e.count << "\t" << e.message << "\n";
    return o.str();
}

child_result decode(const std::string& text) {
    child_result c;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::size_t start = 0;
        for (;;) {
            const auto tab = line.find('\t', start);
            f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
            if (tab == std::string::npos) break;
            start = tab + 1;
        }
        if (f.size() < 2) continue;
        const std::string& k = f[0];
        if (k == "setup_error") c.setup_error = f[1];
        else if (k == "run_error") c.run_error = f[1];
        else if (k == "ns_method") c.ns_method = f[1];
        else if (k == "ok") c.r.ok = std::stoull(f[1]);
        else if (k == "failed") c.r.failed = std::stoull(f[1]);
        else if (k == "seconds") c.r.seconds = std::stod(f[1]);
        else if (k == "peak") c.r.peak_connected = std::stoull(f[1]);
        else if (k == "p50") c.p50 = std::stod(f[1]);
        else if (k == "p95") c.p95 = std::stod(f[1]);
        else if (k == "p99") c.p99 = std::stod(f[1]);
        else if (k == "opened") c.connections_opened = std::stoull(f[1]);
        else if (k == "warmup_failures") c.warmup_failures = std::stoull(f[1]);
        else if (k == "err" && f.size() >= 4) c.r.failures[f[1]] = {f[3], static_cast<std::size_t>(std::stoull(f[2]))};
    }
    return c;
}

/// Runs `work` (returning a child_result) in a forked child (tools::child_process) inside a
/// fresh namespace; the child reports on its stdout, a pipe.
template <class Work>
child_result in_namespace(const config& cfg, Work work) {
    child_result out;
    netpool::tools::child_process::options o;
    o.stdout_pipe = true;
    std::optional<netpool::tools::child_process> child;
    try {
        child.emplace(
            [&]() -> int {
                alarm(cfg.child_timeout_s);
                child_result c;
                c.setup_error = enter_namespace(cfg);
                if (c.setup_error.empty()) {
                    try {
                        c = work();
                    } catch (const std::exception& e) {
                        c.run_error = std::string("exception: ") + e.what();
                    }
                }
                c.ns_method = g_ns_method;
                const std::string text = encode(c);
                std::string_view rest = text;
                while (!rest.empty()) {
                    const auto n = ::write(1, rest.data(), rest.size());
                    if (n <= 0) break;
                    rest.remove_prefix(static_cast<std::size_t>(n));
                }
                return 0;
            },
            o);
    } catch (const std::exception& e) {
        out.run_error = e.what();
        return out;
    }
    const std::string text = child->read_all();
    const int status = child->wait();
    out = decode(text);
    if (const auto sig = child->signal()) {
        out.run_error = "the child running the benchmark was killed by signal " + std::to_string(*sig) +
                        (*sig == SIGALRM ? " (timeout after " + std::to_string(cfg.child_timeout_s) + " s)"
                                         : std::string());
    } else if (text.empty()) {
        out.run_error = "the child running the benchmark reported nothing (exit status " + std::to_string(status) + ")";
    }
    return out;
}

// ---- the workloads (in the child, inside the namespace) -------------------------------------

netpool::echo::server_options server_opts(const config& cfg) {
    netpool::echo::server_options o;
    o.port = cfg.listen_port;  // outside the ephemeral range: listening uses none of its ports
    return o;
}

child_result baseline_work(const config& cfg, std::size_t c) {
    nb::ensure_fd_limit(2 * c + 256);
    child_result out;
    nb::server_thread srv(false, 1, server_opts(cfg));
    asio::io_context ioc;
    auto t = nb::make_target(srv.port(), false, 64);
    out.r = nb::run_baseline(ioc, t, std::max(cfg.ops_baseline, c), c);
    out.connections_opened = out.r.ok;
    return out;
}

child_result pooled_work(const config& cfg, std::size_t c) {
    nb::ensure_fd_limit(2 * cfg.pool.capacity() + 256);
    child_result out;
    nb::server_thread srv(false, 1, server_opts(cfg));
    asio::io_context ioc;
    auto t = nb::make_target(srv.port(), false, 64);
    const netpool::echo::adapter proto;
    {
        netpool::pool p(ioc.get_executor(), t.ep, proto, nb::bench_pool_options(cfg.pool), "bench-ports");
        out.warmup_failures = nb::warm_pool(ioc, p, std::min(c, cfg.pool.capacity()));
        out.r = nb::drive(ioc, std::max(cfg.ops_pooled, c), c, nb::load_result{}, nb::pooled_op(p, proto, t));
        const auto st = p.stats();
        out.connections_opened = st.connects_ok;
        out.r.peak_connected = st.connects_ok;
        nb::close_pool(ioc, p);
    }
    return out;
}

// ---- benchmarks -----------------------------------------------------------------------------

std::string g_namespace_error;  // from the preflight: the same reason for every benchmark

void report(benchmark::State& state, const config& cfg, child_result& res, std::size_t c, std::size_t total) {
    using benchmark::Counter;
    state.SetIterationTime(std::max(res.r.seconds, 1e-9));
    state.counters["ops_per_s"] = Counter(res.r.ops_per_s());
    state.counters["successes"] = Counter(static_cast<double>(res.r.ok));
    state.counters["failures"] = Counter(static_cast<double>(res.r.failed));
    state.counters["operations"] = Counter(static_cast<double>(total));
    state.counters["concurrency"] = Counter(static_cast<double>(c));
    state.counters["seconds"] = Counter(res.r.seconds);
    state.counters["p50_us"] = Counter(res.p50);
    state.counters["p95_us"] = Counter(res.p95);
    state.counters["p99_us"] = Counter(res.p99);
    state.counters["peak_connected"] = Counter(static_cast<double>(res.r.peak_connected));
    state.counters["connections_opened"] = Counter(static_cast<double>(res.connections_opened));
    state.counters["eaddrnotavail"] = Counter(static_cast<double>(res.r.errors_with("errno:EADDRNOTAVAIL")));
    state.counters["ports"] = Counter(static_cast<double>(cfg.ports()));
    state.counters["port_low"] = Counter(cfg.lo);
    state.counters["port_high"] = Counter(cfg.hi);
    state.counters["tcp_tw_reuse"] = Counter(0);
    state.counters["warmup_failures"] = Counter(static_cast<double>(res.warmup_failures));
    for (const auto& [key, e] : res.r.failures) state.counters["err:" + key] = Counter(static_cast<double>(e.count));
    state.SetLabel("netns by " + res.ns_method + ", ports " + std::to_string(cfg.lo) + "-" + std::to_string(cfg.hi) + " (" +
                   std::to_string(cfg.ports()) + "), tcp_tw_reuse=0" +
                   (res.r.failures.empty() ? std::string() : "; " + nb::describe_errors(res.r)));
}

template <class Work>
void run_one(benchmark::State& state, const config& cfg, std::size_t c, std::size_t total, Work work) {
    if (!cfg.config_error.empty()) {
        state.SkipWithError(cfg.config_error.c_str());
        return;
    }
    if (!g_namespace_error.empty()) {
        const std::string why = "skipped: no private network namespace: " + g_namespace_error;
        state.SkipWithError(why.c_str());
        return;
    }
    for (auto _ : state) {
        auto res = in_namespace(cfg, work);
        if (!res.setup_error.empty()) {
            const std::string why = "skipped: no private network namespace: " + res.setup_error;
            state.SkipWithError(why.c_str());
            break;
        }
        if (!res.run_error.empty()) {
            state.SkipWithError(res.run_error.c_str());
            break;
        }
        report(state, cfg, res, c, total);
    }
}

}  // namespace

int main(int argc, char** argv) {
    static const config cfg = read_config();
    // Preflight: can a namespace be made here at all? (In a child: this process stays put.)
    if (cfg.config_error.empty()) {
        auto pre = in_namespace(cfg, [] { return child_result{}; });
        g_namespace_error = !pre.setup_error.empty() ? pre.setup_error : pre.run_error;
        if (!g_namespace_error.empty())
            std::fprintf(stderr,
                         "bench_ports: cannot make a private network namespace (%s); every ports benchmark is "
                         "SKIPPED, nothing is simulated.\n",
                         g_namespace_error.c_str());
    } else {
        std::fprintf(stderr, "bench_ports: %s; every ports benchmark is skipped.\n", cfg.config_error.c_str());
    }
    for (std::size_t c : cfg.baseline_c) {
        const std::size_t total = std::max(cfg.ops_baseline, c);
        benchmark::RegisterBenchmark(("ports/baseline/c:" + std::to_string(c)).c_str(),
                                     [c, total](benchmark::State& st) {
                                         run_one(st, cfg, c, total, [c] { return baseline_work(cfg, c); });
                                     })
            ->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
    }
    for (std::size_t c : cfg.pooled_c) {
        const std::size_t total = std::max(cfg.ops_pooled, c);
        benchmark::RegisterBenchmark(("ports/" + cfg.pool.name() + "/c:" + std::to_string(c)).c_str(),
                                     [c, total](benchmark::State& st) {
                                         run_one(st, cfg, c, total, [c] { return pooled_work(cfg, c); });
                                     })
            ->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
