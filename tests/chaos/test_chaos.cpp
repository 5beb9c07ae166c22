// Chaos: hundreds of callers through one netpool::pool (default options but size and
// max_overflow) while tests/servers/fault_proxy.py, between the pool and a real server,
// resets, truncates, blackholes, delays and refuses connections and restarts the server.
// At the end the invariants the design promises are checked (see docs/testing-faults.md):
// one outcome per request, no caller past its deadline, full concurrency after the faults
// stop, opened - closed = live, stats = events, no descriptor leaked, and for SMTP no
// message reported sent that the server did not receive.
//
// The same executable is the echo upstream the proxy restarts: run as
// `chaos_tests --echo-upstream PORT [CERT KEY]` it serves netpool's echo server on PORT.
#define DOCTEST_CONFIG_IMPLEMENT
#include "../integration/support.hpp"
#include "../smtp/servers.hpp"

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>
#include <netpool/smtp/mailer.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

// --- configuration ----------------------------------------------------------------------

/// Total chaos time across the cases: NETPOOL_CHAOS_SECONDS, default 60 (CI).
int total_seconds() {
    if (const char* s = std::getenv("NETPOOL_CHAOS_SECONDS"); s != nullptr && *s != '\0') {
        const int v = std::atoi(s);
        if (v > 0) return v;
    }
    return 60;
}

constexpr int case_count = 3;  // echo plain, echo TLS, SMTP

/// Time under faults for one case. The rest of a case's share goes to start, wind-down,
/// recovery and close (about 8 s when all is well).
std::chrono::seconds chaos_seconds() { return std::chrono::seconds(std::max(5, total_seconds() / case_count - 8)); }

/// NETPOOL_CHAOS_SEED repeats a run's random choices (timing still varies).
std::uint64_t base_seed() {
    if (const char* s = std::getenv("NETPOOL_CHAOS_SEED"); s != nullptr && *s != '\0') return std::strtoull(s, nullptr, 10);
    return 20261202;
}

/// NETPOOL_CHAOS_TRACE=1: after each case, print what happened around the longest time
/// without a successful request (the proxy's episodes, the pool's events, the outcomes).
bool trace_enabled() {
    const char* s = std::getenv("NETPOOL_CHAOS_TRACE");
    return s != nullptr && *s != '\0' && *s != '0';
}

/// Seconds on CLOCK_MONOTONIC (steady_clock on Linux), the proxy's clock.
double mono(clock_type::time_point t) { return std::chrono::duration<double>(t.time_since_epoch()).count(); }

/// One line of a trace: when, and what.
struct trace_entry {
    double at;
    std::string what;
};

/// The pool under test: defaults, except its size (the same as the defaults, spelled out).
pool_options chaos_pool_options() {
    pool_options o;
    o.size = 10;
    o.max_overflow = 10;
    return o;
}

/// A caller's own budget for one exchange on a leased connection (not a pool option).
constexpr std::chrono::milliseconds request_timeout = 3000ms;
/// How late past its deadline a request may end (scheduling on a loaded 2-core machine).
constexpr std::chrono::milliseconds lateness_bound = 1000ms;

std::string self_exe() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("cannot read /proc/self/exe: " + ec.message());
    return p.string();
}

// --- error names ------------------------------------------------------------------------

std::string short_name(const std::error_code& ec) {
    if (!ec) return "ok";
    if (ec.category() == netpool_category()) {
        static const char* const names[] = {"?",
                                            "checkout_timeout",
                                            "pool_exhausted",
                                            "pool_closed",
                                            "cancelled",
                                            "endpoint_down_refused",
                                            "endpoint_down_timeout",
                                            "endpoint_down_tls",
                                            "endpoint_down_handshake",
                                            "endpoint_down_resolve",
                                            "endpoint_down_other",
                                            "connect_timeout",
                                            "handshake_timeout",
                                            "tls_verify_failed",
                                            "tls_handshake_failed",
                                            "handshake_rejected",
                                            "health_check_failed",
                                            "protocol_error",
                                            "frame_too_large",
                                            "connection_closed",
                                            "operation_timeout",
                                            "adapter_exception"};
        if (ec.value() > 0 && static_cast<std::size_t>(ec.value()) < std::size(names)) return names[ec.value()];
    }
    std::string msg = ec.message();
    std::replace(msg.begin(), msg.end(), ' ', '_');
    return std::string(ec.category().name()) + ':' + msg;
}

/// The pool's checkout_result for a checkout error, as the pool should have counted it.
checkout_result result_of(const std::error_code& ec) {
    if (!ec) return checkout_result::ok;
    if (ec == errc::checkout_timeout) return checkout_result::timeout;
    if (ec == errc::pool_exhausted) return checkout_result::exhausted;
    if (ec == errc::pool_closed) return checkout_result::closed;
    if (ec == errc::cancelled) return checkout_result::cancelled;
    if (ec == condition::endpoint_down) return checkout_result::endpoint_down;
    return checkout_result::endpoint_down;  // unexpected; shows as a mismatch in the counts
}

// --- the fault proxy --------------------------------------------------------------------

/// tests/servers/fault_proxy.py in a child process, and a connection to its control port.
class fault_proxy {
public:
    fault_proxy(const std::vector<std::string>& upstream_cmd, std::uint16_t upstream_port, std::uint64_t seed)
        : control_port_(test::free_port()),
          proc_({"/usr/bin/python3", test::source_dir() + "/tests/servers/fault_proxy.py", "--upstream",
                 "127.0.0.1:" + std::to_string(upstream_port), "--upstream-cmd", nlohmann::json(upstream_cmd).dump(),
                 "--control-port", std::to_string(control_port_), "--seed", std::to_string(seed),
                 "--conn-fault-rate", "0.15", "--episode-ms", "2500"},
                "fault_proxy") {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(control_port_);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot connect to the fault proxy's control port; stderr:\n" +
                                     proc_.stderr_text());
    }
    ~fault_proxy() {
        if (fd_ >= 0) ::close(fd_);
    }
    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;

    std::uint16_t port() const noexcept { return proc_.port(); }

    /// Sends one command line; returns the reply line. Throws if the proxy is gone.
    std::string command(const std::string& line) {
        const std::string out = line + "\n";
        if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
            throw std::runtime_error("fault proxy control: send failed");
        std::string reply;
        char ch = 0;
        for (;;) {
            const ssize_t n = ::recv(fd_, &ch, 1, 0);
            if (n <= 0) throw std::runtime_error("fault proxy control: closed; stderr:\n" + proc_.stderr_text());
            if (ch == '\n') break;
            reply += ch;
        }
        if (reply.rfind("OK", 0) != 0) throw std::runtime_error("fault proxy: " + line + " -> " + reply);
        return reply;
    }
    nlohmann::json stats() { return nlohmann::json::parse(command("STATS").substr(3)); }
    std::string stderr_text() const { return proc_.stderr_text(); }

private:
    std::uint16_t control_port_;
    test::child_process proc_;
    int fd_ = -1;
};

// --- what the callers saw ----------------------------------------------------------------

/// Outcomes of all requests of one case, as the callers saw them.
class outcome_log {
public:
    void started() {
        std::lock_guard lk(mu_);
        ++started_;
    }
    /// One request ended: `kind` names its outcome; `checkout` is what the pool should have
    /// counted for its checkout (none: the checkout was never attempted).
    void finished(const std::string& kind, std::optional<checkout_result> checkout, clock_type::time_point deadline) {
        const auto now = clock_type::now();
        const auto late = now - deadline;
        std::lock_guard lk(mu_);
        if (trace_) trace_->push_back({mono(now), kind});
        if (kind.rfind("ok", 0) == 0 || kind.rfind("sent", 0) == 0) {
            if (last_success_ && now - *last_success_ > longest_gap_) {
                longest_gap_ = now - *last_success_;
                gap_start_ = *last_success_;
            }
            last_success_ = now;
        }
        ++finished_;
        ++by_kind_[kind];
        if (checkout) ++checkouts_[static_cast<std::size_t>(*checkout)];
        if (late > max_late_) max_late_ = late;
        if (late > std::chrono::nanoseconds::zero()) ++late_count_;
    }
    /// A checkout outside the requests (the recovery probe), so the totals match the pool's.
    void extra_checkout(checkout_result r) {
        std::lock_guard lk(mu_);
        ++checkouts_[static_cast<std::size_t>(r)];
    }
    std::uint64_t started_count() {
        std::lock_guard lk(mu_);
        return started_;
    }
    std::uint64_t finished_count() {
        std::lock_guard lk(mu_);
        return finished_;
    }
    std::map<std::string, std::uint64_t> by_kind() {
        std::lock_guard lk(mu_);
        return by_kind_;
    }
    std::array<std::uint64_t, checkout_result_count> checkouts() {
        std::lock_guard lk(mu_);
        return checkouts_;
    }
    /// Largest (end - deadline) over all requests, in ms (negative: all ended before theirs).
    double max_late_ms() {
        std::lock_guard lk(mu_);
        return std::chrono::duration<double, std::milli>(max_late_).count();
    }
    std::uint64_t late_count() {
        std::lock_guard lk(mu_);
        return late_count_;
    }
    /// The longest time between two successful requests, in ms: how long the callers went
    /// without service (compare with the proxy's longest refuse or restart episode, 1.5 s).
    double longest_gap_ms() {
        std::lock_guard lk(mu_);
        return std::chrono::duration<double, std::milli>(longest_gap_).count();
    }
    /// The gap's bounds in CLOCK_MONOTONIC seconds.
    std::pair<double, double> gap() {
        std::lock_guard lk(mu_);
        const double g0 = mono(gap_start_);
        return {g0, g0 + std::chrono::duration<double>(longest_gap_).count()};
    }
    /// Outcomes ending in [from, to], counted per 250 ms, as trace lines.
    std::vector<trace_entry> trace(double from, double to) {
        std::lock_guard lk(mu_);
        std::map<long long, std::map<std::string, int>> buckets;
        if (trace_)
            for (const auto& e : *trace_)
                if (e.at >= from && e.at <= to) ++buckets[static_cast<long long>(e.at * 4)][e.what];
        std::vector<trace_entry> out;
        for (const auto& [b, m] : buckets) {
            std::string line = "outcomes in the next 250 ms:";
            for (const auto& [k, n] : m) line += ' ' + k + '=' + std::to_string(n);
            out.push_back({static_cast<double>(b) / 4, line});
        }
        return out;
    }
    /// How much of that longest gap the server was unreachable, in ms, from the proxy's
    /// episodes ([kind, start, end] in CLOCK_MONOTONIC seconds, which steady_clock is on Linux).
    double unavailable_in_gap_ms(const nlohmann::json& episodes) {
        std::lock_guard lk(mu_);
        const double g0 = std::chrono::duration<double>(gap_start_.time_since_epoch()).count();
        const double g1 = g0 + std::chrono::duration<double>(longest_gap_).count();
        double overlap = 0;
        for (const auto& e : episodes) {
            const double a = std::max(g0, e.at(1).get<double>());
            const double b = std::min(g1, e.at(2).get<double>());
            if (b > a) overlap += b - a;
        }
        return overlap * 1000;
    }

private:
    std::mutex mu_;
    std::uint64_t started_ = 0;
    std::uint64_t finished_ = 0;
    std::uint64_t late_count_ = 0;
    std::map<std::string, std::uint64_t> by_kind_;
    std::array<std::uint64_t, checkout_result_count> checkouts_{};
    std::chrono::nanoseconds max_late_ = std::chrono::nanoseconds::min();
    std::optional<clock_type::time_point> last_success_;
    clock_type::time_point gap_start_{};
    std::optional<std::vector<trace_entry>> trace_ =
        trace_enabled() ? std::optional<std::vector<trace_entry>>(std::in_place) : std::nullopt;
    clock_type::duration longest_gap_{0};
};

constexpr std::size_t event_kind_count = static_cast<std::size_t>(event_kind::adapter_exception) + 1;

/// Counts what the event hook reported.
struct event_counts {
    std::array<std::atomic<std::uint64_t>, event_kind_count> kinds{};
    std::array<std::atomic<std::uint64_t>, close_reason_count> closed{};
    event_hook hook() {
        return [this](const event& e) {
            ++kinds[static_cast<std::size_t>(e.kind)];
            if (e.kind == event_kind::closed) ++closed[static_cast<std::size_t>(e.reason)];
            if (tracing && e.kind != event_kind::checked_out && e.kind != event_kind::checked_in) {
                std::string what = std::string("pool event ") + netpool::to_string(e.kind) + " conn=" +
                                   std::to_string(e.connection_id);
                if (e.error) what += " error=" + short_name(e.error);
                if (e.kind == event_kind::closed) what += std::string(" reason=") + netpool::to_string(e.reason);
                std::lock_guard lk(mu);
                trace.push_back({mono(clock_type::now()), std::move(what)});
            }
            if (e.kind == event_kind::endpoint_down || e.kind == event_kind::endpoint_up) {
                std::lock_guard lk(mu);
                const auto now = clock_type::now();
                if (e.kind == event_kind::endpoint_down && !down_since) down_since = now;
                if (e.kind == event_kind::endpoint_up && down_since) {
                    down_total += now - *down_since;
                    down_since.reset();
                }
            }
        };
    }
    /// How long the pool declared its endpoint down in all (an episode still open counts to now).
    double down_ms() {
        std::lock_guard lk(mu);
        auto t = down_total;
        if (down_since) t += clock_type::now() - *down_since;
        return std::chrono::duration<double, std::milli>(t).count();
    }
    std::mutex mu;
    const bool tracing = trace_enabled();
    std::vector<trace_entry> trace;
    std::optional<clock_type::time_point> down_since;
    clock_type::duration down_total{0};
    std::uint64_t of(event_kind k) const { return kinds[static_cast<std::size_t>(k)].load(); }
    std::string to_string() const {
        std::ostringstream o;
        o << '{';
        for (std::size_t i = 0; i < event_kind_count; ++i)
            o << (i ? "," : "") << netpool::to_string(static_cast<event_kind>(i)) << ':' << kinds[i].load();
        o << ",closed_by_reason:{";
        for (std::size_t i = 0; i < close_reason_count; ++i)
            o << (i ? "," : "") << netpool::to_string(static_cast<close_reason>(i)) << ':' << closed[i].load();
        return o.str() + "}}";
    }
};

std::uint64_t total_closes(const pool_stats& s) {
    std::uint64_t n = 0;
    for (auto c : s.closes) n += c;
    return n;
}

std::string map_to_string(const std::map<std::string, std::uint64_t>& m) {
    std::string out = "{";
    for (const auto& [k, v] : m) out += (out.size() > 1 ? "," : "") + k + ':' + std::to_string(v);
    return out + '}';
}

std::string checkouts_to_string(const std::array<std::uint64_t, checkout_result_count>& a) {
    std::string out = "{";
    for (std::size_t i = 0; i < a.size(); ++i)
        out += (i ? "," : "") + std::string(netpool::to_string(static_cast<checkout_result>(i))) + ':' +
               std::to_string(a[i]);
    return out + '}';
}

/// The invariants shared by every case, checked on a pool's final figures. `where` names
/// the moment ("quiescent", "closed").
void check_stats_match_events(const pool_stats& s, const event_counts& ev, const char* where) {
    INFO(where << ": stats " << to_json(s) << "\nevents " << ev.to_string());
    CHECK_MESSAGE(ev.of(event_kind::created) == s.connects_ok, "events 'created' != stats connects_ok");
    CHECK_MESSAGE(ev.of(event_kind::connect_failed) == s.connects_failed,
                  "events 'connect_failed' != stats connects_failed");
    CHECK_MESSAGE(ev.of(event_kind::checked_out) == s.checkouts[static_cast<std::size_t>(checkout_result::ok)],
                  "events 'checked_out' != stats checkouts[ok]");
    CHECK_MESSAGE(ev.of(event_kind::waiter_timeout) == s.checkouts[static_cast<std::size_t>(checkout_result::timeout)],
                  "events 'waiter_timeout' != stats checkouts[timeout]");
    CHECK_MESSAGE(ev.of(event_kind::adapter_exception) == s.adapter_exceptions,
                  "events 'adapter_exception' != stats adapter_exceptions");
    for (std::size_t i = 0; i < close_reason_count; ++i)
        CHECK_MESSAGE(ev.closed[i].load() == s.closes[i],
                      "events 'closed' with reason " << netpool::to_string(static_cast<close_reason>(i))
                                                     << " != stats closes[" << netpool::to_string(static_cast<close_reason>(i))
                                                     << "]");
    CHECK_MESSAGE(ev.of(event_kind::endpoint_up) <= ev.of(event_kind::endpoint_down),
                  "more endpoint_up than endpoint_down events");
}

/// With NETPOOL_CHAOS_TRACE: what happened from 1 s before the longest gap without a
/// success to 1 s after it, in order, times relative to the gap's start.
void print_trace(const std::string& name, outcome_log& log, event_counts& ev, const nlohmann::json& episodes) {
    if (!trace_enabled()) return;
    const auto [g0, g1] = log.gap();
    const double from = g0 - 1, to = g1 + 1;
    std::vector<trace_entry> all = log.trace(from, to);
    {
        std::lock_guard lk(ev.mu);
        for (const auto& e : ev.trace)
            if (e.at >= from && e.at <= to) all.push_back(e);
    }
    for (const auto& e : episodes) {
        const std::string kind = e.at(0).get<std::string>();
        all.push_back({e.at(1).get<double>(), "proxy " + kind + " begins (server unreachable)"});
        all.push_back({e.at(2).get<double>(), "proxy " + kind + " ends (server reachable)"});
    }
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.at < b.at; });
    std::printf("trace %s: longest time without success %.0f ms, from t=0 (last success) to t=%.3f s\n", name.c_str(),
                (g1 - g0) * 1000, g1 - g0);
    for (const auto& e : all)
        if (e.at >= from && e.at <= to) std::printf("  t=%+.3f %s\n", e.at - g0, e.what.c_str());
    std::fflush(stdout);
}

/// An io_context run by `n` threads started only when asked, so a pool can be created and
/// given its event hook before any of its workers can run.
class io_runner {
public:
    explicit io_runner(int n) : ioc_(n), work_(asio::make_work_guard(ioc_)), n_(n) {}
    ~io_runner() { stop(); }
    asio::io_context& context() noexcept { return ioc_; }
    void start() {
        for (int i = 0; i < n_; ++i) threads_.emplace_back([this] { ioc_.run(); });
    }
    void stop() {
        work_.reset();
        ioc_.stop();
        for (auto& t : threads_)
            if (t.joinable()) t.join();
        threads_.clear();
    }

private:
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    int n_;
    std::vector<std::thread> threads_;
};

/// Polls `pred` until it holds or `timeout` passes (the pool's state changes on its own
/// threads; there is nothing to await from the test thread).
template <class Pred> bool eventually(Pred pred, std::chrono::milliseconds timeout) {
    return test::wait_for(pred, timeout);
}

// --- echo ---------------------------------------------------------------------------------

/// One echo request through the pool; returns the outcome's name and the checkout's result.
awaitable<std::pair<std::string, checkout_result>> echo_request(pool& p, std::string payload) {
    auto [ec, l] = co_await p.checkout();
    if (ec) co_return std::pair{"checkout:" + short_name(ec), result_of(ec)};
    std::string reply;
    ec = co_await with_timeout(echo::adapter{}.request(*l, payload, reply), request_timeout, errc::operation_timeout);
    if (ec) {
        l.discard();
        co_return std::pair{"request:" + short_name(ec), checkout_result::ok};
    }
    if (reply != payload) {
        l.discard();
        co_return std::pair{std::string("WRONG_REPLY"), checkout_result::ok};
    }
    co_return std::pair{std::string("ok"), checkout_result::ok};
}

std::string make_payload(std::mt19937_64& rng, std::uint64_t id) {
    std::uniform_int_distribution<int> size_pick(0, 99);
    std::size_t size = 1 + rng() % 1024;
    if (size_pick(rng) < 3) size = 16384 + rng() % 16384;
    std::string s = "req-" + std::to_string(id) + '-';
    while (s.size() < size) s += static_cast<char>('a' + rng() % 26);
    return s;
}

/// A caller on its own strand: requests until `stop`, with a short pause between them (a
/// longer one after a failure, as a client would back off).
awaitable<void> echo_caller(pool& p, outcome_log& log, const std::atomic<bool>& stop, std::uint64_t seed,
                            std::chrono::milliseconds checkout_timeout) {
    std::mt19937_64 rng(seed);
    asio::steady_timer pause(co_await asio::this_coro::executor);
    std::uint64_t n = 0;
    while (!stop.load()) {
        const auto deadline = clock_type::now() + checkout_timeout + request_timeout;
        log.started();
        auto [kind, cr] = co_await echo_request(p, make_payload(rng, seed * 1000000 + ++n));
        log.finished(kind, cr, deadline);
        pause.expires_after(std::chrono::milliseconds(kind == "ok" ? rng() % 10 : 50 + rng() % 100));
        co_await pause.async_wait(use_awaitable);
    }
}

/// A thread using the blocking API: checkout_blocking, then the exchange run on a strand.
void echo_blocking_caller(pool& p, asio::io_context& ioc, outcome_log& log, const std::atomic<bool>& stop,
                          std::uint64_t seed, std::chrono::milliseconds checkout_timeout) {
    std::mt19937_64 rng(seed);
    std::uint64_t n = 0;
    while (!stop.load()) {
        const auto deadline = clock_type::now() + checkout_timeout + request_timeout;
        log.started();
        std::error_code ec;
        lease l = p.checkout_blocking(checkout_timeout, ec);
        std::string kind;
        std::optional<checkout_result> cr = result_of(ec);
        if (ec) {
            kind = "checkout:" + short_name(ec);
        } else {
            const std::string payload = make_payload(rng, seed * 1000000 + ++n);
            auto fut = asio::co_spawn(
                asio::make_strand(ioc),
                [&]() -> awaitable<std::string> {
                    std::string reply;
                    auto e = co_await with_timeout(echo::adapter{}.request(*l, payload, reply), request_timeout,
                                                   errc::operation_timeout);
                    if (e) co_return "request:" + short_name(e);
                    co_return reply == payload ? std::string("ok") : std::string("WRONG_REPLY");
                },
                asio::use_future);
            kind = fut.get();  // bounded by with_timeout; a hang shows as a caller that never ends
            if (kind != "ok") l.discard();
        }
        l.release();
        log.finished(kind + "(blocking)", cr, deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds(kind == "ok" ? rng() % 10 : 50 + rng() % 100));
    }
}

/// Tries to hold `n` leases at once, each verified by `verify(connection&)` (an
/// awaitable<std::error_code>: a ping, a NOOP). True when all n were held at the same moment.
template <class Verify> bool hold_all(pool& p, asio::io_context& ioc, std::size_t n, outcome_log& log, Verify verify) {
    std::atomic<std::size_t> held{0};
    std::atomic<bool> release{false};
    std::vector<std::future<bool>> futs;
    for (std::size_t i = 0; i < n; ++i)
        futs.push_back(asio::co_spawn(
            asio::make_strand(ioc),
            [&]() -> awaitable<bool> {
                auto [ec, l] = co_await p.checkout(2000ms);
                log.extra_checkout(result_of(ec));
                if (ec) co_return false;
                if (co_await with_timeout(verify(*l), 2000ms, errc::operation_timeout)) {
                    l.discard();
                    co_return false;
                }
                ++held;
                asio::steady_timer t(co_await asio::this_coro::executor);
                while (!release.load()) {
                    t.expires_after(5ms);
                    co_await t.async_wait(use_awaitable);
                }
                co_return true;
            },
            asio::use_future));
    const auto all_ended = [&] {
        return std::all_of(futs.begin(), futs.end(),
                           [](auto& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
    };
    eventually([&] { return held.load() == n || all_ended(); }, 5000ms);
    const bool ok = held.load() == n;
    release = true;
    for (auto& f : futs) f.wait();
    return ok;
}

awaitable<std::error_code> echo_ping(connection& c) {
    std::string reply;
    auto ec = co_await echo::adapter{}.request(c, "ping", reply);
    if (!ec && reply != "ping") ec = errc::protocol_error;
    co_return ec;
}

/// After the faults stop: retries hold_all until it succeeds or `bound` has passed since
/// `calm`. Returns the time from `calm` to success in ms, or -1.
template <class Verify>
double wait_full_capacity(pool& p, asio::io_context& ioc, std::size_t n, outcome_log& log, Verify verify,
                          clock_type::time_point calm, std::chrono::milliseconds bound) {
    while (clock_type::now() - calm < bound)
        if (hold_all(p, ioc, n, log, verify))
            return std::chrono::duration<double, std::milli>(clock_type::now() - calm).count();
    return -1;
}

void echo_case(bool use_tls) {
    const std::string name = use_tls ? "echo-tls" : "echo-plain";
    const std::uint64_t seed = base_seed() + (use_tls ? 1 : 0);
    const auto chaos_time = chaos_seconds();
    const std::uint16_t upstream_port = test::free_port();
    std::vector<std::string> upstream{self_exe(), "--echo-upstream", std::to_string(upstream_port)};
    endpoint ep;
    ep.host = "127.0.0.1";
    if (use_tls) {
        upstream.push_back(test::certs().server_cert);
        upstream.push_back(test::certs().server_key);
        ep.tls = tls_mode::implicit;
        ep.tls_opts.ca_file = test::certs().ca_cert;
        ep.tls_opts.server_name = "localhost";
    }
    fault_proxy proxy(upstream, upstream_port, seed);
    ep.port = proxy.port();

    const pool_options opts = chaos_pool_options();
    const std::size_t capacity = opts.size + opts.max_overflow;
    constexpr std::size_t coroutine_callers = 300;
    constexpr std::size_t blocking_callers = 2;
    const std::size_t fds_before = test::open_fd_count();

    outcome_log log;
    event_counts events;
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> callers_done{0};
    std::atomic<std::size_t> caller_exceptions{0};
    double recovery_ms = -1;
    std::string pool_summary;
    bool hung = false;
    {
        io_runner io(2);
        std::optional<pool> p;
        p.emplace(io.context().get_executor(), ep, echo::adapter{}, opts, "chaos-" + name);
        p->set_event_hook(events.hook());
        io.start();
        // Warm: the base workers connect before the faults start.
        CHECK_MESSAGE(eventually([&] { return p->stats().idle >= opts.size; }, 10000ms),
                      "the base workers did not connect through the proxy: " << to_json(p->stats()));

        for (std::size_t i = 0; i < coroutine_callers; ++i)
            asio::co_spawn(asio::make_strand(io.context()),
                           echo_caller(*p, log, stop, seed * 1000 + i, opts.checkout_timeout),
                           [&](std::exception_ptr e) {
                               if (e) ++caller_exceptions;
                               ++callers_done;
                           });
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < blocking_callers; ++i)
            threads.emplace_back([&, i] {
                try {
                    echo_blocking_caller(*p, io.context(), log, stop, seed * 1000 + coroutine_callers + i,
                                         opts.checkout_timeout);
                } catch (...) {
                    ++caller_exceptions;
                }
                ++callers_done;
            });

        proxy.command("CHAOS ON");
        std::this_thread::sleep_for(chaos_time);
        proxy.command("CHAOS OFF");
        const auto calm = clock_type::now();
        stop = true;

        // Every caller ends within its request's deadline (plus the lateness bound).
        const auto longest = opts.checkout_timeout + request_timeout + lateness_bound + 1000ms;
        const bool all_ended = eventually([&] { return callers_done.load() == coroutine_callers + blocking_callers; },
                                          std::chrono::duration_cast<std::chrono::milliseconds>(longest));
        CHECK_MESSAGE(all_ended, callers_done.load() << " of " << coroutine_callers + blocking_callers
                                                      << " callers ended; requests started " << log.started_count()
                                                      << ", finished " << log.finished_count()
                                                      << "; stats: " << to_json(p->stats()));
        if (!all_ended) {
            // Hung requests: close the pool so queued checkouts end, and give them a moment.
            hung = true;
            p->close();
            if (!eventually([&] { return callers_done.load() == coroutine_callers + blocking_callers; }, 10000ms)) {
                std::printf("chaos %s: callers still hung after close; cannot tear down safely\n", name.c_str());
                std::fflush(stdout);
                std::_Exit(1);
            }
        }
        for (auto& t : threads) t.join();
        CHECK(caller_exceptions.load() == 0);

        // After the faults stop the pool serves full concurrency again within a backoff step.
        const auto recovery_bound = opts.backoff_max + 2000ms;
        if (!hung) {
            recovery_ms = wait_full_capacity(*p, io.context(), capacity, log, echo_ping, calm, recovery_bound);
            CHECK_MESSAGE(recovery_ms >= 0, "no capacity recovery: " << capacity << " leases were never held at once within "
                                                              << recovery_bound.count() << " ms of the faults stopping; stats: "
                                                              << to_json(p->stats()) << "; events: " << events.to_string());
        }

        // Quiescent: no lease out, nothing connecting or busy. Then opened - closed = live.
        const bool quiet = eventually(
            [&] {
                const auto s = p->stats();
                return s.leased == 0 && s.busy == 0 && s.connecting == 0 && s.waiters == 0;
            },
            5000ms);
        {
            const auto s = p->stats();
            INFO("stats: " << to_json(s));
            CHECK_MESSAGE(quiet, "the pool did not become quiescent within 5 s after the load stopped");
            CHECK_MESSAGE(s.connects_ok - total_closes(s) == s.idle + s.leased + s.busy,
                          "connects_ok - closes != live connections (idle + leased + busy)");
            // Each request's checkout counted once by the pool, with the result the caller saw.
            const auto mine = log.checkouts();
            CHECK_MESSAGE(mine == s.checkouts, "checkouts seen by callers " << checkouts_to_string(mine)
                                                                              << " != pool's " << checkouts_to_string(s.checkouts));
            check_stats_match_events(s, events, "quiescent");
        }

        p->close();
        const bool closed = eventually(
            [&] {
                const auto s = p->stats();
                return s.idle + s.connecting + s.busy + s.leased == 0;
            },
            5000ms);
        const auto s = p->stats();
        CHECK_MESSAGE(closed, "the pool did not close within 5 s: " << to_json(s));
        CHECK_MESSAGE(s.connects_ok == total_closes(s), "after close: connects_ok != closes: " << to_json(s));
        check_stats_match_events(s, events, "closed");
        pool_summary = "connects_ok=" + std::to_string(s.connects_ok) + " connects_failed=" + std::to_string(s.connects_failed) +
                       " closes=" + std::to_string(total_closes(s)) + " endpoint_down_events=" +
                       std::to_string(events.of(event_kind::endpoint_down)) + " endpoint_down_ms=" +
                       std::to_string(static_cast<long long>(events.down_ms()));
        p.reset();
        io.stop();
    }
    const std::size_t fds_after = test::open_fd_count();
    CHECK_MESSAGE(fds_after == fds_before, "file descriptors: " << fds_before << " before, " << fds_after << " after");

    // Every request got exactly one outcome.
    CHECK(log.started_count() == log.finished_count());
    const auto kinds = log.by_kind();
    std::uint64_t wrong = 0;
    for (const auto& [k, v] : kinds)
        if (k.rfind("WRONG_REPLY", 0) == 0) wrong += v;
    CHECK_MESSAGE(wrong == 0, "replies that were not the request's echo: " << wrong);
    CHECK_MESSAGE(log.max_late_ms() < static_cast<double>(lateness_bound.count()),
                  "a request ended " << log.max_late_ms() << " ms past its deadline");
    const auto faults = proxy.stats();
    const auto episodes = nlohmann::json::parse(proxy.command("EPISODES").substr(3));
    std::printf("chaos %s: seed=%llu seconds=%lld callers=%zu+%zu requests=%llu faults=%s proxy_connections=%llu server_unavailable_ms=%lld "
                "outcomes=%s max_past_deadline_ms=%.1f late=%llu longest_without_success_ms=%.0f (server_unavailable_in_it_ms=%.0f) fds=%zu/%zu recovery_ms=%.0f %s events=%s\n",
                name.c_str(), static_cast<unsigned long long>(seed), static_cast<long long>(chaos_time.count()),
                coroutine_callers, blocking_callers, static_cast<unsigned long long>(log.finished_count()),
                faults["faults"].dump().c_str(), static_cast<unsigned long long>(faults["connections"].get<std::uint64_t>()),
                static_cast<long long>(faults["unavailable_ms"].get<std::int64_t>()), map_to_string(kinds).c_str(),
                log.max_late_ms(), static_cast<unsigned long long>(log.late_count()), log.longest_gap_ms(),
                log.unavailable_in_gap_ms(episodes), fds_before, fds_after, recovery_ms, pool_summary.c_str(),
                events.to_string().c_str());
    std::fflush(stdout);
    print_trace(name, log, events, episodes);
}

// --- SMTP -----------------------------------------------------------------------------------

/// The SMTP client's own budgets per command and for the content (client options, not pool
/// options; the defaults, 30 s and 120 s, would make a stalled send outlast the test).
constexpr std::chrono::milliseconds smtp_command_timeout = 3000ms;
constexpr std::chrono::milliseconds smtp_data_timeout = 5000ms;

/// A message whose Subject names it and whose last body line proves the content arrived whole.
std::string chaos_message(const std::string& id, std::mt19937_64& rng) {
    std::string m = "From: chaos@test\r\nTo: sink@test\r\nSubject: chaos-" + id + "\r\nMessage-ID: <" + id +
                    "@chaos.test>\r\n\r\n";
    const std::size_t lines = 1 + rng() % 40;
    for (std::size_t i = 0; i < lines; ++i) m += "line " + std::to_string(i) + " of message " + id + "\r\n";
    return m + "END-" + id + "\r\n";
}

/// Messages smtp-sink wrote whole, with how many times each: smtp-sink (-d) writes each
/// transaction to its own file, removes it when the transaction is aborted, and closes it
/// before it answers the final dot with 250; a file can also be left half written when the
/// sink is killed mid-transaction, so only files holding the message's last line count.
std::map<std::string, int> complete_dumps(const std::string& dir, std::size_t& files) {
    std::map<std::string, int> ids;
    files = 0;
    for (const auto& f : fs::recursive_directory_iterator(dir)) {
        if (!f.is_regular_file()) continue;
        ++files;
        const std::string text = test::read_file(f.path().string());
        const auto at = text.find("\nSubject: chaos-");
        if (at == std::string::npos) continue;
        const auto eol = text.find('\n', at + 1);
        const std::string id = text.substr(at + 16, eol - at - 16);
        if (text.find("\nEND-" + id + "\n") != std::string::npos) ++ids[id];
    }
    return ids;
}

[[maybe_unused]] pool& as_pool(pool& p) { return p; }
[[maybe_unused]] pool& as_pool(const std::shared_ptr<pool>& p) { return *p; }

void smtp_case() {
    const std::string sink = "/usr/sbin/smtp-sink";
    REQUIRE_MESSAGE(::access(sink.c_str(), X_OK) == 0, sink << " is missing: install the postfix package");
    const std::uint64_t seed = base_seed() + 2;
    const auto chaos_time = chaos_seconds();
    // smtp-sink drops privileges when started as root: its dump directory must be writable.
    std::string tmpl = "/tmp/netpool-chaos-sink-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    const std::string dump_dir = tmpl;
    struct remove_dir {
        std::string p;
        ~remove_dir() {
            std::error_code ignored;
            fs::remove_all(p, ignored);
        }
    } cleanup{dump_dir};
    fs::permissions(dump_dir, fs::perms::all);
    const std::uint16_t upstream_port = test::free_port();
    std::vector<std::string> upstream{sink};
    if (::geteuid() == 0) upstream.insert(upstream.end(), {"-u", "nobody"});
    upstream.insert(upstream.end(), {"-d", dump_dir + "/m.", "127.0.0.1:" + std::to_string(upstream_port), "1000"});
    fault_proxy proxy(upstream, upstream_port, seed);

    smtp::account a;
    a.server.host = "127.0.0.1";
    a.server.port = proxy.port();
    a.client.helo_name = "chaos.test";
    a.client.command_timeout = smtp_command_timeout;
    a.client.data_timeout = smtp_data_timeout;
    a.pool = chaos_pool_options();
    // The default retry policy but its deadline: 60 s would make a send outlast the test
    // (as the default command timeouts would), so 10 s.
    a.retry.deadline = 10000ms;
    const smtp::envelope env{"chaos@test", {"sink@test"}};
    const std::size_t capacity = a.pool.size + a.pool.max_overflow;
    constexpr std::size_t coroutine_callers = 100;
    constexpr std::size_t blocking_callers = 1;
    // The longest a send may take: no attempt starts after the retry deadline and its checkout
    // waits at most until then; the last attempt then writes (pipelined) the envelope and
    // reads three replies, each within the command timeout, then the content within the data one.
    const auto send_budget = a.retry.deadline + 4 * smtp_command_timeout + smtp_data_timeout;
    const std::size_t fds_before = test::open_fd_count();

    outcome_log log;
    event_counts events;
    std::mutex sent_mu;
    std::set<std::string> sent_ids, unknown_ids, failed_ids;
    std::uint64_t transactions = 0;  // the attempts of every send (guarded by sent_mu)
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> callers_done{0};
    std::atomic<std::size_t> caller_exceptions{0};
    std::uint64_t sends_total = 0;
    double recovery_ms = -1;
    std::string pool_summary;
    const auto record = [&](const smtp::send_result& r, const std::string& id, clock_type::time_point deadline,
                            bool blocking) {
        std::string kind = r.sent ? std::string("sent") : (r.stage.empty() ? "?" : r.stage) + ':' + short_name(r.ec);
        std::replace(kind.begin(), kind.end(), ' ', '_');
        if (blocking) kind += "(blocking)";
        {
            std::lock_guard lk(sent_mu);
            transactions += r.attempts;
            if (r.sent) sent_ids.insert(id);
            else if (r.ec == smtp::errc::outcome_unknown) unknown_ids.insert(id);
            else failed_ids.insert(id);
        }
        log.finished(kind, std::nullopt, deadline);
    };
    {
        io_runner io(2);
        registry reg(io.context().get_executor());
        // The mailer's keyed pool, created here first so that its event hook sees everything.
        // (registry::pool_for returned pool& and now returns a shared handle: either works.)
        auto&& handle =
            reg.pool_for(a.server, a.client.cred, [&] { return any_adapter(smtp::adapter(a.client)); }, a.pool);
        pool& p = as_pool(handle);
        p.set_event_hook(events.hook());
        smtp::mailer mail(reg);
        io.start();
        CHECK_MESSAGE(eventually([&] { return p.stats().idle >= a.pool.size; }, 10000ms),
                      "the base workers did not connect through the proxy: " << to_json(p.stats()));

        for (std::size_t i = 0; i < coroutine_callers; ++i)
            asio::co_spawn(
                asio::make_strand(io.context()),
                [&, i]() -> awaitable<void> {
                    std::mt19937_64 rng(seed * 1000 + i);
                    asio::steady_timer pause(co_await asio::this_coro::executor);
                    for (std::uint64_t n = 1; !stop.load(); ++n) {
                        const std::string id = std::to_string(i) + '-' + std::to_string(n);
                        const auto deadline = clock_type::now() + send_budget;
                        log.started();
                        const auto r = co_await mail.send(a, env, chaos_message(id, rng));
                        record(r, id, deadline, false);
                        pause.expires_after(std::chrono::milliseconds(r.sent ? rng() % 10 : 50 + rng() % 100));
                        co_await pause.async_wait(use_awaitable);
                    }
                },
                [&](std::exception_ptr e) {
                    if (e) ++caller_exceptions;
                    ++callers_done;
                });
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < blocking_callers; ++i)
            threads.emplace_back([&, i] {
                try {
                    std::mt19937_64 rng(seed * 1000 + coroutine_callers + i);
                    for (std::uint64_t n = 1; !stop.load(); ++n) {
                        const std::string id = "b" + std::to_string(i) + '-' + std::to_string(n);
                        const auto deadline = clock_type::now() + send_budget;
                        log.started();
                        const auto r = mail.send_blocking(a, env, chaos_message(id, rng));
                        record(r, id, deadline, true);
                        std::this_thread::sleep_for(std::chrono::milliseconds(r.sent ? rng() % 10 : 50 + rng() % 100));
                    }
                } catch (...) {
                    ++caller_exceptions;
                }
                ++callers_done;
            });

        proxy.command("CHAOS ON");
        std::this_thread::sleep_for(chaos_time);
        proxy.command("CHAOS OFF");
        const auto calm = clock_type::now();
        stop = true;
        const bool all_ended = eventually([&] { return callers_done.load() == coroutine_callers + blocking_callers; },
                                          std::chrono::duration_cast<std::chrono::milliseconds>(send_budget + lateness_bound + 1000ms));
        CHECK_MESSAGE(all_ended, callers_done.load() << " of " << coroutine_callers + blocking_callers
                                                      << " callers ended; sends started " << log.started_count()
                                                      << ", finished " << log.finished_count() << "; stats: " << to_json(p.stats()));
        if (!all_ended) {
            p.close();
            if (!eventually([&] { return callers_done.load() == coroutine_callers + blocking_callers; }, 10000ms)) {
                std::printf("chaos smtp: callers still hung after close; cannot tear down safely\n");
                std::fflush(stdout);
                std::_Exit(1);
            }
        }
        for (auto& t : threads) t.join();
        CHECK(caller_exceptions.load() == 0);
        sends_total = log.finished_count();

        if (all_ended) {
            const auto recovery_bound = a.pool.backoff_max + 2000ms;
            const smtp::adapter noop(a.client);
            recovery_ms = wait_full_capacity(
                p, io.context(), capacity, log, [&](connection& c) { return noop.health_check(c); }, calm, recovery_bound);
            CHECK_MESSAGE(recovery_ms >= 0, "no capacity recovery: " << capacity << " leases were never held at once within "
                                                                    << recovery_bound.count() << " ms of the faults stopping; stats: "
                                                                    << to_json(p.stats()) << "; events: " << events.to_string());
        }
        const bool quiet = eventually(
            [&] {
                const auto s = p.stats();
                return s.leased == 0 && s.busy == 0 && s.connecting == 0 && s.waiters == 0;
            },
            5000ms);
        {
            const auto s = p.stats();
            INFO("stats: " << to_json(s));
            CHECK_MESSAGE(quiet, "the pool did not become quiescent within 5 s after the load stopped");
            CHECK_MESSAGE(s.connects_ok - total_closes(s) == s.idle + s.leased + s.busy,
                          "connects_ok - closes != live connections (idle + leased + busy)");
            // Every transaction the sends report took a checkout, and so did every recovery
            // probe; the sends also made checkouts that failed (waiting for the endpoint).
            std::uint64_t pool_checkouts = 0;
            for (auto c : s.checkouts) pool_checkouts += c;
            std::uint64_t probes = 0;
            for (auto c : log.checkouts()) probes += c;
            const std::uint64_t ok_checkouts = s.checkouts[static_cast<std::size_t>(checkout_result::ok)];
            CHECK_MESSAGE(ok_checkouts <= transactions + probes,
                          "pool counted " << ok_checkouts << " successful checkouts for " << transactions
                                          << " transactions and " << probes << " recovery probes");
            CHECK_MESSAGE(pool_checkouts >= sends_total + probes,
                          "pool counted " << pool_checkouts << " checkouts for " << sends_total << " sends and " << probes
                                          << " recovery probes");
            check_stats_match_events(s, events, "quiescent");
        }
        p.close();
        const bool closed = eventually(
            [&] {
                const auto s = p.stats();
                return s.idle + s.connecting + s.busy + s.leased == 0;
            },
            5000ms);
        const auto s = p.stats();
        CHECK_MESSAGE(closed, "the pool did not close within 5 s: " << to_json(s));
        CHECK_MESSAGE(s.connects_ok == total_closes(s), "after close: connects_ok != closes: " << to_json(s));
        check_stats_match_events(s, events, "closed");
        pool_summary = "connects_ok=" + std::to_string(s.connects_ok) + " connects_failed=" + std::to_string(s.connects_failed) +
                       " closes=" + std::to_string(total_closes(s)) + " endpoint_down_events=" +
                       std::to_string(events.of(event_kind::endpoint_down)) + " endpoint_down_ms=" +
                       std::to_string(static_cast<long long>(events.down_ms()));
        io.stop();  // the registry and mailer go before the context (declared after it)
    }
    const std::size_t fds_after = test::open_fd_count();
    CHECK_MESSAGE(fds_after == fds_before, "file descriptors: " << fds_before << " before, " << fds_after << " after");
    CHECK(log.started_count() == log.finished_count());
    CHECK_MESSAGE(log.max_late_ms() < static_cast<double>(lateness_bound.count()),
                  "a send ended " << log.max_late_ms() << " ms past its deadline");

    // No message reported sent that the server did not receive whole.
    const auto faults = proxy.stats();
    const auto episodes = nlohmann::json::parse(proxy.command("EPISODES").substr(3));
    std::size_t files = 0;
    const auto received = complete_dumps(dump_dir, files);
    std::vector<std::string> missing;
    for (const auto& id : sent_ids)
        if (!received.count(id)) missing.push_back(id);
    CHECK_MESSAGE(missing.empty(), missing.size() << " of " << sent_ids.size()
                                                  << " messages reported sent are not in smtp-sink's dumps, e.g. chaos-"
                                                  << (missing.empty() ? "" : missing.front()));
    // The retries' promise with the default policy: nothing arrives twice, and a message
    // reported failed (not unknown) never arrived.
    std::vector<std::string> duplicated, failed_but_received;
    std::size_t extra = 0;  // received whole but not reported sent: outcome unknown (allowed)
    for (const auto& [id, times] : received) {
        if (times > 1) duplicated.push_back(id);
        if (failed_ids.count(id)) failed_but_received.push_back(id);
        if (!sent_ids.count(id)) ++extra;
    }
    CHECK_MESSAGE(duplicated.empty(), duplicated.size() << " messages arrived more than once, e.g. chaos-"
                                                        << (duplicated.empty() ? "" : duplicated.front()));
    CHECK_MESSAGE(failed_but_received.empty(), failed_but_received.size()
                                                   << " messages reported failed arrived whole, e.g. chaos-"
                                                   << (failed_but_received.empty() ? "" : failed_but_received.front()));
    std::printf("chaos smtp: seed=%llu seconds=%lld callers=%zu+%zu requests=%llu faults=%s proxy_connections=%llu server_unavailable_ms=%lld "
                "outcomes=%s max_past_deadline_ms=%.1f late=%llu longest_without_success_ms=%.0f (server_unavailable_in_it_ms=%.0f) fds=%zu/%zu recovery_ms=%.0f sent=%zu "
                "server_received_whole=%zu sent_not_received=%zu received_not_reported_sent=%zu unknown=%zu failed=%zu duplicated=%zu transactions=%llu dump_files=%zu %s events=%s\n",
                static_cast<unsigned long long>(seed), static_cast<long long>(chaos_time.count()), coroutine_callers,
                blocking_callers, static_cast<unsigned long long>(sends_total), faults["faults"].dump().c_str(),
                static_cast<unsigned long long>(faults["connections"].get<std::uint64_t>()),
                static_cast<long long>(faults["unavailable_ms"].get<std::int64_t>()), map_to_string(log.by_kind()).c_str(),
                log.max_late_ms(), static_cast<unsigned long long>(log.late_count()), log.longest_gap_ms(),
                log.unavailable_in_gap_ms(episodes), fds_before, fds_after, recovery_ms, sent_ids.size(), received.size(), missing.size(), extra,
                unknown_ids.size(), failed_ids.size(), duplicated.size(), static_cast<unsigned long long>(transactions), files, pool_summary.c_str(),
                events.to_string().c_str());
    std::fflush(stdout);
    print_trace("smtp", log, events, episodes);
}

// --- the echo upstream (this executable, run by the proxy) ---------------------------------

int echo_upstream_main(int argc, char** argv) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the proxy
    try {
        asio::io_context ioc(1);
        echo::server_options o;
        o.port = static_cast<std::uint16_t>(std::stoul(argv[2]));
        if (argc >= 5) {
            o.cert_file = argv[3];
            o.key_file = argv[4];
        }
        echo::server srv(ioc.get_executor(), o);
        srv.start();
        asio::signal_set signals(ioc, SIGTERM, SIGINT);
        signals.async_wait([&](std::error_code, int) { ioc.stop(); });
        std::printf("READY %u\n", static_cast<unsigned>(srv.port()));
        std::fflush(stdout);
        ioc.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "chaos echo upstream: %s\n", e.what());
        return 1;
    }
}

}  // namespace

TEST_SUITE("chaos") {

TEST_CASE("chaos: echo (plain) through the fault proxy") { echo_case(false); }

TEST_CASE("chaos: echo (TLS) through the fault proxy" * test::needs_tls()) { echo_case(true); }

TEST_CASE("chaos: SMTP to Postfix's smtp-sink through the fault proxy") { smtp_case(); }

}  // TEST_SUITE

int main(int argc, char** argv) {
    if (argc >= 3 && std::string_view(argv[1]) == "--echo-upstream") return echo_upstream_main(argc, argv);
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
