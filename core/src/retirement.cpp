// When a connection is retired, and why: see retirement.hpp.
#include <netpool/detail/retirement.hpp>

#include <algorithm>

namespace netpool::detail {

retirement_policy::retirement_policy(const pool_options& o) noexcept
    : size_(o.size), max_uses_(o.max_uses), lifetime_jitter_(o.lifetime_jitter), max_lifetime_(o.max_lifetime),
      overflow_ttl_(o.overflow_ttl), idle_timeout_(o.idle_timeout), keepalive_(o.keepalive_interval),
      check_after_idle_(o.health_check_after_idle), lease_deadline_(o.lease_deadline),
      idle_timers_(o.max_lifetime.count() > 0 || o.overflow_ttl.count() > 0 || o.idle_timeout.count() > 0 ||
                   o.keepalive_interval.count() > 0) {}

time_point retirement_policy::expiry(time_point opened, jitter_rng& rng) const noexcept {
    if (max_lifetime_.count() == 0) return never;
    const auto life = std::chrono::duration_cast<clock::duration>(max_lifetime_);
    const auto cut = std::chrono::duration_cast<clock::duration>(life * (lifetime_jitter_ * rng.next01()));
    return opened + life - cut;
}

bool retirement_policy::due_for_check(const node_rec& n, time_point now) const noexcept {
    return check_after_idle_.count() > 0 && now - n.last_activity >= check_after_idle_;
}

bool retirement_policy::lease_overdue(const node_rec& n, time_point now) const noexcept {
    return lease_deadline_.count() > 0 && now - n.lease_start >= lease_deadline_;
}

time_point retirement_policy::lease_due(const node_rec& n) const noexcept {
    return lease_deadline_.count() > 0 ? n.lease_start + lease_deadline_ : never;
}

std::optional<close_reason> retirement_policy::at_checkin(const node_rec& n, time_point now) const noexcept {
    if (max_uses_ > 0 && n.uses >= max_uses_) return close_reason::max_uses;
    if (expired(n, now)) return close_reason::lifetime;
    return std::nullopt;
}

std::optional<close_reason> retirement_policy::instead_of_idle(const node_rec& n, time_point now) const noexcept {
    if (expired(n, now)) return close_reason::lifetime;
    // Without overflow_ttl an overflow connection exists only for the waiters that made it.
    if (n.overflow && overflow_ttl_.count() == 0) return close_reason::overflow;
    return std::nullopt;
}

retirement_policy::idle_step retirement_policy::while_idle(const node_rec& n, time_point now,
                                                           std::size_t open) const noexcept {
    const auto idle_for = now - n.last_activity;
    if (expired(n, now)) return {idle_step::close, close_reason::lifetime};
    if (n.overflow && overflow_ttl_.count() > 0 && idle_for >= overflow_ttl_)
        return {idle_step::close, close_reason::overflow};
    if (idle_timeout_.count() > 0 && open > size_ && idle_for >= idle_timeout_)
        return {idle_step::close, close_reason::idle};
    if (keepalive_.count() > 0 && idle_for >= keepalive_) return {idle_step::check, close_reason::idle};
    return {};
}

time_point retirement_policy::idle_due(const node_rec& n, std::size_t open) const noexcept {
    time_point t = n.expires_at;
    const auto since = n.last_activity;
    if (n.overflow && overflow_ttl_.count() > 0) t = std::min(t, since + overflow_ttl_);
    if (idle_timeout_.count() > 0 && open > size_) t = std::min(t, since + idle_timeout_);
    if (keepalive_.count() > 0) t = std::min(t, since + keepalive_);
    return t;
}

}  // namespace netpool::detail
