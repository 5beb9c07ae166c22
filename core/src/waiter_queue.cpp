// The waiting checkouts: see waiter_queue.hpp.
#include <netpool/detail/waiter_queue.hpp>

#include <algorithm>

namespace netpool::detail {

void waiter_queue::push(waiter_rec& w) noexcept {
    w.next = nullptr;
    w.prev = tail_;
    if (tail_) tail_->next = &w; else head_ = &w;
    tail_ = &w;
    w.queued = true;
    ++size_;
}

void waiter_queue::remove(waiter_rec& w) noexcept {
    if (w.prev) w.prev->next = w.next; else head_ = w.next;
    if (w.next) w.next->prev = w.prev; else tail_ = w.prev;
    w.prev = w.next = nullptr;
    w.queued = false;
    --size_;
}

waiter_rec* waiter_queue::pop() noexcept {
    waiter_rec* w = head_;
    if (w) remove(*w);
    return w;
}

time_point waiter_queue::earliest_deadline() const noexcept {
    time_point t = never;
    for (const waiter_rec* w = head_; w; w = w->next) t = std::min(t, w->deadline);
    return t;
}

}  // namespace netpool::detail
