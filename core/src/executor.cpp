// Executors and timeouts, beside the transport: with_timeout() (the one place a timer's
// operation_aborted becomes a timeout error), is_strand() and running_in_this_thread().
#include <netpool/transport.hpp>
#include <netpool/time.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <exception>
#include <typeinfo>

namespace netpool {

namespace {
bool cancelled(const asio::cancellation_state& cs) noexcept {
    return cs.cancelled() != asio::cancellation_type::none;
}

// Asio 1.22's any_io_executor::target<T>() is an unchecked cast: it returns a pointer for
// any target type. Compare the type first.
template <class T> const T* target_as(const asio::any_io_executor& ex) noexcept {
    return ex && ex.target_type() == typeid(T) ? ex.target<T>() : nullptr;
}
}  // namespace

bool is_strand(const asio::any_io_executor& ex) noexcept {
    return target_as<asio::strand<asio::io_context::executor_type>>(ex) != nullptr ||
           target_as<asio::strand<asio::any_io_executor>>(ex) != nullptr;
}

bool running_in_this_thread(const asio::any_io_executor& ex) noexcept {
    // Asked of the execution context, not of the executor's type: strands, wrappers and
    // user-defined executors all answer the context query, so none is missed.
    // io_context and thread_pool both run Asio's scheduler service (on Linux); it knows
    // whether this thread is inside its run loop. (Asio's detail API, in this one place.)
    if (!ex) return false;
    asio::execution_context& ctx = asio::query(ex, asio::execution::context);
#if !defined(ASIO_HAS_IOCP)
    if (asio::has_service<asio::detail::scheduler>(ctx)) return asio::use_service<asio::detail::scheduler>(ctx).can_dispatch();
#endif
    if (const auto* e = target_as<asio::io_context::executor_type>(ex)) return e->running_in_this_thread();
    return false;
}

asio::awaitable<std::error_code> with_timeout(asio::awaitable<std::error_code> op, std::chrono::milliseconds timeout,
                                              std::error_code on_timeout) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    if (cancelled(cs)) co_return asio::error::operation_aborted;

    // A parallel group rather than awaitable_operators' `||`: `||` needs the timer to fail
    // by throwing whenever the operation wins, an exception on every successful call.
    // wait_for_one cancels the loser either way, and the group forwards a cancellation of
    // this coroutine to both.
    const auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex);
    timer.expires_at(detail::later(asio::steady_timer::clock_type::now(), timeout));  // huge: no timeout
    auto [order, thrown, op_ec, timer_ec] =
        co_await asio::experimental::make_parallel_group(
            asio::co_spawn(ex, std::move(op), asio::experimental::deferred),
            timer.async_wait(asio::experimental::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);

    const bool timer_fired = order[0] == 1 && !timer_ec;
    // An operation that still completed cleanly after the timer fired did its work; calling
    // it a timeout would make the caller throw away a good connection.
    if (timer_fired && !thrown && !op_ec) co_return std::error_code{};
    if (timer_fired) co_return on_timeout;
    if (thrown) {
        // Cancelled coroutines throw operation_aborted from their next co_await; that is the
        // cancellation we were asked for, not a failure of the operation.
        if (cancelled(cs)) co_return asio::error::operation_aborted;
        std::rethrow_exception(thrown);
    }
    co_return op_ec;
}

}  // namespace netpool
