// Pool options: a plain struct with defaults, checked once by validate().
#pragma once

#include <netpool/clock.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace netpool {

using duration = std::chrono::milliseconds;

/// Which idle connection a checkout gets.
enum class idle_order {
    lifo,  ///< most recently returned first: keeps few connections hot (default)
    fifo,  ///< least recently returned first: spreads wear across connections
};

/// Thrown for an impossible option value; what() names the field (or the JSON path).
class config_error : public std::invalid_argument {
public:
    config_error(std::string field, const std::string& problem)
        : std::invalid_argument(field + ": " + problem), field_(std::move(field)) {}
    /// The offending field, e.g. "max_overflow" or, for JSON input, "/pool/max_overflow".
    const std::string& field() const noexcept { return field_; }

private:
    std::string field_;
};

/// Sizing, timeouts and lifecycle of one pool. A zero duration disables the feature it
/// controls unless the field's comment says otherwise. Durations saturate: a value past a
/// century (milliseconds::max() included) means "never".
struct pool_options {
    // Sizing (poolboy's size and max_overflow).
    std::size_t size = 10;          ///< base workers, kept open
    std::size_t max_overflow = 10;  ///< extra workers created under load, closed after
    bool lazy = false;              ///< connect base workers on first demand instead of at start
    duration overflow_ttl{0};       ///< how long a returned overflow worker lingers idle (0: closes at once)

    // Checkout.
    duration checkout_timeout{5000};  ///< default checkout deadline (must be > 0)
    std::size_t max_waiters = 0;      ///< cap on queued checkouts; 0 = unbounded
    idle_order order = idle_order::lifo;

    // Connection set-up.
    duration connect_timeout{5000};    ///< TCP connect (must be > 0)
    duration handshake_timeout{10000}; ///< TLS + protocol handshake (must be > 0)
    /// Reuse a host name's resolved addresses for connects this long; 0: resolve at every
    /// connect. A connect that fails on every cached address drops them, so the next one
    /// resolves again. (An IP literal is never looked up.)
    duration dns_refresh{0};
    duration close_timeout{1000};      ///< polite close (QUIT/LOGOUT) before the socket is shut (must be > 0)
    duration reset_timeout{5000};      ///< adapter reset before reuse (must be > 0)
    duration health_check_timeout{5000};  ///< one health check (must be > 0)

    // Health and lifetime.
    duration health_check_after_idle{30000};  ///< check at checkout if idle longer than this
    duration keepalive_interval{0};           ///< health-check idle connections this often
    duration idle_timeout{0};      ///< close connections idle this long, never below `size`
    duration max_lifetime{0};      ///< retire connections this old (after their current lease)
    double lifetime_jitter = 0.1;  ///< fraction of max_lifetime subtracted at random, in [0, 0.5]
    std::uint64_t max_uses = 0;    ///< retire after this many leases; 0 = unlimited
    duration lease_deadline{0};    ///< report leases held longer than this

    // Supervision (OTP intensity/period plus backoff).
    duration backoff_initial{100};  ///< shortest delay before the next attempt after a failure (must be > 0);
                                    ///< the delay grows to an eighth of the failure episode's age
    duration backoff_max{10000};    ///< cap on that delay (>= backoff_initial)
    double backoff_jitter = 0.5;    ///< fraction of each delay drawn at random, in [0, 1]
    std::size_t max_restarts = 10;  ///< failures tolerated within restart_period (connects failing together count once)
    duration restart_period{10000}; ///< window for max_restarts (must be > 0)
    duration down_cooldown{5000};   ///< endpoint down: longest wait between probes, and the wait after a
                                    ///< certificate fails verification (must be > 0)

    /// The clock the pool's decisions are made on (see clock.hpp); null: the steady clock.
    /// Not part of the JSON form. A pool made by a registry without one takes the registry's.
    std::shared_ptr<pool_clock> clock;

    /// Throws config_error naming the first impossible field.
    void validate() const;
};

/// Parses pool options from a JSON object (fields as above; durations in milliseconds,
/// `order` as "lifo"/"fifo"). Unknown fields are errors. Throws config_error whose field()
/// is the JSON pointer of the offending value, e.g. "/max_overflow".
pool_options parse_pool_options(std::string_view json_text);

}  // namespace netpool
