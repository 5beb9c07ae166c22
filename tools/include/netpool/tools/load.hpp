// The load driver of the CLI's load commands (smtp-send, imap-bench, redis-bench, demo) and of
// the benchmark suites: TOTAL operations run by CONCURRENCY coroutines on one io_context,
// each operation's latency, failures grouped by a key with their message and count, and the
// wall time from the first spawn to the last completion.
#pragma once

#include <netpool/tools/progress.hpp>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace netpool::tools {

using load_clock = std::chrono::steady_clock;

/// Latency samples in microseconds.
class latencies {
public:
    void reserve(std::size_t n) { us_.reserve(n); }
    void add(double us) {
        us_.push_back(us);
        sorted_ = false;
    }
    std::size_t size() const noexcept { return us_.size(); }
    double average() const {
        double s = 0;
        for (double v : us_) s += v;
        return us_.empty() ? 0 : s / static_cast<double>(us_.size());
    }
    /// q in [0,1]: linear interpolation between the closest ranks; 0 when empty.
    double percentile(double q) {
        if (us_.empty()) return 0;
        if (!sorted_) {
            std::sort(us_.begin(), us_.end());
            sorted_ = true;
        }
        const double pos = q * static_cast<double>(us_.size() - 1);
        const auto lo = static_cast<std::size_t>(std::floor(pos));
        const auto hi = std::min(lo + 1, us_.size() - 1);
        return us_[lo] + (us_[hi] - us_[lo]) * (pos - static_cast<double>(lo));
    }

private:
    std::vector<double> us_;
    bool sorted_ = false;
};

/// How one operation went.
struct outcome {
    std::string key;      ///< "" for success; else what failures are grouped by
    std::string message;  ///< a failure's words (the key when empty)
    /// When the operation's measured part ended (e.g. a message accepted before QUIT); unset:
    /// when the operation returned.
    std::optional<load_clock::time_point> until;

    bool ok() const noexcept { return key.empty(); }
    static outcome success() { return {}; }
    /// A failure grouped by its own text.
    static outcome failure(std::string why) { return {why, why, std::nullopt}; }
    static outcome failure(std::string key, std::string message) { return {std::move(key), std::move(message), std::nullopt}; }
};

struct failure_count {
    std::string message;  ///< of the first failure with the key
    std::size_t count = 0;
};

struct load_result {
    std::size_t ok = 0, failed = 0;
    std::map<std::string, failure_count> failures;  ///< by outcome::key
    latencies lat;                                  ///< of successful operations, µs
    double seconds = 0;                             ///< first spawn to last completion

    /// Successful operations per second.
    double per_second() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
    /// Failures as (message, count), most frequent first.
    std::vector<std::pair<std::string, std::size_t>> failures_by_count() const {
        std::vector<std::pair<std::string, std::size_t>> v;
        for (const auto& [key, f] : failures) v.emplace_back(f.message, f.count);
        std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        return v;
    }
};

struct load_options {
    std::size_t total = 0;
    std::size_t concurrency = 1;  ///< coroutines; more than `total` is allowed (they find nothing to do)
    progress* shown = nullptr;    ///< told after each operation, when given
    /// What an exception from the operation counts as (default: a failure "unexpected
    /// exception: <what>").
    std::function<outcome(const std::exception&)> on_exception;
};

/// Runs o.total operations with o.concurrency coroutines on `ioc` (coroutine i calls op(i)
/// until the shared count is used up; op returns asio::awaitable<outcome>), and returns when
/// all are done, stopping `ioc` (a pool's idle workers would keep it running). Not
/// thread-safe: `ioc` must be run by this call alone.
template <class Op>
load_result drive(asio::io_context& ioc, const load_options& o, Op op) {
    load_result r;
    r.lat.reserve(o.total);
    std::size_t next = 0, running = o.concurrency;
    load_clock::time_point t0, t1;
    auto worker = [&](std::size_t index) -> asio::awaitable<void> {
        while (next < o.total) {
            ++next;
            const auto start = load_clock::now();
            outcome out;
            try {
                out = co_await op(index);
            } catch (const std::exception& e) {
                out = o.on_exception ? o.on_exception(e) : outcome::failure(std::string("unexpected exception: ") + e.what());
            }
            if (out.ok()) {
                ++r.ok;
                const auto end = out.until.value_or(load_clock::now());
                r.lat.add(std::chrono::duration<double, std::micro>(end - start).count());
            } else {
                ++r.failed;
                auto& f = r.failures[out.key];
                if (f.count++ == 0) f.message = out.message.empty() ? out.key : std::move(out.message);
            }
            if (o.shown) o.shown->update(r.ok + r.failed, r.failed);
        }
        if (--running == 0) {
            t1 = load_clock::now();
            ioc.stop();
        }
    };
    ioc.restart();
    t0 = load_clock::now();
    t1 = t0;
    for (std::size_t i = 0; i < o.concurrency; ++i) asio::co_spawn(ioc, worker(i), asio::detached);
    ioc.run();
    if (o.shown) o.shown->finish();
    r.seconds = std::chrono::duration<double>(t1 - t0).count();
    return r;
}

}  // namespace netpool::tools
