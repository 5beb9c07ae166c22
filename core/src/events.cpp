// Names of the event enums: the same strings appear in logs, JSON stats and Prometheus
// labels, so they are spelled exactly like the enumerators.
#include <netpool/events.hpp>

namespace netpool {

const char* to_string(close_reason r) noexcept {
    switch (r) {
    case close_reason::broken: return "broken";
    case close_reason::idle: return "idle";
    case close_reason::lifetime: return "lifetime";
    case close_reason::max_uses: return "max_uses";
    case close_reason::overflow: return "overflow";
    case close_reason::health: return "health";
    case close_reason::overdue: return "overdue";
    case close_reason::drain: return "drain";
    }
    return "unknown";
}

const char* to_string(checkout_result r) noexcept {
    switch (r) {
    case checkout_result::ok: return "ok";
    case checkout_result::timeout: return "timeout";
    case checkout_result::exhausted: return "exhausted";
    case checkout_result::cancelled: return "cancelled";
    case checkout_result::endpoint_down: return "endpoint_down";
    case checkout_result::closed: return "closed";
    }
    return "unknown";
}

const char* to_string(event_kind k) noexcept {
    switch (k) {
    case event_kind::created: return "created";
    case event_kind::connect_failed: return "connect_failed";
    case event_kind::checked_out: return "checked_out";
    case event_kind::checked_in: return "checked_in";
    case event_kind::discarded: return "discarded";
    case event_kind::closed: return "closed";
    case event_kind::endpoint_down: return "endpoint_down";
    case event_kind::endpoint_up: return "endpoint_up";
    case event_kind::waiter_timeout: return "waiter_timeout";
    case event_kind::lease_overdue: return "lease_overdue";
    case event_kind::adapter_exception: return "adapter_exception";
    }
    return "unknown";
}

// The counts in events.hpp size the stats arrays; catch an enumerator added without them.
static_assert(static_cast<std::size_t>(close_reason::drain) + 1 == close_reason_count);
static_assert(static_cast<std::size_t>(checkout_result::closed) + 1 == checkout_result_count);

}  // namespace netpool
