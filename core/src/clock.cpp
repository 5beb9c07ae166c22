#include <netpool/clock.hpp>

#include <algorithm>
#include <utility>

namespace netpool {

struct manual_clock::subscriber {
    std::function<void()> moved;
};

manual_clock::manual_clock() : now_(std::chrono::steady_clock::now()) {}
manual_clock::manual_clock(time_point start) noexcept : now_(start) {}

manual_clock::time_point manual_clock::now() const noexcept {
    std::lock_guard lk(mu_);
    return now_;
}

std::shared_ptr<void> manual_clock::subscribe(std::function<void()> moved) {
    auto s = std::make_shared<subscriber>(subscriber{std::move(moved)});
    std::lock_guard lk(mu_);
    std::erase_if(subscribers_, [](const std::weak_ptr<subscriber>& w) { return w.expired(); });
    subscribers_.push_back(s);
    return s;
}

void manual_clock::advance(std::chrono::nanoseconds d) {
    std::vector<std::shared_ptr<subscriber>> live;
    {
        std::lock_guard lk(mu_);
        if (d.count() > 0) now_ += std::chrono::duration_cast<time_point::duration>(d);
        for (const auto& w : subscribers_)
            if (auto s = w.lock()) live.push_back(std::move(s));
    }
    // Outside the lock: a subscriber reads now() and may subscribe or unsubscribe.
    for (const auto& s : live) s->moved();
}

}  // namespace netpool
