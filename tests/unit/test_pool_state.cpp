// pool_state: the pool's decisions, driven with a fake clock and a recording io_sink.
// No sockets, no sleeps: time is a variable.
#include <netpool/detail/pool_state.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace netpool;
using namespace netpool::detail;
using namespace std::chrono_literals;

namespace {

struct completion {
    waiter_rec* w;
    node_rec* n;
    std::error_code ec;
};

struct recording_sink final : io_sink {
    std::vector<node_rec*> spawned;
    std::vector<node_rec*> woken;
    std::vector<completion> completed;
    std::vector<node_rec*> aborted;
    time_point armed = never;
    bool drained_called = false;
    std::error_code drained_ec;

    void spawn(node_rec& n) override { spawned.push_back(&n); }
    void wake(node_rec& n) override { woken.push_back(&n); }
    void complete(waiter_rec& w, node_rec* n, std::error_code ec) override { completed.push_back({&w, n, ec}); }
    void arm(time_point t) override { armed = t; }
    void abort_lease(node_rec& n) override { aborted.push_back(&n); }
    void drained(std::error_code ec) override {
        drained_called = true;
        drained_ec = ec;
    }
};

std::string str(const action& a) { return to_string(a.kind); }

pool_options small(std::size_t size, std::size_t overflow) {
    pool_options o;
    o.size = size;
    o.max_overflow = overflow;
    o.backoff_jitter = 0;
    return o;
}

struct harness {
    recording_sink sink;
    pool_state st;
    time_point t = time_point{} + 1h;
    std::vector<std::string> events;

    explicit harness(pool_options o) : st(std::move(o), "test", sink) {
        st.set_event_hook([this](const event& e) {
            std::string s = to_string(e.kind);
            if (e.kind == event_kind::closed) s += std::string(":") + to_string(e.reason);
            events.push_back(s);
        });
    }

    action next(node_rec& n, std::error_code ec = {}) { return st.next(n, ec, t); }

    /// Runs a freshly spawned node through a successful connect; returns the action after.
    action connect(node_rec& n) {
        auto a = next(n);
        REQUIRE(str(a) == "connect");
        return next(n);
    }
    void connect_all_spawned() {
        auto nodes = sink.spawned;
        sink.spawned.clear();
        for (auto* n : nodes) CHECK(str(connect(*n)) == "wait");
    }
    checkout_outcome checkout(waiter_rec& w, std::chrono::milliseconds timeout = 1000ms) {
        return st.checkout(&w, t, t + timeout);
    }
    node_rec* try_lease() { return st.try_lease(t); }
    /// Sum of per-status counts must equal the total: bookkeeping cannot drift.
    void check_counts() {
        std::size_t sum = 0;
        for (std::size_t i = 0; i < node_status_count; ++i) sum += st.count(static_cast<node_status>(i));
        CHECK(sum == st.total());
    }
    bool has_event(const std::string& e) const { return std::find(events.begin(), events.end(), e) != events.end(); }
};

}  // namespace

TEST_SUITE("pool_state") {

TEST_CASE("start connects base workers, or none when lazy") {
    harness h(small(3, 2));
    h.st.start(h.t);
    CHECK(h.sink.spawned.size() == 3);
    h.connect_all_spawned();
    CHECK(h.st.count(node_status::idle) == 3);
    CHECK(h.events == std::vector<std::string>{"created", "created", "created"});

    auto lazy = small(3, 2);
    lazy.lazy = true;
    harness l(lazy);
    l.st.start(l.t);
    CHECK(l.sink.spawned.empty());
    waiter_rec w;
    CHECK(l.checkout(w).queued);
    CHECK(l.sink.spawned.size() == 1);  // one worker per waiter, not the whole base
    h.check_counts();
}

TEST_CASE("idle selection: lifo takes the most recent, fifo the oldest") {
    for (auto order : {idle_order::lifo, idle_order::fifo}) {
        auto o = small(3, 0);
        o.order = order;
        harness h(o);
        h.st.start(h.t);
        h.connect_all_spawned();
        node_rec* a = h.try_lease();
        node_rec* b = h.try_lease();
        REQUIRE(a);
        REQUIRE(b);
        h.st.checkin(*a, h.t, false, false);
        h.t += 1ms;
        h.st.checkin(*b, h.t, false, false);
        node_rec* c = h.try_lease();
        // Idle now: the third (never leased), then a, then b (most recent).
        if (order == idle_order::lifo) CHECK(c == b);
        else CHECK(c != b);
        h.check_counts();
    }
}

TEST_CASE("overflow grows with waiters and closes on return when nobody waits") {
    harness h(small(1, 2));
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* base = h.try_lease();
    REQUIRE(base);
    waiter_rec w1, w2, w3;
    CHECK(h.checkout(w1).queued);
    CHECK(h.checkout(w2).queued);
    CHECK(h.checkout(w3).queued);
    CHECK(h.sink.spawned.size() == 2);  // capped at size + max_overflow
    CHECK(h.st.total() == 3);
    auto spawned = h.sink.spawned;
    h.sink.spawned.clear();
    for (auto* n : spawned) {
        CHECK(n->overflow);
        CHECK(str(h.connect(*n)) == "wait");  // handed straight to a waiter
    }
    REQUIRE(h.sink.completed.size() == 2);
    CHECK(h.sink.completed[0].w == &w1);  // first come, first served
    CHECK(h.sink.completed[1].w == &w2);
    // The base worker comes back: direct handoff to w3.
    h.st.checkin(*base, h.t, false, false);
    REQUIRE(h.sink.completed.size() == 3);
    CHECK(h.sink.completed[2].w == &w3);
    CHECK(h.sink.completed[2].n == base);
    // Overflow workers come back with nobody waiting: they close (poolboy).
    auto* o1 = h.sink.completed[0].n;
    h.st.checkin(*o1, h.t, false, false);
    CHECK(o1->status == node_status::closing);
    CHECK(str(h.next(*o1)) == "close");
    CHECK(str(h.next(*o1)) == "exit");
    CHECK(h.has_event("closed:overflow"));
    CHECK(h.st.total() == 2);
    h.check_counts();
}

TEST_CASE("overflow_ttl lets a returned overflow worker linger, then closes it") {
    auto o = small(1, 1);
    o.overflow_ttl = 500ms;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* base = h.try_lease();
    waiter_rec w;
    h.checkout(w);
    node_rec* ov = h.sink.spawned.at(0);
    h.connect(*ov);
    h.st.checkin(*ov, h.t, false, false);
    CHECK(ov->status == node_status::idle);
    CHECK(h.sink.armed == h.t + 500ms);
    h.t += 499ms;
    h.st.tick(h.t);
    CHECK(ov->status == node_status::idle);
    h.t += 1ms;
    h.st.tick(h.t);
    CHECK(ov->status == node_status::closing);
    CHECK(str(h.next(*ov)) == "close");
    CHECK(str(h.next(*ov)) == "exit");
    h.st.checkin(*base, h.t, false, false);
    CHECK(h.st.total() == 1);
}

TEST_CASE("waiters: deadline, expired waiter skipped at handoff, cap, cancel") {
    auto o = small(1, 0);
    o.max_waiters = 2;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* n = h.try_lease();
    waiter_rec w1, w2, w3;
    CHECK(h.checkout(w1, 100ms).queued);
    CHECK(h.checkout(w2, 1000ms).queued);
    auto full = h.checkout(w3);
    CHECK(full.ec == errc::pool_exhausted);
    CHECK(h.sink.armed == h.t + 100ms);

    // w1's deadline passes before its timer fires: the handoff skips it.
    h.t += 200ms;
    h.st.checkin(*n, h.t, false, false);
    REQUIRE(h.sink.completed.size() == 2);
    CHECK(h.sink.completed[0].w == &w1);
    CHECK(h.sink.completed[0].ec == errc::checkout_timeout);
    CHECK(h.sink.completed[1].w == &w2);
    CHECK(h.sink.completed[1].n == n);

    // Cancel a queued waiter; cancelling a completed one is a no-op.
    waiter_rec w4;
    CHECK(h.checkout(w4).queued);
    CHECK(h.st.cancel(w4, h.t));
    CHECK_FALSE(h.st.cancel(w4, h.t));
    CHECK(h.st.waiters() == 0);
    auto s = h.st.snapshot();
    CHECK(s.checkouts[static_cast<int>(checkout_result::ok)] == 2);
    CHECK(s.checkouts[static_cast<int>(checkout_result::timeout)] == 1);
    CHECK(s.checkouts[static_cast<int>(checkout_result::exhausted)] == 1);
    CHECK(s.checkouts[static_cast<int>(checkout_result::cancelled)] == 1);

    // The timer path: tick at the deadline fails the waiter.
    waiter_rec w5;
    CHECK(h.checkout(w5, 50ms).queued);
    h.t += 50ms;
    h.st.tick(h.t);
    CHECK(h.sink.completed.back().w == &w5);
    CHECK(h.sink.completed.back().ec == errc::checkout_timeout);
    CHECK(h.has_event("waiter_timeout"));
}

TEST_CASE("a newcomer never overtakes queued waiters") {
    harness h(small(1, 0));
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* n = h.try_lease();
    waiter_rec w1;
    CHECK(h.checkout(w1).queued);
    CHECK(h.try_lease() == nullptr);
    h.st.checkin(*n, h.t, false, false);
    CHECK(h.sink.completed.at(0).w == &w1);
}

TEST_CASE("connect failures back off, then the endpoint goes down, is probed and comes back") {
    auto o = small(1, 0);
    o.backoff_initial = 100ms;
    o.backoff_max = 350ms;
    o.max_restarts = 3;
    o.restart_period = 10s;
    o.down_cooldown = 2s;
    harness h(o);
    h.st.start(h.t);
    node_rec* n = h.sink.spawned.at(0);
    waiter_rec w;
    CHECK(str(h.next(*n)) == "connect");
    CHECK(h.checkout(w, 60s).queued);
    const auto refused = std::make_error_code(std::errc::connection_refused);
    const time_point t0 = h.t;
    // Each failure parks the worker at the connect gate; the gate's timer admits the next
    // attempt after backoff_initial, then after an eighth of the episode's age (capped).
    std::vector<std::chrono::milliseconds> delays;
    for (int i = 0; i < 3; ++i) {
        auto a = h.next(*n, refused);
        REQUIRE(str(a) == "wait");
        CHECK(n->status == node_status::parked);
        CHECK(a.until == never);  // woken by the gate, not by its own timer
        delays.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(h.sink.armed - h.t));
        h.t = h.sink.armed;
        h.sink.woken.clear();
        h.st.tick(h.t);
        CHECK(std::count(h.sink.woken.begin(), h.sink.woken.end(), n) == 1);
        CHECK(str(h.next(*n)) == "connect");
    }
    CHECK(delays == std::vector<std::chrono::milliseconds>{100ms, 100ms, 100ms});  // age/8 < backoff_initial yet
    // The fourth failure within the period exceeds max_restarts: endpoint down.
    auto a = h.next(*n, refused);
    CHECK(str(a) == "wait");
    CHECK(n->status == node_status::parked);
    CHECK(h.st.endpoint_down());
    REQUIRE(h.sink.completed.size() == 1);
    CHECK(h.sink.completed[0].ec == errc::endpoint_down_refused);
    CHECK(h.sink.completed[0].ec == condition::endpoint_down);
    CHECK(h.has_event("endpoint_down"));
    // Checkouts fail fast with the cause.
    waiter_rec w2;
    auto fast = h.checkout(w2);
    CHECK(fast.ec == errc::endpoint_down_refused);
    // Probes back off too, up to min(backoff_max, down_cooldown): 300 ms into the episode
    // the next one is still backoff_initial away.
    CHECK(h.sink.armed - h.t == 100ms);
    h.t = h.sink.armed;
    h.st.tick(h.t);
    CHECK(str(h.next(*n)) == "connect");
    CHECK(str(h.next(*n, refused)) == "wait");  // the probe failed: still down
    CHECK(h.st.endpoint_down());
    // Much later the delay is capped at backoff_max (350 ms here, below down_cooldown).
    h.t = t0 + 60s;
    h.st.tick(h.t);
    CHECK(str(h.next(*n)) == "connect");
    CHECK(str(h.next(*n, refused)) == "wait");
    CHECK(h.sink.armed - h.t == 350ms);
    h.t = h.sink.armed;
    h.st.tick(h.t);
    CHECK(str(h.next(*n)) == "connect");
    CHECK(str(h.next(*n)) == "wait");  // success
    CHECK_FALSE(h.st.endpoint_down());
    CHECK(h.has_event("endpoint_up"));
    CHECK(n->status == node_status::idle);
    h.check_counts();
}

TEST_CASE("a certificate that fails verification takes the endpoint down at once; probes only after down_cooldown") {
    harness h(small(2, 0));
    h.st.start(h.t);
    node_rec* a = h.sink.spawned.at(0);
    node_rec* b = h.sink.spawned.at(1);
    CHECK(str(h.next(*a)) == "connect");
    CHECK(str(h.next(*b)) == "wait");  // the endpoint's first connect goes alone
    CHECK(str(h.next(*a, errc::tls_verify_failed)) == "wait");
    CHECK(h.st.endpoint_down());
    CHECK(str(h.next(*b)) == "wait");  // no second handshake against that certificate
    CHECK(h.st.snapshot().connects_failed == 1);
    CHECK(h.sink.armed - h.t == pool_options{}.down_cooldown);
}

TEST_CASE("backoff jitter stays within its fraction") {
    auto o = small(1, 0);
    o.backoff_initial = 1000ms;
    o.backoff_max = 1000ms;
    o.backoff_jitter = 0.5;
    o.max_restarts = 1000;
    harness h(o);
    h.st.start(h.t);
    node_rec* n = h.sink.spawned.at(0);
    h.next(*n);
    bool varied = false;
    std::chrono::milliseconds first{-1};
    for (int i = 0; i < 50; ++i) {
        h.next(*n, std::make_error_code(std::errc::connection_refused));
        auto d = std::chrono::duration_cast<std::chrono::milliseconds>(h.sink.armed - h.t);
        CHECK(d >= 500ms);
        CHECK(d <= 1000ms);
        if (first.count() < 0) first = d;
        else if (d != first) varied = true;
        h.t = h.sink.armed;
        h.st.tick(h.t);
        CHECK(str(h.next(*n)) == "connect");
    }
    CHECK(varied);
}

TEST_CASE("health check at checkout after idle: pass hands over, fail replaces") {
    auto o = small(1, 0);
    o.health_check_after_idle = 30s;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* n = h.sink.completed.empty() ? nullptr : nullptr;
    n = h.try_lease();
    REQUIRE(n);  // fresh: no check
    h.st.checkin(*n, h.t, false, false);
    h.t += 31s;
    waiter_rec w;
    CHECK(h.checkout(w).queued);
    CHECK(n->status == node_status::checking);
    CHECK(str(h.next(*n)) == "health_check");
    CHECK(str(h.next(*n)) == "wait");  // passed
    CHECK(h.sink.completed.at(0).n == n);

    h.st.checkin(*n, h.t, false, false);
    h.t += 31s;
    waiter_rec w2;
    CHECK(h.checkout(w2).queued);
    CHECK(str(h.next(*n)) == "health_check");
    CHECK(str(h.next(*n, errc::health_check_failed)) == "close");
    CHECK(str(h.next(*n)) == "connect");  // base worker replaced
    CHECK(h.has_event("closed:health"));
    CHECK(str(h.next(*n)) == "wait");
    CHECK(h.sink.completed.at(1).w == &w2);
    CHECK(h.st.snapshot().health_checks_failed == 1);
}

TEST_CASE("keepalive checks idle connections periodically") {
    auto o = small(2, 0);
    o.keepalive_interval = 10s;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    CHECK(h.sink.armed == h.t + 10s);
    h.t += 10s;
    h.st.tick(h.t);
    CHECK(h.st.count(node_status::checking) == 2);
    for (auto* n : h.sink.woken) {
        CHECK(str(h.next(*n)) == "health_check");
        CHECK(str(h.next(*n)) == "wait");
    }
    CHECK(h.st.count(node_status::idle) == 2);
    CHECK(h.sink.armed == h.t + 10s);
}

TEST_CASE("max_lifetime retires after the lease, never during it") {
    auto o = small(1, 0);
    o.max_lifetime = 60s;
    o.lifetime_jitter = 0;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* n = h.try_lease();
    h.t += 61s;
    h.st.tick(h.t);
    CHECK(n->status == node_status::leased);  // not touched mid-lease
    h.st.checkin(*n, h.t, false, false);
    CHECK(n->status == node_status::closing);
    CHECK(str(h.next(*n)) == "close");
    CHECK(str(h.next(*n)) == "connect");
    CHECK(str(h.next(*n)) == "wait");
    CHECK(h.has_event("closed:lifetime"));
    // Idle and aged: retired by the timer.
    h.t += 61s;
    h.st.tick(h.t);
    CHECK(n->status == node_status::closing);
}

TEST_CASE("lifetime jitter spreads expiry below max_lifetime") {
    auto o = small(20, 0);
    o.max_lifetime = 100s;
    o.lifetime_jitter = 0.2;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    std::vector<time_point> exp;
    for (int i = 0; i < 20; ++i) exp.push_back(h.try_lease()->expires_at);
    for (auto e : exp) {
        CHECK(e <= h.t + 100s);
        CHECK(e >= h.t + 80s);
    }
    std::sort(exp.begin(), exp.end());
    CHECK(exp.front() != exp.back());
}

TEST_CASE("max_uses retires a connection after that many leases") {
    auto o = small(1, 0);
    o.max_uses = 2;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* n = h.try_lease();
    h.st.checkin(*n, h.t, false, false);
    CHECK(h.try_lease() == n);
    h.st.checkin(*n, h.t, false, false);
    CHECK(n->status == node_status::closing);
    CHECK(str(h.next(*n)) == "close");
    CHECK(str(h.next(*n)) == "connect");
    CHECK(h.has_event("closed:max_uses"));
}

TEST_CASE("discard closes and replaces; reset runs before reuse") {
    harness h(small(1, 0));
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* n = h.try_lease();
    h.st.checkin(*n, h.t, true, false);
    CHECK(h.has_event("discarded"));
    CHECK(str(h.next(*n)) == "close");
    CHECK(str(h.next(*n)) == "connect");
    CHECK(str(h.next(*n)) == "wait");
    n = h.try_lease();
    REQUIRE(n);
    h.st.checkin(*n, h.t, false, true);
    CHECK(n->status == node_status::resetting);
    CHECK(h.try_lease() == nullptr);  // not handed out mid-reset
    CHECK(str(h.next(*n)) == "reset");
    CHECK(str(h.next(*n)) == "wait");
    CHECK(n->status == node_status::idle);
    // A failed reset: the connection is not reused.
    n = h.try_lease();
    h.st.checkin(*n, h.t, false, true);
    CHECK(str(h.next(*n)) == "reset");
    CHECK(str(h.next(*n, errc::protocol_error)) == "close");
    CHECK(h.st.snapshot().closes[static_cast<int>(close_reason::broken)] == 1);  // counted when closed
    CHECK(str(h.next(*n)) == "connect");
    CHECK(h.st.snapshot().closes[static_cast<int>(close_reason::broken)] == 2);
}

TEST_CASE("lease deadline: reported once, and the connection is not reused") {
    auto o = small(1, 0);
    o.lease_deadline = 5s;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* n = h.try_lease();
    CHECK(h.sink.armed == h.t + 5s);
    h.t += 5s;
    h.st.tick(h.t);
    h.st.tick(h.t);
    CHECK(std::count(h.events.begin(), h.events.end(), "lease_overdue") == 1);
    CHECK(h.st.snapshot().leases_overdue == 1);
    h.st.checkin(*n, h.t, false, false);
    CHECK(str(h.next(*n)) == "close");
    CHECK(str(h.next(*n)) == "connect");
    CHECK(h.has_event("closed:overdue"));
}

TEST_CASE("idle_timeout never shrinks below the base size") {
    auto o = small(1, 2);
    o.idle_timeout = 10s;
    o.overflow_ttl = 60s;
    harness h(o);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* base = h.try_lease();
    waiter_rec w1;
    h.checkout(w1);
    node_rec* ov = h.sink.spawned.at(0);
    h.connect(*ov);
    h.st.checkin(*ov, h.t, false, false);
    h.st.checkin(*base, h.t, false, false);
    h.t += 10s;
    h.st.tick(h.t);
    // Both idle for 10 s; one closes (2 open > size 1), then the rule stops.
    CHECK(h.st.count(node_status::closing) == 1);
    CHECK(h.st.count(node_status::idle) == 1);
}

TEST_CASE("drain: no new leases, waiters failed, idle closed, leased closed at checkin") {
    harness h(small(2, 0));
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* a = h.try_lease();
    node_rec* b = h.try_lease();
    waiter_rec w;
    h.checkout(w);
    h.st.checkin(*b, h.t, false, false);  // handed to w
    REQUIRE(h.sink.completed.size() == 1);
    h.st.drain(h.t, h.t + 10s);
    waiter_rec w2;
    CHECK(h.checkout(w2).ec == errc::pool_closed);
    h.st.checkin(*a, h.t, false, false);
    CHECK(str(h.next(*a)) == "close");
    CHECK(str(h.next(*a)) == "exit");
    CHECK_FALSE(h.sink.drained_called);
    h.st.checkin(*b, h.t, false, false);
    CHECK(str(h.next(*b)) == "close");
    CHECK(str(h.next(*b)) == "exit");
    CHECK(h.sink.drained_called);
    CHECK_FALSE(h.sink.drained_ec);
}

TEST_CASE("drain deadline aborts leases still out") {
    harness h(small(2, 0));
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* a = h.try_lease();
    h.st.drain(h.t, h.t + 1s);
    // The idle one closes now.
    CHECK(h.st.count(node_status::closing) == 1);
    h.t += 1s;
    h.st.tick(h.t);
    REQUIRE(h.sink.aborted.size() == 1);
    CHECK(h.sink.aborted[0] == a);
    CHECK(h.sink.drained_called);
    CHECK(h.sink.drained_ec == errc::operation_timeout);
    h.st.checkin(*a, h.t, false, false);
    CHECK(str(h.next(*a)) == "close");
    CHECK(str(h.next(*a)) == "exit");
}

TEST_CASE("drain with workers still connecting or backing off") {
    auto o = small(2, 0);
    harness h(o);
    h.st.start(h.t);
    node_rec* a = h.sink.spawned.at(0);
    node_rec* b = h.sink.spawned.at(1);
    CHECK(str(h.next(*a)) == "connect");
    CHECK(str(h.next(*b)) == "wait");  // at the gate: the endpoint's first connect goes alone
    h.st.drain(h.t, h.t + 5s);
    CHECK(str(h.next(*b)) == "exit");       // woken from the gate
    CHECK(str(h.next(*a)) == "close");      // connected during the drain
    CHECK(str(h.next(*a)) == "exit");
    CHECK(h.sink.drained_called);
    CHECK(h.st.total() == 0);
}

TEST_CASE("adapter exceptions are counted and reported") {
    harness h(small(1, 0));
    h.st.start(h.t);
    node_rec* n = h.sink.spawned.at(0);
    h.next(*n);
    h.st.note_adapter_exception(*n);
    CHECK(str(h.next(*n, errc::adapter_exception)) == "wait");  // backoff, then restart
    CHECK(h.st.snapshot().adapter_exceptions == 1);
    CHECK(h.has_event("adapter_exception"));
}

namespace {
struct counting_permits final : permit_source {
    std::size_t limit, used = 0;
    explicit counting_permits(std::size_t l) : limit(l) {}
    bool try_acquire(void*) override {
        if (used >= limit) return false;
        ++used;
        return true;
    }
    void release(void*) override { --used; }
};
}  // namespace

TEST_CASE("a global permit source caps growth; a released permit resumes it") {
    counting_permits permits(2);
    harness h(small(1, 5));
    h.st.set_permit_source(&permits, nullptr);
    h.st.start(h.t);
    h.connect_all_spawned();
    node_rec* base = h.try_lease();
    waiter_rec w1, w2, w3;
    h.checkout(w1);
    h.checkout(w2);
    h.checkout(w3);
    CHECK(h.st.total() == 2);  // 1 base + 1 overflow, then refused
    CHECK(permits.used == 2);
    permits.limit = 3;
    h.st.on_permit_available(h.t);
    CHECK(h.st.total() == 3);
    (void)base;
}

TEST_CASE("snapshot gauges follow the statuses") {
    harness h(small(2, 1));
    h.st.start(h.t);
    h.connect_all_spawned();
    auto* n = h.try_lease();
    (void)n;
    auto s = h.st.snapshot();
    CHECK(s.idle == 1);
    CHECK(s.leased == 1);
    CHECK(s.connecting == 0);
    CHECK(s.size == 2);
    CHECK(s.max_overflow == 1);
    CHECK(s.connects_ok == 2);
    CHECK(s.connect_time.count == 2);
    h.check_counts();
}

}  // TEST_SUITE
