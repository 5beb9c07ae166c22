// A snapshot of one pool: gauges, counters and latency histograms.
#pragma once

#include <netpool/events.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace netpool {

/// Fixed log2 buckets over microseconds: bucket i counts values <= 2^i µs
/// (i = 0..26, about 67 s); the last bucket counts everything larger.
struct histogram {
    static constexpr std::size_t bucket_count = 28;
    std::array<std::uint64_t, bucket_count> buckets{};
    std::uint64_t count = 0;
    double sum_seconds = 0;

    void record(std::chrono::nanoseconds d) noexcept;
    /// record(0), on the checkout fast path.
    void record_zero() noexcept {
        ++buckets[0];
        ++count;
    }
    /// Upper bound of bucket i in seconds (+inf for the last).
    static double upper_bound_seconds(std::size_t i) noexcept;
    /// Approximate quantile (q in [0,1]) in seconds: the upper bound of the bucket holding it.
    double quantile(double q) const noexcept;
    void merge(const histogram& o) noexcept;
};

struct pool_stats {
    std::string name;
    std::string endpoint;  ///< endpoint::to_string(); never credentials
    std::string protocol;  ///< adapter name

    // Gauges.
    std::size_t idle = 0;
    std::size_t leased = 0;
    std::size_t connecting = 0;  ///< connecting, handshaking, or waiting to retry
    std::size_t busy = 0;        ///< health check, reset or close in progress
    std::size_t overflow = 0;    ///< workers open beyond `size`
    std::size_t waiters = 0;
    std::size_t size = 0;          ///< configured base size
    std::size_t max_overflow = 0;  ///< configured overflow
    bool endpoint_down = false;
    bool draining = false;

    // Counters.
    std::array<std::uint64_t, checkout_result_count> checkouts{};  ///< by checkout_result
    std::array<std::uint64_t, close_reason_count> closes{};       ///< by close_reason
    std::uint64_t connects_ok = 0;
    std::uint64_t connects_failed = 0;
    std::uint64_t health_checks_failed = 0;
    std::uint64_t leases_overdue = 0;
    std::uint64_t adapter_exceptions = 0;

    // Histograms.
    histogram checkout_wait;
    histogram connect_time;
    histogram lease_time;  ///< sampled: one lease in 16 is timed (pool_state::lease_sample_every)
};

/// JSON object of one snapshot (nlohmann_json's dump of it), field names as above.
std::string to_json(const pool_stats& s);
/// JSON array of several snapshots.
std::string to_json(const std::vector<pool_stats>& all);
/// Prometheus text exposition (version 0.0.4) of several pools, labelled by pool name:
/// netpool_connections{pool,state}, netpool_waiters{pool}, netpool_checkouts_total{pool,result},
/// netpool_connects_total{pool,result}, netpool_closes_total{pool,reason},
/// netpool_endpoint_down{pool}, netpool_checkout_wait_seconds, netpool_connect_seconds,
/// netpool_lease_seconds (histograms).
std::string to_prometheus(const std::vector<pool_stats>& all);

}  // namespace netpool
