#include <netpool/pool_set.hpp>

#include <algorithm>
#include <numeric>
#include <optional>

namespace netpool {

pool_set::pool_set(asio::any_io_executor ex, std::vector<endpoint> endpoints, any_adapter adapter, pool_options options,
                   pool_set_options set, std::string name)
    : set_(set), timeout_(options.checkout_timeout) {
    if (endpoints.empty()) throw config_error("endpoints", "a pool_set needs at least one endpoint");
    if (name.empty()) name = endpoints.front().to_string();
    pools_.reserve(endpoints.size());
    for (auto& ep : endpoints) {
        std::string pool_name = name + "/" + ep.to_string();
        pools_.push_back(std::make_unique<pool>(ex, std::move(ep), adapter, options, std::move(pool_name)));
    }
}

pool_set::~pool_set() { close(); }

std::vector<std::size_t> pool_set::order() {
    std::vector<std::size_t> o(pools_.size());
    std::iota(o.begin(), o.end(), std::size_t{0});
    switch (set_.policy) {
    case selection::priority: break;
    case selection::round_robin:
        std::rotate(o.begin(), o.begin() + static_cast<std::ptrdiff_t>(next_++ % o.size()), o.end());
        break;
    case selection::least_loaded: {
        std::vector<pool::load_info> load(pools_.size());
        for (std::size_t i = 0; i < pools_.size(); ++i) load[i] = pools_[i]->load();
        const auto free_of = [&](std::size_t i) {
            const auto& l = load[i];
            const std::size_t busy = l.leased + l.waiters;
            return l.capacity > busy ? l.capacity - busy : 0;
        };
        // Ties keep the given order, rotated so that equal endpoints share the work.
        std::rotate(o.begin(), o.begin() + static_cast<std::ptrdiff_t>(next_++ % o.size()), o.end());
        std::stable_sort(o.begin(), o.end(), [&](std::size_t a, std::size_t b) {
            if ((load[a].idle > 0) != (load[b].idle > 0)) return load[a].idle > 0;
            return free_of(a) > free_of(b);
        });
        break;
    }
    }
    return o;
}

asio::awaitable<std::pair<std::error_code, lease>> pool_set::checkout(std::chrono::milliseconds timeout) {
    std::size_t from = 0;
    co_return co_await checkout_excluding(timeout, std::vector<bool>(pools_.size(), false), from);
}

asio::awaitable<std::pair<std::error_code, lease>> pool_set::checkout_excluding(std::chrono::milliseconds timeout,
                                                                                const std::vector<bool>& skip,
                                                                                std::size_t& from) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::min(timeout, std::chrono::milliseconds(std::chrono::hours(24 * 365)));
    const auto candidates = order();
    std::optional<std::size_t> first_down;
    for (const std::size_t i : candidates) {
        if (skip[i]) continue;
        pool& p = *pools_[i];
        if (p.load().endpoint_down) {
            if (!first_down) first_down = i;
            continue;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        auto [ec, l] = co_await p.checkout(std::max(left, std::chrono::milliseconds(1)));
        if (!ec) {
            from = i;
            co_return std::pair{ec, std::move(l)};
        }
        // It went down while this waited (waiters then fail fast): on to the next one.
        if (ec == condition::endpoint_down) {
            if (!first_down) first_down = i;
            continue;
        }
        co_return std::pair{ec, lease{}};
    }
    // Every endpoint we may use is down: its own checkout fails fast with its cause.
    if (!first_down) co_return std::pair{std::error_code(errc::endpoint_down_refused), lease{}};
    from = *first_down;
    co_return co_await pools_[*first_down]->checkout(std::chrono::milliseconds(1));
}

std::vector<pool_stats> pool_set::stats() const {
    std::vector<pool_stats> out;
    out.reserve(pools_.size());
    for (const auto& p : pools_) out.push_back(p->stats());
    return out;
}

void pool_set::set_event_hook(const event_hook& hook) {
    for (auto& p : pools_) p->set_event_hook(hook);
}

void pool_set::close() {
    for (auto& p : pools_) p->close();
}

}  // namespace netpool
