// retirement_policy: when a healthy connection is closed, and why; when an idle one is
// checked. Pure predicates: a node, the options and a time.
#include <netpool/detail/retirement.hpp>

#include <doctest/doctest.h>

using namespace netpool;
using namespace netpool::detail;
using namespace std::chrono_literals;

namespace {
const time_point t0 = time_point{} + 1h;

node_rec idle_since(time_point t, bool overflow = false) {
    node_rec n;
    n.last_activity = t;
    n.overflow = overflow;
    return n;
}
}  // namespace

TEST_CASE("retirement: expiry is max_lifetime shortened by at most its jitter, and never without one") {
    pool_options o;
    jitter_rng rng(42);
    CHECK(retirement_policy(o).expiry(t0, rng) == never);
    o.max_lifetime = 1000ms;
    o.lifetime_jitter = 0.2;
    const retirement_policy p(o);
    time_point lo = never, hi = time_point::min();
    for (int i = 0; i < 1000; ++i) {
        const time_point e = p.expiry(t0, rng);
        lo = std::min(lo, e);
        hi = std::max(hi, e);
    }
    CHECK(lo >= t0 + 800ms);
    CHECK(hi <= t0 + 1000ms);
    CHECK(hi - lo > 150ms);  // spread, not one value
}

TEST_CASE("retirement: at checkin, max_uses then lifetime; otherwise reuse") {
    pool_options o;
    o.max_uses = 3;
    const retirement_policy p(o);
    node_rec n;
    n.uses = 2;
    CHECK_FALSE(p.at_checkin(n, t0));
    n.uses = 3;
    CHECK(p.at_checkin(n, t0) == close_reason::max_uses);
    n.uses = 1;
    n.expires_at = t0;
    CHECK(p.at_checkin(n, t0) == close_reason::lifetime);
    CHECK_FALSE(p.at_checkin(n, t0 - 1ms));
}

TEST_CASE("retirement: an overflow connection without overflow_ttl closes instead of idling; with one it lingers") {
    pool_options o;
    node_rec base, over;
    over.overflow = true;
    CHECK_FALSE(retirement_policy(o).instead_of_idle(base, t0));
    CHECK(retirement_policy(o).instead_of_idle(over, t0) == close_reason::overflow);
    o.overflow_ttl = 500ms;
    CHECK_FALSE(retirement_policy(o).instead_of_idle(over, t0));
    over.expires_at = t0;
    CHECK(retirement_policy(o).instead_of_idle(over, t0) == close_reason::lifetime);
}

TEST_CASE("retirement: while idle, lifetime, overflow_ttl, idle_timeout (above the base size only), keepalive") {
    pool_options o;
    o.size = 2;
    o.max_overflow = 2;
    o.overflow_ttl = 300ms;
    o.idle_timeout = 1000ms;
    o.keepalive_interval = 5000ms;
    const retirement_policy p(o);
    using step = retirement_policy::idle_step;

    node_rec n = idle_since(t0);
    CHECK(p.while_idle(n, t0 + 100ms, 3).what == step::keep);
    // idle_timeout closes only while more than `size` connections are open (not closing).
    CHECK(p.while_idle(n, t0 + 1000ms, 2).what == step::keep);
    const auto closed = p.while_idle(n, t0 + 1000ms, 3);
    CHECK(closed.what == step::close);
    CHECK(closed.why == close_reason::idle);
    const auto checked = p.while_idle(n, t0 + 5000ms, 2);
    CHECK(checked.what == step::check);

    node_rec over = idle_since(t0, true);
    const auto shrunk = p.while_idle(over, t0 + 300ms, 3);
    CHECK(shrunk.what == step::close);
    CHECK(shrunk.why == close_reason::overflow);

    n.expires_at = t0 + 50ms;
    const auto aged = p.while_idle(n, t0 + 50ms, 2);
    CHECK(aged.what == step::close);
    CHECK(aged.why == close_reason::lifetime);
}

TEST_CASE("retirement: idle_due is the earliest time while_idle has something to do") {
    pool_options o;
    o.size = 1;
    o.overflow_ttl = 300ms;
    o.idle_timeout = 1000ms;
    o.keepalive_interval = 700ms;
    const retirement_policy p(o);
    CHECK(p.idle_timers());
    node_rec n = idle_since(t0);
    CHECK(p.idle_due(n, 1) == t0 + 700ms);   // at the base size: keepalive first
    CHECK(p.idle_due(n, 2) == t0 + 700ms);
    node_rec over = idle_since(t0, true);
    CHECK(p.idle_due(over, 2) == t0 + 300ms);
    n.expires_at = t0 + 10ms;
    CHECK(p.idle_due(n, 1) == t0 + 10ms);
    // Each due time is one at which while_idle acts.
    CHECK(p.while_idle(over, p.idle_due(over, 2), 2).what != retirement_policy::idle_step::keep);
    CHECK_FALSE(retirement_policy(pool_options{}).idle_timers());
    CHECK(retirement_policy(pool_options{}).idle_due(idle_since(t0), 5) == never);
}

TEST_CASE("retirement: health check after idle, lease deadline") {
    pool_options o;
    o.health_check_after_idle = 200ms;
    o.lease_deadline = 50ms;
    const retirement_policy p(o);
    node_rec n = idle_since(t0);
    CHECK_FALSE(p.due_for_check(n, t0 + 199ms));
    CHECK(p.due_for_check(n, t0 + 200ms));
    n.lease_start = t0;
    CHECK(p.lease_due(n) == t0 + 50ms);
    CHECK_FALSE(p.lease_overdue(n, t0 + 49ms));
    CHECK(p.lease_overdue(n, t0 + 50ms));
    o.health_check_after_idle = 0ms;
    o.lease_deadline = 0ms;
    const retirement_policy off(o);
    CHECK_FALSE(off.due_for_check(n, t0 + 1h));
    CHECK(off.lease_due(n) == never);
    CHECK_FALSE(off.lease_overdue(n, t0 + 1h));
}

TEST_CASE("retirement: overflow workers leave when nobody waits or the endpoint is down; reasons for good") {
    node_rec base, over;
    over.overflow = true;
    CHECK_FALSE(retirement_policy::overflow_leaves(base, 0, true));
    CHECK(retirement_policy::overflow_leaves(over, 0, false));
    CHECK_FALSE(retirement_policy::overflow_leaves(over, 1, false));
    CHECK(retirement_policy::overflow_leaves(over, 1, true));
    for (close_reason r : {close_reason::overflow, close_reason::idle, close_reason::drain})
        CHECK(retirement_policy::for_good(r));
    for (close_reason r : {close_reason::lifetime, close_reason::max_uses, close_reason::broken})
        CHECK_FALSE(retirement_policy::for_good(r));
    for (close_reason r : {close_reason::broken, close_reason::health, close_reason::overdue})
        CHECK(retirement_policy::found_broken(r));
    CHECK_FALSE(retirement_policy::found_broken(close_reason::lifetime));
}
