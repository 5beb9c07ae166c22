// The pool's decisions, without I/O: told what happened, it answers what to do next.
//
// One pool_state per pool. It is the one transition function over parts that each own one
// concern and are tested alone: node_table (the slots and their statuses), waiter_queue
// (fair waiting), retirement_policy (when a healthy connection closes, and why), supervisor
// (backoff, restart intensity, endpoint down, probes), and the permit source (the
// registry's global cap, taken in spawn_with_permit only). What is left here is how an event
// moves a node between them: handoff to waiters, drain, and the counters. Time is always a
// parameter, so tests drive it with a fake clock. Everything that needs I/O (start a worker,
// wake one, hand a connection to a waiter, arm the maintenance timer) goes out through
// io_sink.
//
// Thread safety: none; the owner serialises every call (pool_impl holds its mutex).
#pragma once

#include <netpool/error.hpp>
#include <netpool/events.hpp>
#include <netpool/options.hpp>
#include <netpool/stats.hpp>
#include <netpool/time.hpp>
#include <netpool/detail/jitter.hpp>
#include <netpool/detail/node_table.hpp>
#include <netpool/detail/retirement.hpp>
#include <netpool/detail/supervisor.hpp>
#include <netpool/detail/waiter_queue.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace netpool::detail {

/// What a worker should do next.
enum class action_kind : std::uint8_t {
    connect,       ///< connect, then report the result
    wait,          ///< wait for a wake-up or `until`, then ask again
    health_check,  ///< run the adapter's health check, then report the result
    reset,         ///< run the adapter's reset, then report the result
    close,         ///< polite close, then close the socket, then report
    exit,          ///< the node is gone; the worker must end and not touch it again
};
const char* to_string(action_kind a) noexcept;

struct action {
    action_kind kind;
    time_point until = never;  ///< for wait
};

/// The I/O side, called by pool_state with the owner's lock held. Implementations must
/// not call back into pool_state and must not run user code inline (post it instead).
class io_sink {
public:
    virtual ~io_sink() = default;
    /// Start a worker for a new node; it will call next(n, {}, now) first.
    virtual void spawn(node_rec& n) = 0;
    /// Interrupt the worker's current wait so it asks next() again.
    virtual void wake(node_rec& n) = 0;
    /// Complete a queued checkout: with a leased node, or with an error (node null).
    virtual void complete(waiter_rec& w, node_rec* n, std::error_code ec) = 0;
    /// Arm the maintenance timer for `t` (replacing any earlier arming).
    virtual void arm(time_point t) = 0;
    /// Force the socket of a leased node closed (drain deadline passed).
    virtual void abort_lease(node_rec& n) = 0;
    /// The drain finished: every node is gone. `ec` is empty, or errc::operation_timeout
    /// if leases had to be aborted at the deadline.
    virtual void drained(std::error_code ec) = 0;
};

/// The registry's global cap on connections, shared across pools. Called with the pool's
/// lock held (lock order: pool, then permit source).
class permit_source {
public:
    virtual ~permit_source() = default;
    /// Take one permit for `requester`; false means "not now" (the source remembers the
    /// requester and calls its on_permit_available later).
    virtual bool try_acquire(void* requester) = 0;
    virtual void release(void* requester) = 0;
    /// True when another pool waits for a permit and `requester` holds more than its fair
    /// share: a connection of requester's that would go idle should close instead.
    virtual bool should_yield(void* /*requester*/) { return false; }
    /// The requester is going away: forget it (called once, from its destructor).
    virtual void detach(void* /*requester*/) {}
};

/// Result of checkout().
struct checkout_outcome {
    node_rec* node = nullptr;  ///< leased at once
    std::error_code ec;        ///< failed at once
    bool queued = false;       ///< waiting; io_sink::complete will finish it
};

class pool_state {
public:
    pool_state(pool_options opts, std::string name, io_sink& sink, std::uint64_t seed = 0x9e3779b97f4a7c15ull);
    ~pool_state();
    pool_state(const pool_state&) = delete;
    pool_state& operator=(const pool_state&) = delete;

    void set_event_hook(event_hook hook) { hook_ = std::move(hook); }
    void set_permit_source(permit_source* p, void* requester) {
        permits_ = p;
        permit_requester_ = requester;
    }
    const pool_options& options() const noexcept { return opts_; }
    const std::string& name() const noexcept { return name_; }

    /// Spawns the base workers (unless opts.lazy).
    void start(time_point now);

    /// A checkout. `w` null means "try": lease only if a connection is free now.
    /// Deadline is for the queued case.
    checkout_outcome checkout(waiter_rec* w, time_point now, time_point deadline);
    /// One lease in this many is marked node_rec::timed, for the lease-time histogram.
    static constexpr std::uint32_t lease_sample_every = 16;

    /// The fast path alone: a free connection leased now, or null (nothing counted as a
    /// failure). May start a health check or retire an aged idle connection on the way.
    node_rec* try_lease(time_point now);
    /// Removes a queued waiter (cancelled by its caller); false if it was already completed.
    bool cancel(waiter_rec& w, time_point now);
    /// A lease ended. `discard`: the holder marked it broken. `reset`: run the adapter's
    /// reset before reuse. `measured`: the lease's duration when the caller timed it with
    /// the precise clock (only those go into the lease-time histogram; the I/O layer times
    /// a sample of leases, see pool_impl).
    void checkin(node_rec& n, time_point now, bool discard, bool reset,
                 std::optional<clock::duration> measured = std::nullopt);

    /// A worker reports the result of its last action (or {} after a wait) and gets the
    /// next one. After `exit` the node has been freed.
    action next(node_rec& n, std::error_code result, time_point now);
    /// The worker's hook threw: counted and reported, then treated as `result`.
    void note_adapter_exception(node_rec& n);

    /// Expire waiters, retire idle nodes, start keepalives and probes, report overdue
    /// leases. Arms the timer for the next due time.
    void tick(time_point now);

    /// Stop new leases; fail queued waiters; close idle nodes now and leased ones at
    /// checkin; at `deadline` abort leases still out. io_sink::drained when all are gone.
    void drain(time_point now, time_point deadline);

    /// The registry wants a permit back for a pool below its fair share: close one idle
    /// connection (the coldest), even below the base size. False if none is idle.
    bool shed_idle(time_point now);

    /// The registry granted a permit that was refused earlier: grow if still wanted.
    void on_permit_available(time_point now);

    pool_stats snapshot() const;
    std::size_t count(node_status s) const noexcept { return nodes_.count(s); }
    std::size_t total() const noexcept { return nodes_.total(); }
    std::size_t waiters() const noexcept { return waiting_.size(); }
    bool endpoint_down() const noexcept { return sup_.down(); }
    std::error_code last_failure() const noexcept { return sup_.last_cause(); }

private:
    enum class avail { leased, idled, closing };

    static pool_options prepared(pool_options o);
    std::size_t capacity() const noexcept { return opts_.size + opts_.max_overflow; }

    // Waiting and handoff.
    void serve_waiters(time_point now);
    waiter_rec* pop_live_waiter(time_point now);
    void expire_waiter(waiter_rec& w, time_point now);
    void fail_all_waiters(std::error_code ec, checkout_result r);
    void hand_over(waiter_rec& w, node_rec& n, time_point now);
    void lease_to(node_rec& n, time_point now);
    avail make_available(node_rec& n, time_point now);

    // Growth, under the registry's cap.
    node_rec* spawn_with_permit();
    void free_node(node_rec& n, time_point now);
    void grow(time_point now);

    // The connect gate (decisions in supervisor).
    action want_connect(node_rec& n, time_point now);
    void pump_gate(time_point now, node_rec* self = nullptr);
    action connected(node_rec& n, time_point now);
    action connect_failed(node_rec& n, std::error_code ec, time_point now);
    void go_down(std::error_code cause, time_point now);
    void go_up(time_point now);

    // Commands to workers.
    void begin_close(node_rec& n, close_reason r);
    void order(node_rec& n, node_cmd cmd, time_point now);
    void command(node_rec& n, node_cmd cmd, time_point now);
    void command_close(node_rec& n, close_reason r);
    action take(node_rec& n, time_point now);
    action after_close(node_rec& n, time_point now);
    action resume_wait(node_rec& n, time_point now);
    action finish(node_rec& n, time_point now);
    void note_overdue(node_rec& n, clock::duration held);

    void check_drained();
    void due(time_point t);
    void emit(event_kind k, const node_rec* n, std::error_code ec = {}, close_reason r = close_reason::broken,
              clock::duration elapsed = {});

    pool_options opts_;  // validated, durations saturated
    std::string name_;
    io_sink& sink_;
    event_hook hook_;
    permit_source* permits_ = nullptr;
    void* permit_requester_ = nullptr;

    node_table nodes_;
    waiter_queue waiting_;
    retirement_policy retire_;
    jitter_rng rng_;
    supervisor sup_;

    // Drain.
    bool closing_ = false;
    bool drained_sent_ = false;
    bool aborted_ = false;
    time_point drain_deadline_ = never;

    time_point armed_ = never;
    std::uint32_t lease_count_ = 0;  // picks the sample of leases timed precisely

    // Counters and histograms (the gauges are derived from the node table's counts).
    std::array<std::uint64_t, checkout_result_count> checkouts_{};
    std::array<std::uint64_t, close_reason_count> closes_{};
    std::uint64_t connects_ok_ = 0, connects_failed_ = 0, checks_failed_ = 0, overdue_ = 0, adapter_exceptions_ = 0;
    histogram checkout_wait_, connect_time_, lease_time_;
};

}  // namespace netpool::detail
