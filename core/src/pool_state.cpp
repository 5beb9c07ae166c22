// The pool's transition function. No I/O here, and no rule of its own where a part owns it:
// see pool_state.hpp for the parts. This file is how an event (a checkout, a checkin, a
// worker's report, the timer, a drain) moves nodes between them.
//
// Longer than the 400 lines we aim for, on purpose: what remains is one transition
// function, and its handlers call each other (a checkin hands over to a waiter, a failed
// connect fails the waiters, a freed node grows the pool and pumps the gate). Splitting them
// over files would scatter one state machine; the rules they apply live in the parts.
#include <netpool/detail/pool_state.hpp>

#include <algorithm>
#include <cassert>
#include <utility>

namespace netpool::detail {

namespace {
constexpr std::size_t idx(checkout_result r) noexcept { return static_cast<std::size_t>(r); }
constexpr std::size_t idx(close_reason r) noexcept { return static_cast<std::size_t>(r); }
}  // namespace

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

pool_options pool_state::prepared(pool_options o) {
    o.validate();
    // Durations saturate: anything beyond a century means "never" and is held at a century,
    // so every sum of a time point and an option stays in the clock's range.
    for (duration* d : {&o.overflow_ttl, &o.checkout_timeout, &o.connect_timeout, &o.handshake_timeout,
                        &o.close_timeout, &o.reset_timeout, &o.health_check_timeout, &o.health_check_after_idle,
                        &o.keepalive_interval, &o.idle_timeout, &o.max_lifetime, &o.lease_deadline,
                        &o.backoff_initial, &o.backoff_max, &o.restart_period, &o.down_cooldown})
        *d = saturate(*d);
    return o;
}

pool_state::pool_state(pool_options opts, std::string name, io_sink& sink, std::uint64_t seed)
    : opts_(prepared(std::move(opts))), name_(std::move(name)), sink_(sink), nodes_(opts_.order), retire_(opts_),
      rng_(seed), sup_(opts_, rng_) {}

pool_state::~pool_state() {
    // Nodes still here were never freed (their workers were destroyed with an io_context
    // that stopped first): their permits go back all the same.
    if (permits_)
        for (std::size_t i = 0; i < nodes_.total(); ++i)
            if (nodes_.at(i).has_permit) permits_->release(permit_requester_);
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
// Waiting and handoff. Idle connections and waiters never coexist for long.

void pool_state::expire_waiter(waiter_rec& w, time_point now) {
    ++checkouts_[idx(checkout_result::timeout)];
    emit(event_kind::waiter_timeout, nullptr, errc::checkout_timeout, close_reason::broken, now - w.enqueued);
    sink_.complete(w, nullptr, errc::checkout_timeout);
}

waiter_rec* pool_state::pop_live_waiter(time_point now) {
    // Handoff goes to the oldest waiter still wanting a connection; one whose deadline
    // passed is failed here even if its timer has not fired yet.
    return waiting_.pop_live(now, [&](waiter_rec& w) { expire_waiter(w, now); });
}

void pool_state::fail_all_waiters(std::error_code ec, checkout_result r) {
    while (waiter_rec* w = waiting_.pop()) {
        ++checkouts_[idx(r)];
        sink_.complete(*w, nullptr, ec);
    }
}

void pool_state::hand_over(waiter_rec& w, node_rec& n, time_point now) {
    lease_to(n, now);
    checkout_wait_.record(now - w.enqueued);
    ++checkouts_[idx(checkout_result::ok)];
    sink_.complete(w, &n, {});
}

void pool_state::serve_waiters(time_point now) {
    // Good idle connections go to waiters at once; as many of those due for a check as there
    // are waiters not already covered by a check or reset in progress are checked now, in
    // parallel (each goes to the head of the queue when its check passes).
    for (node_rec* n = nodes_.idle_first(); n && !waiting_.empty();) {
        node_rec* after = nodes_.idle_after(*n);
        if (retirement_policy::expired(*n, now)) {
            command_close(*n, close_reason::lifetime);
        } else if (!retire_.due_for_check(*n, now)) {
            if (waiter_rec* w = pop_live_waiter(now)) hand_over(*w, *n, now);
        }
        n = after;
    }
    while (waiting_.size() > count(node_status::checking) + count(node_status::resetting)) {
        node_rec* n = nodes_.idle_first();
        if (!n) break;
        if (retirement_policy::expired(*n, now)) command_close(*n, close_reason::lifetime);
        else command(*n, node_cmd::check, now);
    }
}

void pool_state::lease_to(node_rec& n, time_point now) {
    nodes_.set_status(n, node_status::leased);
    ++n.uses;
    n.lease_start = now;
    n.overdue_reported = false;
    n.timed = ++lease_count_ % lease_sample_every == 0;
    emit(event_kind::checked_out, &n);
    if (time_point t = retire_.lease_due(n); t != never) due(t);
}

pool_state::avail pool_state::make_available(node_rec& n, time_point now) {
    if (closing_) {
        begin_close(n, close_reason::drain);
        return avail::closing;
    }
    if (retirement_policy::expired(n, now)) {
        begin_close(n, close_reason::lifetime);
        return avail::closing;
    }
    if (waiter_rec* w = pop_live_waiter(now)) {
        hand_over(*w, n, now);
        return avail::leased;
    }
    if (auto why = retire_.instead_of_idle(n, now)) {
        begin_close(n, *why);
        return avail::closing;
    }
    // Another pool under the registry's cap waits for a permit this pool holds beyond its
    // fair share: give the connection back instead of keeping it idle.
    if (n.has_permit && permits_ && permits_->should_yield(permit_requester_)) {
        begin_close(n, close_reason::idle);
        return avail::closing;
    }
    n.last_activity = now;
    nodes_.set_status(n, node_status::idle);
    if (retire_.idle_timers()) {
        if (time_point t = retire_.idle_due(n, nodes_.open()); t != never) due(t);
    }
    return avail::idled;
}

// ---------------------------------------------------------------------------------------
// Growth. Every new node is made here, under a permit of the registry's cap.

node_rec* pool_state::spawn_with_permit() {
    if (total() >= capacity()) return nullptr;
    if (permits_ && !permits_->try_acquire(permit_requester_)) return nullptr;  // on_permit_available resumes
    node_rec& n = nodes_.add(total() >= opts_.size);
    n.has_permit = permits_ != nullptr;
    sink_.spawn(n);
    return &n;
}

void pool_state::free_node(node_rec& n, time_point now) {
    const bool had_permit = n.has_permit;
    nodes_.remove(n);  // n is gone from here on
    if (had_permit && permits_) permits_->release(permit_requester_);
    if (!closing_) {
        grow(now);
        pump_gate(now);  // a probe may need a worker now
    }
    check_drained();
}

void pool_state::grow(time_point /*now*/) {
    if (sup_.down() || closing_) return;
    // Connections on their way to becoming free count as supply, so a burst of waiters does
    // not spawn more workers than it needs.
    for (std::size_t supply = nodes_.on_the_way(); waiting_.size() > supply; ++supply)
        if (!spawn_with_permit()) return;
}

void pool_state::start(time_point /*now*/) {
    if (opts_.lazy) return;
    while (total() < opts_.size)
        if (!spawn_with_permit()) return;
}

void pool_state::on_permit_available(time_point now) {
    if (closing_) return;
    start(now);  // base workers refused at start take their permits first
    grow(now);
    pump_gate(now);
}

bool pool_state::shed_idle(time_point /*now*/) {
    node_rec* n = nodes_.coldest_idle();
    if (!n || closing_) return false;
    command_close(*n, close_reason::idle);
    n->exit_after_close = true;
    return true;
}

// ---------------------------------------------------------------------------------------
// Commands to workers. order() decides (the status changes now, so counts and lists are
// right at once); command() also wakes the worker when it is waiting. A node told to exit
// takes no other order.

void pool_state::order(node_rec& n, node_cmd cmd, time_point now) {
    if (n.pending == node_cmd::exit) return;
    switch (cmd) {
    case node_cmd::connect:
        nodes_.set_status(n, node_status::connecting);
        n.connect_started = now;
        n.connect_gen = sup_.attempt_started();
        break;
    case node_cmd::check: nodes_.set_status(n, node_status::checking); break;
    case node_cmd::reset: nodes_.set_status(n, node_status::resetting); break;
    case node_cmd::close: nodes_.set_status(n, node_status::closing); break;
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
    n.exit_after_close = closing_ || retirement_policy::for_good(r);
    nodes_.set_status(n, node_status::closing);
    n.pending = node_cmd::close;
}

void pool_state::command_close(node_rec& n, close_reason r) {
    begin_close(n, r);
    sink_.wake(n);
}

action pool_state::take(node_rec& n, time_point now) {
    const node_cmd cmd = std::exchange(n.pending, node_cmd::none);
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
    if (closing_ || n.exit_after_close || retirement_policy::overflow_leaves(n, waiting_.size(), sup_.down()) ||
        total() > capacity()) {
        free_node(n, now);
        return {action_kind::exit};
    }
    if (retirement_policy::found_broken(n.closing_reason)) sup_.note_break(now);
    return want_connect(n, now);
}

// ---------------------------------------------------------------------------------------
// The connect gate: the supervisor decides, this admits the parked workers.

action pool_state::want_connect(node_rec& n, time_point now) {
    if (closing_) {
        free_node(n, now);
        return {action_kind::exit};
    }
    nodes_.set_status(n, node_status::parked);
    pump_gate(now, &n);
    return finish(n, now);  // connect if admitted; else wait until pump_gate wakes it
}

void pool_state::pump_gate(time_point now, node_rec* self) {
    if (closing_) return;
    while (node_rec* n = nodes_.first_parked()) {
        const auto a = sup_.may_admit(now);
        if (!a.admit) {
            if (a.ask_again != never) due(a.ask_again);
            return;
        }
        if (n == self) order(*n, node_cmd::connect, now);
        else command(*n, node_cmd::connect, now);
        sup_.admitted(now);
    }
    // Down with no worker left to probe with (overflow workers exit when down): open one.
    // If the cap refuses, on_permit_available() comes back here; no timer is needed.
    if (sup_.down() && count(node_status::starting) == 0 && count(node_status::connecting) == 0) {
        const auto p = sup_.may_probe(now);
        if (p.admit) spawn_with_permit();
        else if (p.ask_again != never) due(p.ask_again);
    }
}

action pool_state::connected(node_rec& n, time_point now) {
    sup_.attempt_ended(n.connect_gen);
    ++connects_ok_;
    connect_time_.record(now - n.connect_started);
    n.uses = 0;
    n.sat_idle = false;
    n.overdue_reported = false;
    n.expires_at = retire_.expiry(now, rng_);
    emit(event_kind::created, &n, {}, close_reason::broken, now - n.connect_started);
    if (sup_.connected()) go_up(now);
    make_available(n, now);
    pump_gate(now);
    sup_.settle(nodes_.first_parked() != nullptr);
    return finish(n, now);
}

action pool_state::connect_failed(node_rec& n, std::error_code ec, time_point now) {
    sup_.attempt_ended(n.connect_gen);
    sup_.note_cause(ec);
    ++connects_failed_;
    connect_time_.record(now - n.connect_started);
    emit(event_kind::connect_failed, &n, ec, close_reason::broken, now - n.connect_started);
    if (closing_) {
        free_node(n, now);
        return {action_kind::exit};
    }
    if (sup_.connect_failed(n.connect_gen, ec, now)) go_down(ec, now);
    if (retirement_policy::overflow_leaves(n, waiting_.size(), sup_.down())) {
        free_node(n, now);
        return {action_kind::exit};
    }
    return want_connect(n, now);
}

void pool_state::go_down(std::error_code cause, time_point /*now*/) {
    emit(event_kind::endpoint_down, nullptr, cause);
    fail_all_waiters(errc(endpoint_down_for(cause)), checkout_result::endpoint_down);
}

void pool_state::go_up(time_point now) {
    emit(event_kind::endpoint_up, nullptr);
    if (closing_) return;
    // Parked workers are admitted by the gate's ramp (pump_gate), not all at once.
    on_permit_available(now);  // replace base workers that exited
}

// ---------------------------------------------------------------------------------------
// Checkout and checkin.

node_rec* pool_state::try_lease(time_point now) {
    // Someone already waiting is served first: a newcomer never overtakes the queue.
    if (closing_ || !waiting_.empty()) return nullptr;
    for (node_rec* n = nodes_.idle_first(); n;) {
        node_rec* after = nodes_.idle_after(*n);
        if (retirement_policy::expired(*n, now)) {
            command_close(*n, close_reason::lifetime);
        } else if (!retire_.due_for_check(*n, now)) {
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
    if (sup_.down()) {
        ++checkouts_[idx(checkout_result::endpoint_down)];
        return {nullptr, errc(endpoint_down_for(sup_.last_cause())), false};
    }
    if (!w) {
        // try_checkout: nothing free now. Check an idle connection due for it, or start a
        // worker if none is on its way, so a later try can succeed.
        if (count(node_status::checking) == 0) {
            if (node_rec* n = nodes_.idle_first()) command(*n, node_cmd::check, now);
        }
        if (count(node_status::starting) + count(node_status::connecting) + count(node_status::parked) +
                count(node_status::checking) == 0)
            spawn_with_permit();
        ++checkouts_[idx(checkout_result::exhausted)];
        return {nullptr, errc::pool_exhausted, false};
    }
    if (opts_.max_waiters > 0 && waiting_.size() >= opts_.max_waiters) {
        ++checkouts_[idx(checkout_result::exhausted)];
        return {nullptr, errc::pool_exhausted, false};
    }
    w->deadline = deadline;
    w->enqueued = now;
    waiting_.push(*w);
    if (deadline != never) due(deadline);
    serve_waiters(now);
    grow(now);
    return {nullptr, {}, true};
}

bool pool_state::cancel(waiter_rec& w, time_point /*now*/) {
    if (!w.queued) return false;
    waiting_.remove(w);
    ++checkouts_[idx(checkout_result::cancelled)];
    return true;
}

void pool_state::note_overdue(node_rec& n, clock::duration held) {
    n.overdue_reported = true;
    ++overdue_;
    emit(event_kind::lease_overdue, &n, {}, close_reason::broken, held);
}

void pool_state::checkin(node_rec& n, time_point now, bool discard, bool reset,
                         std::optional<clock::duration> measured) {
    assert(n.status == node_status::leased);
    const auto held = now - n.lease_start;
    if (measured) lease_time_.record(*measured);
    emit(discard ? event_kind::discarded : event_kind::checked_in, &n, {}, close_reason::broken, held);
    n.last_activity = now;
    if (!n.overdue_reported && retire_.lease_overdue(n, now)) note_overdue(n, held);
    if (discard) return command_close(n, close_reason::broken);
    // An overdue lease may have been abandoned mid-exchange: its state is unknown.
    if (n.overdue_reported) return command_close(n, close_reason::overdue);
    if (closing_) return command_close(n, close_reason::drain);
    if (auto why = retire_.at_checkin(n, now)) return command_close(n, *why);
    if (reset) return command(n, node_cmd::reset, now);
    if (make_available(n, now) == avail::closing) sink_.wake(n);
}

// ---------------------------------------------------------------------------------------
// The maintenance timer.

void pool_state::tick(time_point now) {
    armed_ = never;
    waiting_.remove_expired(now, [&](waiter_rec& w) { expire_waiter(w, now); });

    // Drain deadline: leases still out are aborted (their sockets closed under them).
    if (closing_ && !aborted_ && now >= drain_deadline_) {
        aborted_ = true;
        for (std::size_t i = 0; i < total(); ++i)
            if (nodes_.at(i).status == node_status::leased) sink_.abort_lease(nodes_.at(i));
        // The drain ends at its deadline; aborted leases are closed when their holders
        // return them.
        if (total() > 0 && !drained_sent_) {
            drained_sent_ = true;
            sink_.drained(errc::operation_timeout);
        }
    }

    pump_gate(now);  // a backoff ended, or a probe is due

    // Idle and leased nodes. Commands may reorder the table (never remove from it).
    for (std::size_t i = 0; i < total(); ++i) {
        node_rec& n = nodes_.at(i);
        if (n.status == node_status::idle) {
            const auto step = retire_.while_idle(n, now, nodes_.open());
            if (step.what == retirement_policy::idle_step::close) command_close(n, step.why);
            else if (step.what == retirement_policy::idle_step::check) command(n, node_cmd::check, now);
        } else if (n.status == node_status::leased && !n.overdue_reported && retire_.lease_overdue(n, now)) {
            note_overdue(n, now - n.lease_start);
        }
    }

    // Next due time; only times still ahead (pump_gate arms the gate's own).
    time_point t = waiting_.earliest_deadline();
    if (closing_ && !aborted_) t = std::min(t, drain_deadline_);
    for (std::size_t i = 0; i < total(); ++i) {
        const node_rec& n = nodes_.at(i);
        if (n.status == node_status::idle) t = std::min(t, retire_.idle_due(n, nodes_.open()));
        else if (n.status == node_status::leased && !n.overdue_reported) t = std::min(t, retire_.lease_due(n));
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
    fail_all_waiters(errc::pool_closed, checkout_result::closed);
    for (std::size_t i = 0; i < total(); ++i) {
        node_rec& n = nodes_.at(i);
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
    if (closing_ && total() == 0 && !drained_sent_) {
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
    s.overflow = total() > opts_.size ? total() - opts_.size : 0;
    s.waiters = waiting_.size();
    s.size = opts_.size;
    s.max_overflow = opts_.max_overflow;
    s.endpoint_down = sup_.down();
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
