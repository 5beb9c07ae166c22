// The load driver the benchmark commands share (imap-bench, redis-bench): N operations,
// C at a time, on one io_context; per-operation latency, failures by reason, throughput.
#pragma once

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
#include <string>
#include <vector>

namespace netpool::cli {

struct run_result {
    std::string mode;
    std::size_t ok = 0, failed = 0;
    std::map<std::string, std::size_t> reasons;  ///< failure text -> how many times
    std::vector<double> ms;                      ///< latency of each successful operation
    double seconds = 0;                          ///< wall time of the whole run

    /// Successful operations per second.
    double per_second() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
    double avg() const {
        double s = 0;
        for (double v : ms) s += v;
        return ms.empty() ? 0 : s / static_cast<double>(ms.size());
    }
    /// Linear interpolation between the closest ranks; 0 when nothing succeeded.
    double pct(double q) {
        if (ms.empty()) return 0;
        std::sort(ms.begin(), ms.end());
        const double pos = q * static_cast<double>(ms.size() - 1);
        const auto lo = static_cast<std::size_t>(std::floor(pos));
        const auto hi = std::min(lo + 1, ms.size() - 1);
        return ms[lo] + (ms[hi] - ms[lo]) * (pos - static_cast<double>(lo));
    }
};

/// What one operation says: "" for success, else what went wrong ("stage: message (detail)").
using operation = std::function<asio::awaitable<std::string>()>;

/// Runs `total` operations of `op` with `concurrency` coroutines on `ioc`, and returns when
/// all are done (stopping `ioc`: a pool's idle workers would keep it running). An exception
/// from `op` counts as a failure with its message.
inline run_result drive(asio::io_context& ioc, std::size_t total, std::size_t concurrency, const operation& op) {
    using clock_type = std::chrono::steady_clock;
    run_result r;
    r.ms.reserve(total);
    std::size_t next = 0, running = concurrency;
    auto worker = [&]() -> asio::awaitable<void> {
        while (next < total) {
            ++next;
            const auto s = clock_type::now();
            std::string why;
            try {
                why = co_await op();
            } catch (const std::exception& e) {
                why = std::string("unexpected exception: ") + e.what();
            }
            if (why.empty()) {
                ++r.ok;
                r.ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - s).count());
            } else {
                ++r.failed;
                ++r.reasons[why];
            }
        }
        if (--running == 0) ioc.stop();
    };
    ioc.restart();
    const auto t0 = clock_type::now();
    for (std::size_t i = 0; i < concurrency; ++i) asio::co_spawn(ioc, worker(), asio::detached);
    ioc.run();
    r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    return r;
}

}  // namespace netpool::cli
