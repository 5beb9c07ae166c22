// The pool's I/O side: checkout (fast path, queueing under one lock, cancellation),
// checkin, completions, the maintenance timer and the clock, and the public pool's
// functions. The worker coroutine is in worker.cpp.
#include <netpool/pool.hpp>
#include <netpool/detail/pool_impl.hpp>
#include <netpool/detail/worker.hpp>
#include <netpool/transport.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <sys/socket.h>
#include <time.h>

#include <future>
#include <new>
#include <stdexcept>

namespace netpool {

namespace detail {

namespace {
time_point steady_now() noexcept { return clock::now(); }

/// The kernel's last tick of the same monotonic clock (CLOCK_MONOTONIC_COARSE): a few ns to
/// read instead of tens in a VM, and at most one tick (1-4 ms) behind now(). The pool's
/// decisions on the fast path (lifetimes, idle thresholds, lease deadlines) are in
/// milliseconds, so a tick's lag is within their tolerance.
time_point steady_coarse_now() noexcept {
#if defined(CLOCK_MONOTONIC_COARSE)
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
#else
    return clock::now();
#endif
}
}  // namespace

time_point pool_impl::now() const noexcept { return clock_ ? clock_->now() : steady_now(); }
time_point pool_impl::coarse_now() const noexcept { return clock_ ? clock_->now() : steady_coarse_now(); }

void lease_checkin(pool_impl& p, worker& w, bool discard, bool skip_reset) noexcept {
    p.checkin(w, discard, skip_reset);
}


// ---------------------------------------------------------------------------------------

pool_impl::pool_impl(asio::any_io_executor ex, endpoint ep, any_adapter adapter, pool_options opts, std::string name)
    : ex_(ex),
      strand_(asio::make_strand(ex)),
      endpoint_(std::move(ep)),
      adapter_(std::move(adapter)),
      clock_(opts.clock),
      manual_(clock_ && !clock_->real_time()),
      state_(std::move(opts), name.empty() ? endpoint_.to_string() : std::move(name), *this),
      timer_(strand_) {
    if (!adapter_) throw std::invalid_argument("adapter: no protocol adapter given");
    if (endpoint_.host.empty()) throw config_error("endpoint.host", "must not be empty");
    if (endpoint_.port == 0) throw config_error("endpoint.port", "must be 1..65535");
    if (endpoint_.tls != tls_mode::none) {
#if NETPOOL_HAS_TLS
        tls_ctx_ = make_client_tls_context(endpoint_.tls_opts);
#else
        // Refused here, once, rather than by every worker's connect.
        throw config_error("endpoint.tls", std::string("is '") + to_string(endpoint_.tls) + "', but " +
                                               NETPOOL_NO_TLS_REASON);
#endif
    }
}

pool_impl::~pool_impl() {
    if (permits_) permits_->detach(this);
}

// A checkout's queue record lives in its op (checkout_op::link, in the public header, which
// cannot see waiter_rec).
static_assert(sizeof(waiter_rec) <= sizeof(checkout_op::link) && alignof(waiter_rec) <= alignof(std::max_align_t),
              "checkout_op::link is too small for waiter_rec");
namespace {
waiter_rec& link_of(checkout_op& op) noexcept { return *std::launder(reinterpret_cast<waiter_rec*>(op.link)); }
}  // namespace

checkout_op::~checkout_op() = default;  // the link is trivially destructible

void pool_impl::start() {
    if (manual_) {
        clock_sub_ = clock_->subscribe([weak = weak_from_this()] {
            if (auto self = weak.lock()) self->clock_moved();
        });
    }
    std::lock_guard lk(mu_);
    state_.start(now());
}

void pool_impl::clock_moved() {
    std::lock_guard lk(mu_);
    state_.tick(now());
    // A worker either has not computed its wait yet (it will read the new time) or waits on
    // its strand, where this cancel runs after the wait began: none misses the move.
    for (worker* w : workers_) asio::post(w->strand, [k = w->shared_from_this()] { k->timer.cancel(); });
}

void pool_impl::spawn(node_rec& n) {
    auto w = std::make_shared<worker>(endpoint_, tls_ctx_.get(), n, asio::make_strand(ex_));
    n.io = w.get();
    workers_.insert(w.get());
    // Posted, not started inline: we hold the pool lock and the worker's first step takes it.
    asio::post(w->strand, [self = shared_from_this(), w]() mutable {
        auto s = w->strand;
        asio::co_spawn(s, run_worker(std::move(self), std::move(w)), asio::detached);
    });
}

void pool_impl::wake(node_rec& n) {
    auto w = static_cast<worker*>(n.io)->shared_from_this();
    asio::post(w->strand, [w] { w->timer.cancel(); });
}

void pool_impl::complete(waiter_rec& rec, node_rec* n, std::error_code ec) {
    finish(*static_cast<checkout_op*>(rec.owner), n, ec);
}

void pool_impl::record(checkout_op& op, node_rec* n, std::error_code ec) noexcept {
    // The node is leased to this op: the lease made here under the lock is only moved after.
    if (n) op.result = make_lease(*n);
    op.result_ec = ec;
    if (op.cancel) op.cancel->op = nullptr;
}

void pool_impl::finish(checkout_op& op, node_rec* n, std::error_code ec) noexcept {
    record(op, n, ec);
    op.post_completion();
}

void pool_impl::arm(time_point t) {
    if (manual_) return;  // clock_moved() ticks instead
    timer_.expires_at(t);
    timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
        if (ec == asio::error::operation_aborted) return;
        if (auto self = weak.lock()) self->on_timer(ec);
    });
}

void pool_impl::on_timer(std::error_code) {
    std::lock_guard lk(mu_);
    state_.tick(now());
}

void pool_impl::abort_lease(node_rec& n) {
    // The holder may be using the socket on another thread: shut the descriptor down
    // (safe to do concurrently) so its operations fail, and close it at checkin.
    auto* w = static_cast<worker*>(n.io);
    ::shutdown(w->conn.io().socket().native_handle(), SHUT_RDWR);
}

void pool_impl::drained(std::error_code ec) {
    drained_ = true;
    drained_ec_ = ec;
    for (auto& d : drains_) d.release()->post_completion(ec);
    drains_.clear();
    timer_.cancel();
}

void pool_impl::add_drain(std::unique_ptr<drain_op> d, std::chrono::milliseconds deadline) {
    std::lock_guard lk(mu_);
    if (drained_) return d.release()->post_completion(drained_ec_);
    drains_.push_back(std::move(d));
    const auto t = now();
    state_.drain(t, later(t, deadline));  // a huge deadline means "wait for every lease"
}

void pool_impl::close_now() {
    std::lock_guard lk(mu_);
    const auto t = now();
    state_.drain(t, t);
}

namespace {
void unlock_and_forget(std::unique_lock<std::mutex>& lk) noexcept { lk.release()->unlock(); }
}  // namespace

void pool_impl::enqueue(std::unique_lock<std::mutex>& lk, checkout_op* op, std::chrono::milliseconds timeout) {
    // `lk` may live in the frame of the coroutine checkout that is queueing this op: once the
    // op's completion is posted, that coroutine can resume (and destroy `lk`) on another
    // thread. So a completion decided here is posted only after the unlock, and `lk` is not
    // touched after that: unique_lock::unlock() unlocks first and clears its flag after,
    // which would write into a frame another thread may already be destroying, so the flag
    // is cleared first (release) and the mutex unlocked after. (TSan saw both races.)
    waiter_rec& rec = *new (op->link) waiter_rec{};
    rec.owner = op;
    if (op->cancel && op->cancel->cancelled) {
        record(*op, nullptr, errc::cancelled);  // cancelled (from another thread) before it was queued
        unlock_and_forget(lk);
        op->post_completion();
        return;
    }
    // From here the op belongs to the queue, or to its completion: checkout() may complete it
    // before returning (a connection handed over at once), and record() clears cancel->op, so
    // cancel->op is set before, never after.
    if (op->cancel) op->cancel->op = op;
    const auto t = now();
    const auto o = state_.checkout(&rec, t, later(t, timeout));  // a huge timeout: no deadline
    if (o.queued) {
        unlock_and_forget(lk);  // from here only a locked completion (checkin, timer, cancel) touches it
        return;
    }
    record(*op, o.node, o.ec);
    unlock_and_forget(lk);
    op->post_completion();
}

void pool_impl::cancel_checkout(cancel_ref& ref) noexcept {
    std::lock_guard lk(mu_);
    if (!ref.op) {
        ref.cancelled = true;  // not queued yet (or already completed: then it changes nothing)
        return;
    }
    if (!state_.cancel(link_of(*ref.op), now())) return;
    finish(*ref.op, nullptr, errc::cancelled);
}

netpool::lease pool_impl::try_or_lock(std::error_code& ec, std::unique_lock<std::mutex>& lk) {
    std::unique_lock held(mu_);
    node_rec* n = state_.try_lease(coarse_now());
    ec.clear();
    if (!n) {
        lk = std::move(held);  // a miss: the caller queues under this same lock
        return {};
    }
    held.unlock();
    return make_lease(*n);
}

netpool::lease pool_impl::try_now(std::error_code& ec) {
    node_rec* n = nullptr;
    {
        std::lock_guard lk(mu_);
        const auto o = state_.checkout(nullptr, coarse_now(), never);  // a miss counts, never waits
        n = o.node;
        ec = o.ec;
    }
    return n ? make_lease(*n) : netpool::lease{};
}

netpool::lease pool_impl::make_lease(node_rec& n) {
    // The node is leased to us: nobody else touches it or its connection until checkin.
    auto* w = static_cast<worker*>(n.io);
    detail_access::on_lease(w->conn, n.uses, n.uses > 1 || n.sat_idle);
    // The precise clock costs tens of ns in a VM, more than the rest of a checkout: one lease
    // in pool_state::lease_sample_every (n.timed) is timed for the histogram; the pool's
    // decisions use coarse time.
    w->timed = n.timed;
    if (w->timed) w->lease_started = now();
    return netpool::lease(this, w, &w->conn);
}

void pool_impl::checkin(worker& w, bool discard, bool skip_reset) noexcept {
    bool reset = false;
    if (!discard && !skip_reset) {
        try {
            reset = adapter_.needs_reset(w.conn);
        } catch (...) {
            discard = true;  // the adapter cannot tell: do not reuse blindly
        }
    }
    std::optional<clock::duration> measured;
    if (w.timed) measured = now() - w.lease_started;
    std::lock_guard lk(mu_);
    // With waiters this checkin is a handoff whose wait is measured: use the precise clock.
    const auto t = state_.waiters() > 0 ? now() : coarse_now();
    state_.checkin(*w.node, t, discard, reset, measured);
}

pool_stats pool_impl::stats() const {
    pool_stats s;
    {
        std::lock_guard lk(mu_);
        s = state_.snapshot();
    }
    s.endpoint = endpoint_.to_string();
    s.protocol = std::string(adapter_.name());
    return s;
}

netpool::pool::load_info pool_impl::load() const {
    std::lock_guard lk(mu_);
    netpool::pool::load_info l;
    l.idle = state_.count(node_status::idle);
    l.leased = state_.count(node_status::leased);
    l.connecting = state_.count(node_status::connecting);
    l.waiters = state_.waiters();
    l.capacity = state_.options().size + state_.options().max_overflow;
    l.endpoint_down = state_.endpoint_down();
    return l;
}

void pool_impl::set_event_hook(event_hook h) {
    std::lock_guard lk(mu_);
    state_.set_event_hook(std::move(h));
}

std::error_code pool_impl::last_failure() const {
    std::lock_guard lk(mu_);
    return state_.last_failure();
}

void pool_impl::permit_available() {
    std::lock_guard lk(mu_);
    state_.on_permit_available(now());
}

void pool_impl::set_permit_source(std::shared_ptr<permit_source> p) {
    std::lock_guard lk(mu_);
    permits_ = std::move(p);
    state_.set_permit_source(permits_.get(), this);
}

void pool_impl::shed_idle() {
    std::lock_guard lk(mu_);
    state_.shed_idle(now());
}

}  // namespace detail

// ---------------------------------------------------------------------------------------

pool::pool(asio::any_io_executor ex, endpoint ep, any_adapter adapter, pool_options options, std::string name)
    : impl_(std::make_shared<detail::pool_impl>(std::move(ex), std::move(ep), std::move(adapter), std::move(options),
                                                std::move(name))) {
    impl_->start();
}

pool::pool(std::shared_ptr<detail::pool_impl> impl) : impl_(std::move(impl)) { impl_->start(); }

pool::~pool() {
    if (impl_) impl_->close_now();
}

asio::awaitable<std::pair<std::error_code, lease>> pool::checkout(std::chrono::milliseconds timeout) {
    auto impl = impl_;  // this pool object may be moved while we wait
    std::error_code ec;
    std::unique_lock<std::mutex> lk;
    if (lease l = impl->try_or_lock(ec, lk); l || ec) co_return std::pair{ec, std::move(l)};
    // A miss: `lk` holds the pool's lock. The initiation below runs on this thread, before
    // this coroutine yields to anything else, and queues under that same lock.
    auto token = asio::experimental::as_tuple(asio::use_awaitable);
    auto [e, l] = co_await asio::async_initiate<decltype(token), void(std::error_code, lease)>(
        [](auto handler, const std::shared_ptr<detail::pool_impl>& p, std::unique_lock<std::mutex>* held,
           std::chrono::milliseconds t) { detail::queue_new_checkout(p, *held, std::move(handler), t); },
        token, impl, &lk, timeout);
    co_return std::pair{e, std::move(l)};
}

lease pool::try_checkout(std::error_code& ec) { return impl_->try_now(ec); }

lease pool::checkout_blocking(std::chrono::milliseconds timeout, std::error_code& ec) {
    if (running_in_this_thread(impl_->executor()))
        throw std::logic_error("netpool::pool::checkout_blocking called from a thread running the pool's io_context: "
                               "it would wait for itself; use async_checkout there");
    std::unique_lock<std::mutex> lk;
    if (lease l = impl_->try_or_lock(ec, lk); l || ec) return l;
    std::promise<std::pair<std::error_code, lease>> done;
    auto result = done.get_future();
    detail::queue_new_checkout(impl_, lk, [&done](std::error_code e, lease l) { done.set_value({e, std::move(l)}); },
                               timeout);
    auto [e, l] = result.get();
    ec = e;
    return std::move(l);
}

void pool::close() { impl_->close_now(); }
pool_stats pool::stats() const { return impl_->stats(); }
pool::load_info pool::load() const { return impl_->load(); }
void pool::set_event_hook(event_hook hook) { impl_->set_event_hook(std::move(hook)); }
const std::string& pool::name() const noexcept { return impl_->name(); }
const endpoint& pool::remote() const noexcept { return impl_->remote(); }
std::error_code pool::last_failure() const { return impl_->last_failure(); }
asio::any_io_executor pool::get_executor() const noexcept { return impl_->executor(); }
std::chrono::milliseconds pool::default_timeout() const noexcept { return impl_->options().checkout_timeout; }
const any_adapter& pool::adapter() const noexcept { return impl_->adapter(); }

namespace detail {
asio::any_io_executor executor_of(const pool_impl& p) noexcept { return p.executor(); }
netpool::lease try_or_lock(pool_impl& p, std::error_code& ec, std::unique_lock<std::mutex>& lk) {
    return p.try_or_lock(ec, lk);
}
std::shared_ptr<cancel_ref> make_cancel_ref() { return std::make_shared<cancel_ref>(); }
void cancel_checkout(const std::weak_ptr<pool_impl>& p, cancel_ref& ref) noexcept {
    if (auto impl = p.lock()) impl->cancel_checkout(ref);
}
void queue_checkout(pool_impl& p, std::unique_lock<std::mutex>& lk, checkout_op* op,
                    std::chrono::milliseconds timeout) {
    p.enqueue(lk, op, timeout);
}
void start_drain(pool_impl& p, std::unique_ptr<drain_op> op, std::chrono::milliseconds deadline) {
    p.add_drain(std::move(op), deadline);
}
}  // namespace detail

}  // namespace netpool
