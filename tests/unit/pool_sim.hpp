// A simulated pool for the fault tests: pool_state driven the way pool_impl drives it, with
// workers whose connects and checks take simulated time, a server whose answers are a
// function of time, callers that check out and return leases, and a fake clock advanced
// from event to event. No sockets, no sleeps, deterministic.
#pragma once

#include <netpool/detail/pool_state.hpp>

#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <algorithm>
#include <vector>

namespace netpool::test {

using namespace std::chrono_literals;
using detail::action;
using detail::action_kind;
using detail::clock;
using detail::never;
using detail::node_rec;
using detail::pool_state;
using detail::time_point;
using detail::waiter_rec;

class pool_sim final : public detail::io_sink {
public:
    /// What a connect does: how long it takes and what it returns.
    struct connect_answer {
        clock::duration takes = 1ms;
        std::error_code ec;
    };

    explicit pool_sim(pool_options o, std::uint64_t seed = 0x9e3779b97f4a7c15ull) : st(std::move(o), "sim", *this, seed) {
        st.set_event_hook([this](const event& e) { events.push_back(e.kind); });
    }

    pool_state st;
    time_point t = time_point{} + 1h;

    // The server: up unless a hook says otherwise.
    std::function<connect_answer(const node_rec&, time_point)> on_connect = [](const node_rec&, time_point) {
        return connect_answer{};
    };
    std::function<std::error_code(const node_rec&, time_point)> on_check = [](const node_rec&, time_point) {
        return std::error_code{};
    };

    // What happened.
    std::vector<time_point> connect_starts;
    std::vector<std::uint64_t> connect_ids;
    /// Ready workers for which this is true run before the others (to order a race).
    std::function<bool(const node_rec&)> prefer;
    std::map<std::uint64_t, int> checks_by_node;  // node id -> health checks run
    std::vector<event_kind> events;
    bool drained_called = false;
    std::size_t ticks = 0;

    struct request {
        time_point start{}, end = never, deadline{};
        std::error_code ec;
        bool done = false;
        node_rec* node = nullptr;
    };
    std::deque<request> requests;

    /// A caller checks out now (queued if nothing is free); holds a lease for `hold`, then
    /// returns it, discarded if `broken(t)` says its exchange failed.
    void request_now(std::chrono::milliseconds timeout = 5s) {
        auto& r = requests.emplace_back();
        r.start = t;
        // Saturating, as a caller's huge timeout means "no deadline".
        r.deadline = timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(never - t) ? never : t + timeout;
        waiters_.emplace_back();
        waiter_rec& w = waiters_.back();
        w.owner = &r;
        const auto o = st.checkout(&w, t, r.deadline);
        if (o.node) leased(r, o.node);
        else if (!o.queued) finish(r, o.ec);
    }
    std::function<bool(time_point)> broken = [](time_point) { return false; };
    clock::duration hold = 1ms;

    /// Runs every event up to and including `until`, then sets the clock to it.
    void run_until(time_point until) {
        for (std::size_t guard = 0;; ++guard) {
            REQUIRE_MESSAGE(guard < 5'000'000, "simulation does not settle");
            mark_due();
            if (step_ready()) continue;
            if (armed_ <= t) {
                // The same instant ticking again and again is a busy loop of the timer.
                if (armed_ == last_tick_at_) {
                    REQUIRE_MESSAGE(++ticks_same_time_ < 1000, "the maintenance timer re-arms for the past (spin)");
                } else {
                    ticks_same_time_ = 0;
                }
                last_tick_at_ = armed_;
                armed_ = never;
                ++ticks;
                st.tick(t);
                continue;
            }
            time_point nxt = armed_;
            for (auto& [n, w] : workers_)
                if (w.ph != phase::running && w.ph != phase::ready) nxt = std::min(nxt, w.until);
            for (auto& r : returns_) nxt = std::min(nxt, r.at);
            if (nxt > until) break;
            t = nxt;
            mark_due();
            for (auto it = returns_.begin(); it != returns_.end();) {
                if (it->at <= t) {
                    auto r = *it;
                    it = returns_.erase(it);
                    st.checkin(*r.node, t, r.discard, false);
                } else {
                    ++it;
                }
            }
        }
        t = std::max(t, until);
    }
    void run_for(clock::duration d) { run_until(t + d); }

    std::size_t leased_now() const { return st.count(detail::node_status::leased); }
    std::size_t live_workers() const { return workers_.size(); }
    std::size_t count(event_kind k) const { return static_cast<std::size_t>(std::count(events.begin(), events.end(), k)); }
    /// Requests that finished with an error at or after `from`.
    std::size_t failed_since(time_point from) const {
        std::size_t n = 0;
        for (auto& r : requests)
            if (r.done && r.ec && r.end >= from) ++n;
        return n;
    }
    time_point first_success_after(time_point from) const {
        time_point best = never;
        for (auto& r : requests)
            if (r.done && !r.ec && r.end >= from) best = std::min(best, r.end);
        return best;
    }

    // io_sink
    void spawn(node_rec& n) override {
        worker w;
        w.id = n.id;
        workers_[&n] = w;  // may reuse the address of a node freed in the same step
    }
    void wake(node_rec& n) override {
        auto it = workers_.find(&n);
        REQUIRE(it != workers_.end());
        // Like a timer cancel posted to the worker's strand: it ends a wait, or the wait that
        // a running worker is about to start; a connect or check in flight ignores it.
        if (it->second.ph == phase::waiting) it->second.ph = phase::ready;
        else if (it->second.ph == phase::running) it->second.wake_pending = true;
    }
    void complete(waiter_rec& w, node_rec* n, std::error_code ec) override {
        auto& r = *static_cast<request*>(w.owner);
        if (n) leased(r, n);
        else finish(r, ec);
    }
    void arm(time_point tp) override { armed_ = tp; }
    void abort_lease(node_rec&) override {}
    void drained(std::error_code) override { drained_called = true; }

private:
    enum class phase { ready, running, waiting, busy };
    struct worker {
        phase ph = phase::ready;
        time_point until = never;
        std::error_code result;
        bool wake_pending = false;
        std::uint64_t id = 0;  ///< the node this worker runs (addresses are reused)
    };
    struct lease_return {
        time_point at;
        node_rec* node;
        bool discard;
    };

    void leased(request& r, node_rec* n) {
        r.node = n;
        const bool fails = broken(t);
        finish(r, fails ? std::make_error_code(std::errc::connection_reset) : std::error_code{});
        returns_.push_back({t + hold, n, fails});
    }
    void finish(request& r, std::error_code ec) {
        CHECK_MESSAGE(!r.done, "a request completed twice");
        r.done = true;
        r.end = t;
        r.ec = ec;
    }

    void mark_due() {
        for (auto& [n, w] : workers_)
            if ((w.ph == phase::waiting || w.ph == phase::busy) && w.until <= t) w.ph = phase::ready;
    }
    node_rec* pick_ready() {
        node_rec* any = nullptr;
        for (auto& [n, w] : workers_) {
            if (w.ph != phase::ready) continue;
            if (prefer && prefer(*n)) return n;
            if (!any) any = n;
        }
        return any;
    }
    bool step_ready() {
        if (node_rec* node = pick_ready()) {
            worker& w = workers_.at(node);
            const std::error_code result = std::exchange(w.result, {});
            const std::uint64_t id = w.id;
            w.ph = phase::running;
            const action a = st.next(*node, result, t);
            if (a.kind == action_kind::exit) {
                // The node is freed; a node spawned during this step may sit at its address.
                if (auto it = workers_.find(node); it != workers_.end() && it->second.id == id) workers_.erase(it);
                return true;
            }
            worker& me = workers_.at(node);
            (void)w;
            switch (a.kind) {
            case action_kind::wait:
                me.ph = phase::waiting;
                me.until = a.until;
                if (std::exchange(me.wake_pending, false)) me.ph = phase::ready;
                break;
            case action_kind::connect: {
                connect_starts.push_back(t);
                connect_ids.push_back(node->id);
                const auto ans = on_connect(*node, t);
                busy(me, ans.takes, ans.ec);
                break;
            }
            case action_kind::health_check:
                ++checks_by_node[node->id];
                busy(me, 1ms, on_check(*node, t));
                break;
            case action_kind::reset:
            case action_kind::close: busy(me, 1ms, {}); break;
            case action_kind::exit: break;
            }
            return true;
        }
        return false;
    }
    void busy(worker& w, clock::duration d, std::error_code ec) {
        w.ph = phase::busy;
        w.until = t + d;
        w.result = ec;
        w.wake_pending = false;
    }

    std::map<node_rec*, worker> workers_;
    std::deque<waiter_rec> waiters_;
    std::vector<lease_return> returns_;
    time_point armed_ = never;
    time_point last_tick_at_ = never;
    std::size_t ticks_same_time_ = 0;
};

}  // namespace netpool::test
