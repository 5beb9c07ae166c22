// The checkouts waiting for a connection, first come first served. Intrusive: the records
// live in the I/O layer's waiter objects, so queueing allocates nothing. No I/O, no policy.
#pragma once

#include <netpool/time.hpp>

#include <cstddef>

namespace netpool::detail {

/// A queued checkout, embedded in the I/O layer's waiter object.
struct waiter_rec {
    waiter_rec* prev = nullptr;
    waiter_rec* next = nullptr;
    time_point deadline = never;
    time_point enqueued{};
    bool queued = false;
    void* owner = nullptr;  ///< the I/O layer's waiter
};

class waiter_queue {
public:
    waiter_queue() = default;
    waiter_queue(const waiter_queue&) = delete;
    waiter_queue& operator=(const waiter_queue&) = delete;

    void push(waiter_rec& w) noexcept;
    void remove(waiter_rec& w) noexcept;
    /// The oldest waiter, removed; null when none waits.
    waiter_rec* pop() noexcept;

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    /// The oldest waiter whose deadline is still ahead, removed. Those past their deadline on
    /// the way (their timer may not have fired yet) are removed and given to `expired`.
    template <class F> waiter_rec* pop_live(time_point now, F&& expired) {
        while (waiter_rec* w = pop()) {
            if (w->deadline > now) return w;
            expired(*w);
        }
        return nullptr;
    }
    /// Removes every waiter whose deadline passed, oldest first, giving each to `expired`.
    template <class F> void remove_expired(time_point now, F&& expired) {
        for (waiter_rec* w = head_; w;) {
            waiter_rec* after = w->next;
            if (w->deadline <= now) {
                remove(*w);
                expired(*w);
            }
            w = after;
        }
    }
    /// The earliest deadline of those waiting, or never.
    time_point earliest_deadline() const noexcept;

private:
    waiter_rec* head_ = nullptr;
    waiter_rec* tail_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace netpool::detail
