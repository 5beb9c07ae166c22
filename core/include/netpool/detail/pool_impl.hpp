// The pool's I/O side: workers (one coroutine per connection), waiters, timers. Decisions
// are pool_state's; this file performs them. Visible only because checkout is a template.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/events.hpp>
#include <netpool/options.hpp>
#include <netpool/detail/pool_state.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <netpool/lease.hpp>

namespace asio::ssl { class context; }

namespace netpool::detail {

struct worker;
class pool_impl;


struct waiter_base;
/// Reference from a cancellation slot to its waiter; null before it is queued and once it
/// completed. Both fields are guarded by the pool's mutex.
struct waiter_ref {
    waiter_base* w = nullptr;
    bool cancelled = false;  ///< a cancellation arrived before the waiter was queued
};

/// A queued checkout. Completion runs on the handler's executor, never inline.
struct waiter_base {
    waiter_rec rec;
    std::shared_ptr<pool_impl> impl;
    node_rec* result_node = nullptr;
    std::error_code result_ec;
    std::shared_ptr<waiter_ref> ref;  // shared with the cancellation slot, if any
    virtual ~waiter_base();
    /// Post the completion to the handler's executor (called with the pool lock held).
    virtual void post_completion() = 0;
};


struct drain_base {
    virtual ~drain_base() = default;
    virtual void post_completion(std::error_code ec) = 0;
};

class pool_impl final : public io_sink, public std::enable_shared_from_this<pool_impl> {
public:
    pool_impl(asio::any_io_executor ex, endpoint ep, any_adapter adapter, pool_options opts, std::string name);
    ~pool_impl() override;

    void start();
    const pool_options& options() const noexcept { return state_.options(); }
    const std::string& name() const noexcept { return state_.name(); }
    const endpoint& remote() const noexcept { return endpoint_; }
    asio::any_io_executor executor() const noexcept { return ex_; }
    const any_adapter& adapter() const noexcept { return adapter_; }

    /// Fast path shared by every checkout: a lease if a connection is free now.
    netpool::lease try_now(std::error_code& ec, bool count_failure);

    template <class Handler>
    static void start_checkout(std::shared_ptr<pool_impl> self, Handler handler, std::chrono::milliseconds timeout);
    template <class Handler>
    static void start_drain(std::shared_ptr<pool_impl> self, Handler handler, std::chrono::milliseconds deadline);

    void checkin(worker& w, bool discard, bool skip_reset) noexcept;
    void close_now();
    pool_stats stats() const;
    void set_event_hook(event_hook h);
    std::error_code last_failure() const;
    /// Registry support: a permit of the global cap became available.
    void permit_available();
    /// Before start(): connections of this pool take permits from `p`, kept alive here.
    void set_permit_source(std::shared_ptr<permit_source> p);
    void shed_idle();

    netpool::lease make_lease(node_rec& n);

    // io_sink
    void spawn(node_rec& n) override;
    void wake(node_rec& n) override;
    void complete(waiter_rec& w, node_rec* n, std::error_code ec) override;
    void arm(time_point t) override;
    void abort_lease(node_rec& n) override;
    void drained(std::error_code ec) override;

private:
    /// One worker's coroutine: ask pool_state, act, report, until told to exit.
    static asio::awaitable<void> run_worker(std::shared_ptr<pool_impl> p, std::shared_ptr<worker> w);
    void enqueue(std::unique_ptr<waiter_base> w, std::chrono::milliseconds timeout);
    void cancel_waiter(waiter_ref& ref);
    void add_drain(std::unique_ptr<drain_base> d, std::chrono::milliseconds deadline);
    void on_timer(std::error_code ec);

    asio::any_io_executor ex_;
    asio::strand<asio::any_io_executor> strand_;
    endpoint endpoint_;
    any_adapter adapter_;
    std::shared_ptr<asio::ssl::context> tls_ctx_;
    std::shared_ptr<permit_source> permits_;
    mutable std::mutex mu_;
    pool_state state_;
    asio::steady_timer timer_;
    std::vector<std::unique_ptr<drain_base>> drains_;
    bool drained_ = false;
    std::error_code drained_ec_;
};

template <class Handler>
struct waiter_impl final : waiter_base {
    using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;
    waiter_impl(Handler&& h, const asio::any_io_executor& fallback)
        : handler(std::move(h)), work(asio::get_associated_executor(handler, fallback)) {}

    void post_completion() override {
        auto ex = work.get_executor();
        // The posted function owns the waiter: if it is destroyed without running (its
        // io_context shut down first), the waiter and its handler are freed with it, and a
        // connection already handed to it goes back to the pool (~waiter_base).
        asio::post(ex, [self = std::unique_ptr<waiter_impl>(this)]() mutable {
            // On the handler's executor, outside the pool lock.
            node_rec* n = std::exchange(self->result_node, nullptr);
            netpool::lease l = n ? self->impl->make_lease(*n) : netpool::lease{};
            const std::error_code ec = self->result_ec;
            Handler h = std::move(self->handler);
            auto guard = std::move(self->work);
            self.reset();
            std::move(h)(ec, std::move(l));
        });
    }

    Handler handler;
    asio::executor_work_guard<executor_type> work;
};

template <class Handler>
struct drain_impl final : drain_base {
    using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;
    drain_impl(Handler&& h, const asio::any_io_executor& fallback)
        : handler(std::move(h)), work(asio::get_associated_executor(handler, fallback)) {}
    void post_completion(std::error_code ec) override {
        auto ex = work.get_executor();
        asio::post(ex, [h = std::move(handler), ec, g = std::move(work)]() mutable { std::move(h)(ec); });
    }
    Handler handler;
    asio::executor_work_guard<executor_type> work;
};

template <class Handler>
void pool_impl::start_checkout(std::shared_ptr<pool_impl> self, Handler handler, std::chrono::milliseconds timeout) {
    std::error_code ec;
    if (netpool::lease l = self->try_now(ec, false); l || ec) {
        // Completed at once; still delivered through the handler's executor, never inline.
        auto ex = asio::get_associated_executor(handler, self->ex_);
        asio::post(ex, [h = std::move(handler), ec, l = std::move(l)]() mutable { std::move(h)(ec, std::move(l)); });
        return;
    }
    auto w = std::make_unique<waiter_impl<Handler>>(std::move(handler), self->ex_);
    w->impl = self;
    w->rec.owner = w.get();
    auto slot = asio::get_associated_cancellation_slot(w->handler);
    if (slot.is_connected()) {
        w->ref = std::make_shared<waiter_ref>();
        slot.assign([weak = std::weak_ptr<pool_impl>(self), ref = w->ref](asio::cancellation_type) {
            if (auto p = weak.lock()) p->cancel_waiter(*ref);
        });
    }
    self->enqueue(std::move(w), timeout);
}

template <class Handler>
void pool_impl::start_drain(std::shared_ptr<pool_impl> self, Handler handler, std::chrono::milliseconds deadline) {
    self->add_drain(std::make_unique<drain_impl<Handler>>(std::move(handler), self->ex_), deadline);
}

}  // namespace netpool::detail

