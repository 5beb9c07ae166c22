// A small deterministic generator for the pool's jitter (lifetimes, backoff): seeded per
// pool, so tests replay a run exactly. Not for anything secret.
#pragma once

#include <cstdint>

namespace netpool::detail {

class jitter_rng {
public:
    explicit jitter_rng(std::uint64_t seed) noexcept : s_(seed ? seed : 1) {}
    /// Uniform in [0, 1) (xorshift64*).
    double next01() noexcept {
        s_ ^= s_ >> 12;
        s_ ^= s_ << 25;
        s_ ^= s_ >> 27;
        return static_cast<double>((s_ * 2685821657736338717ull) >> 11) * 0x1.0p-53;
    }

private:
    std::uint64_t s_;
};

}  // namespace netpool::detail
