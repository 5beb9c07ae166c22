// The pool's decisions. No I/O here: see pool_state.hpp.
#include <netpool/detail/pool_state.hpp>

#include <algorithm>
#include <cassert>
#include <cmath>

namespace netpool::detail {

namespace {
constexpr std::size_t idx(node_status s) noexcept { return static_cast<std::size_t>(s); }
constexpr std::size_t idx(checkout_result r) noexcept { return static_cast<std::size_t>(r); }
constexpr std::size_t idx(close_reason r) noexcept { return static_cast<std::size_t>(r); }
}  // namespace

const char* to_string(node_status s) noexcept {
    switch (s) {
    case node_status::starting: return "starting";
    case node_status::connecting: return "connecting";
    case node_status::parked: return "parked";
    case node_status::idle: return "idle";
    case node_status::leased: return "leased";
    case node_status::checking: return "checking";
    case node_status::resetting: return "resetting";
    case node_status::closing: return "closing";
    }
    return "?";
}

const char* to_string(action_kind a) noexcept {
    switch (a) {
    case action_kind::connect: return "connect";
    case action_kind::wait: return "wait";
    case action_kind::health_check: return "health_check";
    case action_kind::reset: return "reset";
    case action_kind::close: return "close";
    case action_kind::exit: return "exit";
    }
    return "?";
}

pool_state::pool_state(pool_options opts, std::string name, io_sink& sink, std::uint64_t seed)
    : opts_(std::move(opts)), name_(std::move(name)), sink_(sink), rng_(seed ? seed : 1) {
    opts_.validate();
    // Durations saturate: anything beyond a century means "never" and is held at a century,
    // so every sum of a time point and an option stays in the clock's range.
    for (duration* d : {&opts_.overflow_ttl, &opts_.checkout_timeout, &opts_.connect_timeout, &opts_.handshake_timeout,
                        &opts_.close_timeout, &opts_.reset_timeout, &opts_.health_check_timeout,
                        &opts_.health_check_after_idle, &opts_.keepalive_interval, &opts_.idle_timeout,
                        &opts_.max_lifetime, &opts_.lease_deadline, &opts_.backoff_initial, &opts_.backoff_max,
                        &opts_.restart_period, &opts_.down_cooldown})
        *d = saturate(*d);
    idle_timers_ = opts_.max_lifetime.count() > 0 || opts_.overflow_ttl.count() > 0 || opts_.idle_timeout.count() > 0 ||
                   opts_.keepalive_interval.count() > 0;
}

pool_state::~pool_state() {
    // Nodes still here were never freed (their workers were destroyed with an io_context
    // that stopped first): their permits go back all the same.
    if (permits_)
        for (auto& n : nodes_)
            if (n->has_permit) permits_->release(permit_requester_);
}

// ---------------------------------------------------------------------------------------
// Bookkeeping: the only place a node's status changes, keeping counts and lists in step.

void pool_state::set_status(node_rec& n, node_status s) {
    if (node_list* l = list_of(n.status)) list_remove(*l, n);
    --counts_[idx(n.status)];
    ++counts_[idx(s)];
    n.status = s;
    if (s == node_status::idle) list_push_front(idle_, n);
    else if (s == node_status::parked) list_push_back(parked_, n);
}

pool_state::node_list* pool_state::list_of(node_status s) noexcept {
    if (s == node_status::idle) return &idle_;
    if (s == node_status::parked) return &parked_;
    return nullptr;
}

void pool_state::list_push_front(node_list& l, node_rec& n) {
    n.prev = nullptr;
    n.next = l.head;
    if (l.head) l.head->prev = &n;
    l.head = &n;
    if (!l.tail) l.tail = &n;
}

void pool_state::list_push_back(node_list& l, node_rec& n) {
    n.next = nullptr;
    n.prev = l.tail;
    if (l.tail) l.tail->next = &n;
    l.tail = &n;
    if (!l.head) l.head = &n;
}

void pool_state::list_remove(node_list& l, node_rec& n) {
    if (n.prev) n.prev->next = n.next; else l.head = n.next;
    if (n.next) n.next->prev = n.prev; else l.tail = n.prev;
    n.prev = n.next = nullptr;
}

node_rec* pool_state::idle_peek() const noexcept {
    return opts_.order == idle_order::lifo ? idle_.head : idle_.tail;
}

node_rec* pool_state::idle_after(const node_rec& n) const noexcept {
    return opts_.order == idle_order::lifo ? n.next : n.prev;
}

bool pool_state::due_for_check(const node_rec& n, time_point now) const noexcept {
    return opts_.health_check_after_idle.count() > 0 && now - n.last_activity >= opts_.health_check_after_idle;
}

void pool_state::waiter_push(waiter_rec& w) {
    w.next = nullptr;
    w.prev = wait_tail_;
    if (wait_tail_) wait_tail_->next = &w; else wait_head_ = &w;
    wait_tail_ = &w;
    w.queued = true;
    ++waiter_count_;
}

void pool_state::waiter_remove(waiter_rec& w) {
    if (w.prev) w.prev->next = w.next; else wait_head_ = w.next;
    if (w.next) w.next->prev = w.prev; else wait_tail_ = w.prev;
    w.prev = w.next = nullptr;
    w.queued = false;
    --waiter_count_;
}

waiter_rec* pool_state::pop_live_waiter(time_point now) {
    // Direct handoff goes to the oldest waiter still wanting a connection; one whose
    // deadline passed is failed here even if its timer has not fired yet.
    while (wait_head_) {
        waiter_rec* w = wait_head_;
        waiter_remove(*w);
        if (w->deadline <= now) {
            ++checkouts_[idx(checkout_result::timeout)];
            emit(event_kind::waiter_timeout, nullptr, errc::checkout_timeout, close_reason::broken, now - w->enqueued);
            sink_.complete(*w, nullptr, errc::checkout_timeout);
            continue;
        }
        return w;
    }
    return nullptr;
}

void pool_state::fail_all_waiters(std::error_code ec, checkout_result r, time_point /*now*/) {
    while (wait_head_) {
        waiter_rec* w = wait_head_;
        waiter_remove(*w);
        ++checkouts_[idx(r)];
        sink_.complete(*w, nullptr, ec);
    }
}

void pool_state::serve_waiters(time_point now) {
    // Idle connections and waiters never coexist for long: good ones go to waiters at once,
    // and as many of those due for a check as there are waiters not already covered by a
    // check or reset in progress are checked now, in parallel (each goes to the head of the
    // queue when its check passes).
    for (node_rec* n = idle_peek(); n && wait_head_;) {
        node_rec* after = idle_after(*n);
        if (now >= n->expires_at) {
            command_close(*n, close_reason::lifetime);
        } else if (!due_for_check(*n, now)) {
            if (waiter_rec* w = pop_live_waiter(now)) {
                lease_to(*n, now);
                checkout_wait_.record(now - w->enqueued);
                ++checkouts_[idx(checkout_result::ok)];
                sink_.complete(*w, n, {});
            }
        }
        n = after;
    }
    while (waiter_count_ > count(node_status::checking) + count(node_status::resetting)) {
        node_rec* n = idle_peek();
        if (!n) break;
        if (now >= n->expires_at) command_close(*n, close_reason::lifetime);
        else command(*n, node_cmd::check, now);
    }
}

// ---------------------------------------------------------------------------------------
// Nodes.

node_rec* pool_state::spawn_with_permit() {
    if (total_ >= capacity()) return nullptr;
    if (permits_ && !permits_->try_acquire(permit_requester_)) return nullptr;
    auto owned = std::make_unique<node_rec>();
    node_rec& n = *owned;
    n.id = next_id_++;
    n.overflow = total_ >= opts_.size;
    n.has_permit = permits_ != nullptr;
    n.status = node_status::starting;
    ++counts_[idx(node_status::starting)];
    ++total_;
    nodes_.push_back(std::move(owned));
    sink_.spawn(n);
    return &n;
}

void pool_state::free_node(node_rec& n, time_point now) {
    if (node_list* l = list_of(n.status)) list_remove(*l, n);
    --counts_[idx(n.status)];
    --total_;
    const bool had_permit = n.has_permit;
    auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& p) { return p.get() == &n; });
    assert(it != nodes_.end());
    std::swap(*it, nodes_.back());
    nodes_.pop_back();  // n is gone from here on
    if (had_permit && permits_) permits_->release(permit_requester_);
    if (!closing_) {
        grow(now);
        pump_gate(now);  // a probe may need a worker now
    }
    check_drained();
}

void pool_state::grow(time_point now) {
    if (down_ || closing_) return;
    // Connections on their way to becoming free count as supply, so a burst of waiters
    // does not spawn more workers than it needs.
    std::size_t supply = count(node_status::starting) + count(node_status::connecting) + count(node_status::parked) +
                         count(node_status::checking) + count(node_status::resetting);
    while (waiter_count_ > supply) {
        if (!spawn_with_permit()) return;  // at capacity, or refused: on_permit_available() resumes
        ++supply;
    }
    (void)now;
}

void pool_state::on_permit_available(time_point now) {
    if (closing_) return;
    // Base workers refused at start take their permits first.
    if (!opts_.lazy) {
        while (total_ < opts_.size)
            if (!spawn_with_permit()) return;
    }
    grow(now);
    pump_gate(now);
}

bool pool_state::shed_idle(time_point /*now*/) {
    node_rec* n = idle_.tail;  // the coldest
    if (!n || closing_) return false;
    command_close(*n, close_reason::idle);
    n->exit_after_close = true;
    return true;
}

void pool_state::start(time_point /*now*/) {
    if (opts_.lazy) return;
    while (total_ < opts_.size)
        if (!spawn_with_permit()) return;
}

time_point pool_state::compute_expiry(time_point opened) {
    if (opts_.max_lifetime.count() == 0) return never;
    // Jitter spreads the retirements of connections opened together.
    const auto life = std::chrono::duration_cast<clock::duration>(opts_.max_lifetime);
    const auto cut = std::chrono::duration_cast<clock::duration>(life * (opts_.lifetime_jitter * random01()));
    return opened + life - cut;
}

double pool_state::random01() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return static_cast<double>((rng_ * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

void pool_state::emit(event_kind k, const node_rec* n, std::error_code ec, close_reason r, clock::duration elapsed) {
    if (!hook_) return;
    event e{k, name_, n ? n->id : 0, ec, r, std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed)};
    hook_(e);
}

void pool_state::due(time_point t) {
    if (t < armed_) {
        armed_ = t;
        sink_.arm(t);
    }
}

// ---------------------------------------------------------------------------------------
// Commands to workers. order() decides (the status changes now, so counts and lists are
// right at once); command() also wakes the worker when it is waiting. A node told to exit
// takes no other order.

void pool_state::order(node_rec& n, node_cmd cmd, time_point now) {
    if (n.pending == node_cmd::exit) return;
    switch (cmd) {
    case node_cmd::connect:
        set_status(n, node_status::connecting);
        n.connect_started = now;
        n.connect_gen = gen_;
        ++gen_in_flight_;
        break;
    case node_cmd::check: set_status(n, node_status::checking); break;
    case node_cmd::reset: set_status(n, node_status::resetting); break;
    case node_cmd::close: set_status(n, node_status::closing); break;
    case node_cmd::exit:
    case node_cmd::none: break;
    }
    n.pending = cmd;
}

void pool_state::command(node_rec& n, node_cmd cmd, time_point now) {
    order(n, cmd, now);
    sink_.wake(n);
}

void pool_state::begin_close(node_rec& n, close_reason r) {
    n.closing_reason = r;
    n.exit_after_close = closing_ || r == close_reason::overflow || r == close_reason::idle ||
                         r == close_reason::drain;
    set_status(n, node_status::closing);
    n.pending = node_cmd::close;
}

void pool_state::command_close(node_rec& n, close_reason r) {
    begin_close(n, r);
    sink_.wake(n);
}

action pool_state::take(node_rec& n, time_point now) {
    const node_cmd cmd = n.pending;
    n.pending = node_cmd::none;
    switch (cmd) {
    case node_cmd::connect: return {action_kind::connect};
    case node_cmd::check: return {action_kind::health_check};
    case node_cmd::reset: return {action_kind::reset};
    case node_cmd::close: return {action_kind::close};
    case node_cmd::exit: free_node(n, now); return {action_kind::exit};
    case node_cmd::none: break;
    }
    return resume_wait(n, now);
}

action pool_state::finish(node_rec& n, time_point now) {
    return n.pending != node_cmd::none ? take(n, now) : resume_wait(n, now);
}

action pool_state::resume_wait(node_rec& n, time_point now) {
    if (n.status == node_status::starting) return want_connect(n, now);
    return {action_kind::wait};
}

// ---------------------------------------------------------------------------------------
// Worker protocol.

action pool_state::next(node_rec& n, std::error_code result, time_point now) {
    if (n.pending != node_cmd::none) return take(n, now);  // woken with a command
    switch (n.status) {
    case node_status::connecting:
        return result ? connect_failed(n, result, now) : connected(n, now);
    case node_status::checking:
        if (result) {
            ++checks_failed_;
            begin_close(n, close_reason::health);
            return take(n, now);
        }
        n.last_activity = now;
        make_available(n, now);
        return finish(n, now);
    case node_status::resetting:
        if (result) {
            begin_close(n, close_reason::broken);
            return take(n, now);
        }
        make_available(n, now);
        return finish(n, now);
    case node_status::closing:
        ++closes_[idx(n.closing_reason)];
        emit(event_kind::closed, &n, result, n.closing_reason);
        return after_close(n, now);
    default:
        return resume_wait(n, now);  // a wake with nothing to do, or a timer
    }
}

void pool_state::note_adapter_exception(node_rec& n) {
    ++adapter_exceptions_;
    emit(event_kind::adapter_exception, &n, errc::adapter_exception);
}

action pool_state::after_close(node_rec& n, time_point now) {
    // A replaced base worker reconnects: the old connection broke or aged, the endpoint did
    // not fail. Overflow workers come back only if someone waits.
    if (closing_ || n.exit_after_close || (n.overflow && waiter_count_ == 0) || total_ > capacity()) {
        free_node(n, now);
        return {action_kind::exit};
    }
    if (n.closing_reason == close_reason::broken || n.closing_reason == close_reason::health ||
        n.closing_reason == close_reason::overdue)
        note_break(now);
    return want_connect(n, now);
}

// ---------------------------------------------------------------------------------------
// Supervision: the connect gate (see the fields' comment in pool_state.hpp).

action pool_state::want_connect(node_rec& n, time_point now) {
    if (closing_) {
        free_node(n, now);
        return {action_kind::exit};
    }
    set_status(n, node_status::parked);
    pump_gate(now, &n);
    return finish(n, now);  // connect if admitted; else wait until pump_gate wakes it
}

void pool_state::pump_gate(time_point now, node_rec* self) {
    if (closing_) return;
    while (parked_.head) {
        if (now < next_attempt_at_) {
            due(next_attempt_at_);
            return;
        }
        if (gen_in_flight_ >= allowed_) {
            // Attempts in flight report first; but one that hangs (a server that accepts and
            // never answers: it reports only at connect_timeout or handshake_timeout) must
            // not hold the gate: while recovering, one more is admitted per backoff step.
            if (!recovering_) return;
            if (now < stalled_at_) {
                due(stalled_at_);
                return;
            }
        }
        node_rec& n = *parked_.head;
        if (&n == self) order(n, node_cmd::connect, now);
        else command(n, node_cmd::connect, now);
        if (recovering_) stalled_at_ = now + retry_delay(now);
    }
    // Down with no worker left to probe with (overflow workers exit when down): open one.
    // If the cap refuses, on_permit_available() comes back here; no timer is needed.
    if (down_ && count(node_status::starting) == 0 && count(node_status::connecting) == 0) {
        if (now < next_attempt_at_) due(next_attempt_at_);
        else spawn_with_permit();
    }
}

void pool_state::connect_done(node_rec& n) noexcept {
    if (n.connect_gen == gen_ && gen_in_flight_ > 0) --gen_in_flight_;
}

void pool_state::note_break(time_point now) {
    // Two connections found broken within backoff_initial of each other: suspect the
    // endpoint, and send their reconnects through the slow-start ramp, one at first.
    if (last_break_ != time_point{} && now - last_break_ < opts_.backoff_initial) {
        if (!recovering_) {
            recovering_ = true;
            episode_start_ = now;
        }
        allowed_ = 1;
    }
    last_break_ = now;
}

clock::duration pool_state::retry_delay(time_point now) {
    // A quarter of the episode's age would let a 2 s outage end up to 0.5 s before service
    // resumes; an eighth keeps that to about 0.25 s while the attempts stay few (about 30
    // in the first 10 s, then at most one per backoff_max, or per down_cooldown while down).
    using ms = std::chrono::duration<double, std::milli>;
    const double age = ms(now - episode_start_).count();
    double cap = static_cast<double>(opts_.backoff_max.count());
    if (down_) cap = std::min(cap, static_cast<double>(opts_.down_cooldown.count()));
    const double lo = std::min(static_cast<double>(opts_.backoff_initial.count()), cap);
    const double base = std::clamp(age / 8.0, lo, cap);
    const double d = base * (1.0 - opts_.backoff_jitter * random01());
    return std::chrono::duration_cast<clock::duration>(ms(d));
}

action pool_state::connected(node_rec& n, time_point now) {
    connect_done(n);
    ++connects_ok_;
    connect_time_.record(now - n.connect_started);
    n.uses = 0;
    n.overdue_reported = false;
    n.expires_at = compute_expiry(now);
    emit(event_kind::created, &n, {}, close_reason::broken, now - n.connect_started);
    next_attempt_at_ = time_point::min();  // the endpoint answers: nobody waits for a backoff
    if (recovering_) allowed_ = allowed_ > capacity() ? allowed_ : allowed_ * 2;
    if (down_) go_up(now);
    make_available(n, now);
    pump_gate(now);
    if (recovering_ && !parked_.head) {  // nobody left at the gate: the episode is over
        recovering_ = false;
        allowed_ = static_cast<std::size_t>(-1);
    }
    return finish(n, now);
}

action pool_state::connect_failed(node_rec& n, std::error_code ec, time_point now) {
    connect_done(n);
    ++connects_failed_;
    last_cause_ = ec;
    connect_time_.record(now - n.connect_started);
    emit(event_kind::connect_failed, &n, ec, close_reason::broken, now - n.connect_started);
    if (closing_) {
        free_node(n, now);
        return {action_kind::exit};
    }
    // Counted only if no other failure was counted since this attempt began: connections
    // that fail together are one failure (OTP counts a child's restarts, not its siblings').
    if (n.connect_gen == gen_) {
        ++gen_;
        gen_in_flight_ = 0;
        if (!recovering_) {
            recovering_ = true;
            episode_start_ = now;
        }
        allowed_ = 1;
        failures_.push_back(now);
        while (!failures_.empty() && now - failures_.front() >= opts_.restart_period) failures_.pop_front();
        // A certificate that does not verify will not verify on the next attempt either:
        // down at once, and probed no faster than down_cooldown. (A refused login is not
        // treated so here: an adapter may legitimately try again with a refreshed token.)
        const bool certificate = ec == errc::tls_verify_failed;
        if (!down_ && (certificate || failures_.size() > opts_.max_restarts)) go_down(ec, now);
        next_attempt_at_ = certificate ? later(now, opts_.down_cooldown) : now + retry_delay(now);
    }
    if (n.overflow && (down_ || waiter_count_ == 0)) {
        free_node(n, now);
        return {action_kind::exit};
    }
    return want_connect(n, now);
}

void pool_state::go_down(std::error_code cause, time_point now) {
    down_ = true;
    emit(event_kind::endpoint_down, nullptr, cause);
    fail_all_waiters(errc(endpoint_down_for(cause)), checkout_result::endpoint_down, now);
}

void pool_state::go_up(time_point now) {
    down_ = false;
    failures_.clear();
    emit(event_kind::endpoint_up, nullptr);
    if (closing_) return;
    // Parked workers are admitted by the gate's ramp (pump_gate), not all at once.
    if (!opts_.lazy) on_permit_available(now);  // replace base workers that exited
    grow(now);
}

pool_state::avail pool_state::make_available(node_rec& n, time_point now) {
    if (closing_) {
        begin_close(n, close_reason::drain);
        return avail::closing;
    }
    if (now >= n.expires_at) {
        begin_close(n, close_reason::lifetime);
        return avail::closing;
    }
    if (waiter_rec* w = pop_live_waiter(now)) {
        lease_to(n, now);
        checkout_wait_.record(now - w->enqueued);
        ++checkouts_[idx(checkout_result::ok)];
        sink_.complete(*w, &n, {});
        return avail::leased;
    }
    if (n.overflow && opts_.overflow_ttl.count() == 0) {
        begin_close(n, close_reason::overflow);
        return avail::closing;
    }
    // Another pool under the registry's cap waits for a permit this pool holds beyond its
    // fair share: give the connection back instead of keeping it idle.
    if (n.has_permit && permits_ && permits_->should_yield(permit_requester_)) {
        begin_close(n, close_reason::idle);
        return avail::closing;
    }
    n.last_activity = now;
    set_status(n, node_status::idle);
    if (idle_timers_) {
        if (time_point t = idle_due(n); t != never) due(t);
    }
    return avail::idled;
}

void pool_state::lease_to(node_rec& n, time_point now) {
    set_status(n, node_status::leased);
    ++n.uses;
    n.lease_start = now;
    n.overdue_reported = false;
    n.timed = ++lease_count_ % lease_sample_every == 0;
    emit(event_kind::checked_out, &n);
    if (opts_.lease_deadline.count() > 0) due(now + opts_.lease_deadline);
}

// ---------------------------------------------------------------------------------------
// Checkout and checkin.

node_rec* pool_state::try_lease(time_point now) {
    // Someone already waiting is served first: a newcomer never overtakes the queue.
    if (closing_ || waiter_count_ != 0) return nullptr;
    for (node_rec* n = idle_peek(); n;) {
        node_rec* after = idle_after(*n);
        if (now >= n->expires_at) {
            command_close(*n, close_reason::lifetime);
        } else if (!due_for_check(*n, now)) {
            lease_to(*n, now);
            ++checkouts_[idx(checkout_result::ok)];
            checkout_wait_.record_zero();
            return n;
        }
        n = after;  // due for a check: checkout() queues the caller and checks it
    }
    return nullptr;
}

checkout_outcome pool_state::checkout(waiter_rec* w, time_point now, time_point deadline) {
    if (closing_) {
        ++checkouts_[idx(checkout_result::closed)];
        return {nullptr, errc::pool_closed, false};
    }
    if (node_rec* n = try_lease(now)) return {n, {}, false};
    if (down_) {
        ++checkouts_[idx(checkout_result::endpoint_down)];
        return {nullptr, errc(endpoint_down_for(last_cause_)), false};
    }
    if (!w) {
        // try_checkout: nothing free now. Check an idle connection due for it, or start a
        // worker if none is on its way, so a later try can succeed.
        if (count(node_status::checking) == 0) {
            if (node_rec* n = idle_peek()) command(*n, node_cmd::check, now);
        }
        if (count(node_status::starting) + count(node_status::connecting) + count(node_status::parked) +
                count(node_status::checking) == 0)
            spawn_with_permit();
        ++checkouts_[idx(checkout_result::exhausted)];
        return {nullptr, errc::pool_exhausted, false};
    }
    if (opts_.max_waiters > 0 && waiter_count_ >= opts_.max_waiters) {
        ++checkouts_[idx(checkout_result::exhausted)];
        return {nullptr, errc::pool_exhausted, false};
    }
    w->deadline = deadline;
    w->enqueued = now;
    waiter_push(*w);
    if (deadline != never) due(deadline);
    serve_waiters(now);
    grow(now);
    return {nullptr, {}, true};
}

bool pool_state::cancel(waiter_rec& w, time_point /*now*/) {
    if (!w.queued) return false;
    waiter_remove(w);
    ++checkouts_[idx(checkout_result::cancelled)];
    return true;
}

void pool_state::checkin(node_rec& n, time_point now, bool discard, bool reset,
                         std::optional<clock::duration> measured) {
    assert(n.status == node_status::leased);
    const auto held = now - n.lease_start;
    if (measured) lease_time_.record(*measured);
    emit(discard ? event_kind::discarded : event_kind::checked_in, &n, {}, close_reason::broken, held);
    n.last_activity = now;
    const bool overdue = opts_.lease_deadline.count() > 0 && held >= opts_.lease_deadline;
    if (overdue && !n.overdue_reported) {
        n.overdue_reported = true;
        ++overdue_;
        emit(event_kind::lease_overdue, &n, {}, close_reason::broken, held);
    }
    if (discard) return command_close(n, close_reason::broken);
    // An overdue lease may have been abandoned mid-exchange: its state is unknown.
    if (n.overdue_reported) return command_close(n, close_reason::overdue);
    if (closing_) return command_close(n, close_reason::drain);
    if (opts_.max_uses > 0 && n.uses >= opts_.max_uses) return command_close(n, close_reason::max_uses);
    if (now >= n.expires_at) return command_close(n, close_reason::lifetime);
    if (reset) return command(n, node_cmd::reset, now);
    if (make_available(n, now) == avail::closing) sink_.wake(n);
}

// ---------------------------------------------------------------------------------------
// Time.

time_point pool_state::idle_due(const node_rec& n) const {
    time_point t = n.expires_at;
    const auto since = n.last_activity;
    if (n.overflow && opts_.overflow_ttl.count() > 0) t = std::min(t, since + opts_.overflow_ttl);
    if (opts_.idle_timeout.count() > 0 && total_ - count(node_status::closing) > opts_.size)
        t = std::min(t, since + opts_.idle_timeout);
    if (opts_.keepalive_interval.count() > 0) t = std::min(t, since + opts_.keepalive_interval);
    return t;
}

void pool_state::tick(time_point now) {
    armed_ = never;

    // Waiters past their deadline.
    for (waiter_rec* w = wait_head_; w;) {
        waiter_rec* nx = w->next;
        if (w->deadline <= now) {
            waiter_remove(*w);
            ++checkouts_[idx(checkout_result::timeout)];
            emit(event_kind::waiter_timeout, nullptr, errc::checkout_timeout, close_reason::broken, now - w->enqueued);
            sink_.complete(*w, nullptr, errc::checkout_timeout);
        }
        w = nx;
    }

    // Drain deadline: leases still out are aborted (their sockets closed under them).
    if (closing_ && !aborted_ && now >= drain_deadline_) {
        aborted_ = true;
        for (auto& p : nodes_)
            if (p->status == node_status::leased) sink_.abort_lease(*p);
        // The drain ends at its deadline; aborted leases are closed when their holders
        // return them.
        if (total_ > 0 && !drained_sent_) {
            drained_sent_ = true;
            sink_.drained(errc::operation_timeout);
        }
    }

    // The connect gate: a backoff ended, or a probe is due.
    pump_gate(now);

    // Idle and leased nodes. Commands may reorder nodes_ (never remove).
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        node_rec& n = *nodes_[i];
        if (n.status == node_status::idle) {
            const auto idle_for = now - n.last_activity;
            if (now >= n.expires_at) {
                command_close(n, close_reason::lifetime);
            } else if (n.overflow && opts_.overflow_ttl.count() > 0 && idle_for >= opts_.overflow_ttl) {
                command_close(n, close_reason::overflow);
            } else if (opts_.idle_timeout.count() > 0 && total_ - count(node_status::closing) > opts_.size &&
                       idle_for >= opts_.idle_timeout) {
                // Connections already closing do not count: never below the base size.
                command_close(n, close_reason::idle);
            } else if (opts_.keepalive_interval.count() > 0 && idle_for >= opts_.keepalive_interval) {
                command(n, node_cmd::check, now);
            }
        } else if (n.status == node_status::leased && opts_.lease_deadline.count() > 0 && !n.overdue_reported &&
                   now - n.lease_start >= opts_.lease_deadline) {
            n.overdue_reported = true;
            ++overdue_;
            emit(event_kind::lease_overdue, &n, {}, close_reason::broken, now - n.lease_start);
        }
    }

    // Next due time; only times still ahead (pump_gate arms the gate's own).
    time_point t = never;
    for (waiter_rec* w = wait_head_; w; w = w->next) t = std::min(t, w->deadline);
    if (closing_ && !aborted_) t = std::min(t, drain_deadline_);
    for (auto& p : nodes_) {
        if (p->status == node_status::idle) t = std::min(t, idle_due(*p));
        else if (p->status == node_status::leased && opts_.lease_deadline.count() > 0 && !p->overdue_reported)
            t = std::min(t, p->lease_start + opts_.lease_deadline);
    }
    if (t != never) due(t);
}

// ---------------------------------------------------------------------------------------
// Drain.

void pool_state::drain(time_point now, time_point deadline) {
    if (closing_) {
        if (deadline < drain_deadline_) {  // a tighter deadline (close() after drain())
            drain_deadline_ = deadline;
            due(deadline);
        }
        if (now >= drain_deadline_) tick(now);
        return;
    }
    closing_ = true;
    drain_deadline_ = deadline;
    fail_all_waiters(errc::pool_closed, checkout_result::closed, now);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        node_rec& n = *nodes_[i];
        switch (n.status) {
        case node_status::idle: command_close(n, close_reason::drain); break;
        case node_status::parked: command(n, node_cmd::exit, now); break;
        default: break;  // leased: at checkin; busy ones: when their step ends
        }
    }
    if (now >= deadline) tick(now);
    else if (deadline != never) due(deadline);
    check_drained();
}

void pool_state::check_drained() {
    if (closing_ && total_ == 0 && !drained_sent_) {
        drained_sent_ = true;
        sink_.drained(aborted_ ? std::error_code(errc::operation_timeout) : std::error_code());
    }
}

// ---------------------------------------------------------------------------------------

pool_stats pool_state::snapshot() const {
    pool_stats s;
    s.name = name_;
    s.idle = count(node_status::idle);
    s.leased = count(node_status::leased);
    s.connecting = count(node_status::starting) + count(node_status::connecting) + count(node_status::parked);
    s.busy = count(node_status::checking) + count(node_status::resetting) + count(node_status::closing);
    s.overflow = total_ > opts_.size ? total_ - opts_.size : 0;
    s.waiters = waiter_count_;
    s.size = opts_.size;
    s.max_overflow = opts_.max_overflow;
    s.endpoint_down = down_;
    s.draining = closing_;
    s.checkouts = checkouts_;
    s.closes = closes_;
    s.connects_ok = connects_ok_;
    s.connects_failed = connects_failed_;
    s.health_checks_failed = checks_failed_;
    s.leases_overdue = overdue_;
    s.adapter_exceptions = adapter_exceptions_;
    s.checkout_wait = checkout_wait_;
    s.connect_time = connect_time_;
    s.lease_time = lease_time_;
    return s;
}

}  // namespace netpool::detail
