// When a connection is retired, and why: every rule that closes a healthy connection
// (max_lifetime with jitter, max_uses, idle_timeout above the base size, overflow_ttl and
// the overflow shrink, a lease past its deadline) and when an idle one is checked
// (health_check_after_idle, keepalive). Pure predicates over a node and the time: no state
// of its own beyond the options, no I/O; pool_state asks and acts.
#pragma once

#include <netpool/detail/jitter.hpp>
#include <netpool/detail/node_table.hpp>
#include <netpool/events.hpp>
#include <netpool/options.hpp>
#include <netpool/time.hpp>

#include <cstddef>
#include <optional>

namespace netpool::detail {

class retirement_policy {
public:
    /// `o` must be validated and its durations saturated (pool_state's constructor does both).
    explicit retirement_policy(const pool_options& o) noexcept;

    /// When a connection opened at `opened` expires: max_lifetime shortened by up to
    /// lifetime_jitter of itself (drawn from `rng` only when there is a max_lifetime), so
    /// connections opened together do not retire together. never without max_lifetime.
    time_point expiry(time_point opened, jitter_rng& rng) const noexcept;
    static bool expired(const node_rec& n, time_point now) noexcept { return now >= n.expires_at; }
    /// Idle long enough that it is checked before it is leased.
    bool due_for_check(const node_rec& n, time_point now) const noexcept;

    /// The lease has been held past lease_deadline.
    bool lease_overdue(const node_rec& n, time_point now) const noexcept;
    /// When the lease becomes overdue, or never.
    time_point lease_due(const node_rec& n) const noexcept;

    /// A lease came back healthy: close the connection instead of reusing it, and why
    /// (max_uses reached, lifetime over), or nothing.
    std::optional<close_reason> at_checkin(const node_rec& n, time_point now) const noexcept;
    /// A connection about to become idle with nobody waiting for it: close instead, and
    /// why (lifetime over; an overflow connection without overflow_ttl), or nothing.
    std::optional<close_reason> instead_of_idle(const node_rec& n, time_point now) const noexcept;

    /// What an idle connection needs at `now`. `open` is the number of connections not
    /// already closing: the shrink rules never take the pool below its base size.
    struct idle_step {
        enum kind : unsigned char { keep, close, check } what = keep;
        close_reason why = close_reason::idle;
    };
    idle_step while_idle(const node_rec& n, time_point now, std::size_t open) const noexcept;
    /// When while_idle() next has something to do for `n` (never if nothing ever).
    time_point idle_due(const node_rec& n, std::size_t open) const noexcept;
    /// True when any idle connection can ever need the timer (some option above is set).
    bool idle_timers() const noexcept { return idle_timers_; }

    /// An overflow worker whose connection closed or whose connect failed leaves, rather
    /// than reconnecting, unless callers wait (and the endpoint is up).
    static bool overflow_leaves(const node_rec& n, std::size_t waiters, bool endpoint_down) noexcept {
        return n.overflow && (endpoint_down || waiters == 0);
    }
    /// Closes for these reasons are for good: the worker exits instead of reconnecting.
    static bool for_good(close_reason r) noexcept {
        return r == close_reason::overflow || r == close_reason::idle || r == close_reason::drain;
    }
    /// Closes for these reasons found the connection broken: the supervisor hears of them.
    static bool found_broken(close_reason r) noexcept {
        return r == close_reason::broken || r == close_reason::health || r == close_reason::overdue;
    }

private:
    std::size_t size_;
    std::uint64_t max_uses_;
    double lifetime_jitter_;
    duration max_lifetime_, overflow_ttl_, idle_timeout_, keepalive_, check_after_idle_, lease_deadline_;
    bool idle_timers_;
};

}  // namespace netpool::detail
