// The worker coroutine: asks pool_state what to do, does it (connect, the adapter's hooks,
// close, wait), every step bounded by a timeout, and reports the result.
#include <netpool/detail/pool_impl.hpp>
#include <netpool/detail/worker.hpp>
#include <netpool/error.hpp>
#include <netpool/transport.hpp>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

namespace netpool::detail {

namespace {

enum class hook { handshake, health_check, reset, close };

/// Runs one adapter hook under its timeout. An exception thrown by the adapter is
/// contained here: it becomes errc::adapter_exception and the worker is replaced.
asio::awaitable<std::error_code> run_hook(any_adapter& a, connection& c, hook h, std::chrono::milliseconds timeout,
                                          bool& threw) {
    threw = false;
    try {
        switch (h) {
        case hook::handshake: co_return co_await with_timeout(a.handshake(c), timeout, errc::handshake_timeout);
        case hook::health_check:
            co_return co_await with_timeout(a.health_check(c), timeout, errc::health_check_failed);
        case hook::reset: co_return co_await with_timeout(a.reset(c), timeout, errc::operation_timeout);
        case hook::close: {
            auto wrapped = [](any_adapter& ad, connection& cn) -> asio::awaitable<std::error_code> {
                co_await ad.close(cn);
                co_return std::error_code{};
            };
            co_return co_await with_timeout(wrapped(a, c), timeout, errc::operation_timeout);
        }
        }
    } catch (...) {
        threw = true;
    }
    co_return errc::adapter_exception;
}

}  // namespace

// The worker: ask, act, report.

asio::awaitable<void> pool_impl::run_worker(std::shared_ptr<pool_impl> p, std::shared_ptr<worker> w) {
    const pool_options& o = p->options();
    std::error_code result;
    for (;;) {
        action act;
        {
            std::lock_guard lk(p->mu_);
            act = p->state_.next(*w->node, result, p->now());
            if (act.kind == action_kind::exit) p->workers_.erase(w.get());
        }
        result.clear();
        bool threw = false;
        switch (act.kind) {
        case action_kind::exit:
            co_return;  // the node is gone; w->node dangles from here
        case action_kind::wait: {
            // On a manual clock the wait ends only when clock_moved() cancels it.
            w->timer.expires_at(p->manual_ ? time_point::max() : act.until);
            auto [ec] = co_await w->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
            (void)ec;  // cancelled = woken; expired = time is up; either way ask again
            break;
        }
        case action_kind::connect: {
            w->conn.io().close();
            detail_access::new_session(w->conn);
            try {
                result = co_await connect_transport(w->conn, o.connect_timeout, o.handshake_timeout, o.dns_refresh);
            } catch (...) {
                result = errc::adapter_exception;  // not the adapter's, but contained all the same
            }
            if (!result) result = co_await run_hook(p->adapter_, w->conn, hook::handshake, o.handshake_timeout, threw);
            if (result) w->conn.io().close();
            break;
        }
        case action_kind::health_check:
            result = co_await run_hook(p->adapter_, w->conn, hook::health_check, o.health_check_timeout, threw);
            break;
        case action_kind::reset:
            result = co_await run_hook(p->adapter_, w->conn, hook::reset, o.reset_timeout, threw);
            break;
        case action_kind::close:
            if (w->conn.io().is_open()) {
                std::error_code ignored = co_await run_hook(p->adapter_, w->conn, hook::close, o.close_timeout, threw);
                (void)ignored;
            }
            w->conn.io().close();
            detail_access::new_session(w->conn);
            break;
        }
        if (threw) {
            std::lock_guard lk(p->mu_);
            p->state_.note_adapter_exception(*w->node);
        }
    }
}

}  // namespace netpool::detail
