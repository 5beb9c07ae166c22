// Time points and durations for the pool's decisions, with saturating arithmetic: a huge
// timeout, deadline or option means "never", not an overflow into the past.
#pragma once

#include <chrono>
#include <cstdint>

namespace netpool::detail {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
inline constexpr time_point never = time_point::max();

/// A century: as far as a pool is concerned, forever. Option durations are clamped to it
/// (pool_state's constructor), so a sum of a time point and a duration, or a conversion of
/// a duration to the clock's nanoseconds, stays in range (int64 ns covers 292 years).
inline constexpr std::chrono::milliseconds forever{std::int64_t{36525} * 24 * 3600 * 1000};

constexpr std::chrono::milliseconds saturate(std::chrono::milliseconds d) noexcept { return d > forever ? forever : d; }

/// `t + d`, or `never` when that would leave the clock's range (e.g. d = milliseconds::max()).
/// A negative d counts as zero.
constexpr time_point later(time_point t, std::chrono::milliseconds d) noexcept {
    if (d.count() <= 0) return t;
    if (t == never || d >= std::chrono::duration_cast<std::chrono::milliseconds>(never - t)) return never;
    return t + d;
}

}  // namespace netpool::detail
