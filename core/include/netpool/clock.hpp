// The clock a pool and a registry make their decisions on: lifetimes, idle timeouts,
// health-check thresholds, backoff and probes, checkout, lease and drain deadlines, idle
// keyed pools. By default the steady clock; a test injects a manual_clock and moves time
// itself, so lifecycle behaviour runs with real options and without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace netpool {

/// What a pool needs of a clock. Implementations are thread-safe.
class pool_clock {
public:
    using time_point = std::chrono::steady_clock::time_point;
    virtual ~pool_clock() = default;
    virtual time_point now() const noexcept = 0;
    /// Whether time passes by itself. A pool on a clock that does not (manual_clock) waits
    /// on no real timer for its decisions: it re-evaluates when subscribe()'s callback runs.
    /// I/O timeouts (connect, handshake, the adapter's hooks) stay real in either case.
    virtual bool real_time() const noexcept = 0;
    /// Calls `moved` after every change of time, on the thread that made it, until the
    /// returned handle is released. A real-time clock returns an empty handle and never calls.
    virtual std::shared_ptr<void> subscribe(std::function<void()> moved) = 0;
};

/// Time that moves only when advance() or set() is called. Starts at the steady clock's
/// reading when constructed (so time points look like real ones in events and logs).
///
///     auto clock = std::make_shared<netpool::manual_clock>();
///     netpool::pool_options o;
///     o.clock = clock;
///     ...
///     clock->advance(31min);  // a max_lifetime of 30 min has passed, for every pool on it
///
/// advance() first moves time, then runs every subscriber (each pool ticks: waiters and
/// drains past their deadline fail, idle connections past their limits close, workers in
/// backoff wake) before it returns; completions are posted to their executors as usual.
class manual_clock final : public pool_clock {
public:
    manual_clock();
    explicit manual_clock(time_point start) noexcept;
    time_point now() const noexcept override;
    bool real_time() const noexcept override { return false; }
    std::shared_ptr<void> subscribe(std::function<void()> moved) override;

    /// Moves time forward by d (a negative d counts as zero) and notifies the subscribers.
    void advance(std::chrono::nanoseconds d);

private:
    struct subscriber;
    mutable std::mutex mu_;
    time_point now_;
    std::vector<std::weak_ptr<subscriber>> subscribers_;
};

}  // namespace netpool
