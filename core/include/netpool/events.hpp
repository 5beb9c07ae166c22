// The event hook: the embedding program logs in its own way; netpool picks no logger.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <system_error>

namespace netpool {

/// Why a connection was closed.
enum class close_reason {
    broken,    ///< discarded by its holder, or failed during use/reset
    idle,      ///< idle_timeout
    lifetime,  ///< max_lifetime reached
    max_uses,  ///< max_uses reached
    overflow,  ///< overflow worker returned with nobody waiting (after overflow_ttl)
    health,    ///< failed health check or keepalive
    overdue,   ///< lease exceeded lease_deadline; its state is unknown, so not reused
    drain,     ///< drain() or close()
};
inline constexpr std::size_t close_reason_count = 8;
const char* to_string(close_reason r) noexcept;

/// Outcome of one checkout.
enum class checkout_result { ok, timeout, exhausted, cancelled, endpoint_down, closed };
inline constexpr std::size_t checkout_result_count = 6;
const char* to_string(checkout_result r) noexcept;

enum class event_kind {
    created,         ///< a worker connected (and completed its handshake)
    connect_failed,  ///< a connect or handshake failed (error = cause)
    checked_out,
    checked_in,
    discarded,       ///< the holder marked the lease broken
    closed,          ///< a connection closed (reason set)
    endpoint_down,   ///< restart intensity exceeded (error = last cause)
    endpoint_up,     ///< a probe succeeded after endpoint_down
    waiter_timeout,  ///< a queued checkout reached its deadline
    lease_overdue,   ///< a lease is held longer than lease_deadline
    adapter_exception,  ///< an adapter hook threw; contained to its worker
};
const char* to_string(event_kind k) noexcept;

struct event {
    event_kind kind;
    std::string_view pool;            ///< the pool's name
    std::uint64_t connection_id = 0;  ///< 0 when not about one connection
    std::error_code error{};          ///< the cause, where there is one
    close_reason reason = close_reason::broken;  ///< for `closed`
    std::chrono::nanoseconds elapsed{0};  ///< connect time, lease time or wait, by kind
};

/// Called synchronously from inside the pool, possibly with the pool's lock held and from
/// any thread running the pool: it must be quick, must not throw and must not call into
/// the pool.
using event_hook = std::function<void(const event&)>;

}  // namespace netpool
