// waiter_queue: fair (first come, first served) waiting with deadlines, without allocation.
#include <netpool/detail/waiter_queue.hpp>

#include <doctest/doctest.h>

#include <vector>

using namespace netpool::detail;
using namespace std::chrono_literals;

namespace {
const time_point t0 = time_point{} + 1h;

std::vector<waiter_rec*> drain_all(waiter_queue& q) {
    std::vector<waiter_rec*> out;
    while (waiter_rec* w = q.pop()) out.push_back(w);
    return out;
}
}  // namespace

TEST_CASE("waiter_queue: first come, first served; remove from the middle keeps the order") {
    waiter_queue q;
    waiter_rec a, b, c;
    for (waiter_rec* w : {&a, &b, &c}) q.push(*w);
    CHECK(q.size() == 3);
    CHECK(b.queued);
    q.remove(b);
    CHECK_FALSE(b.queued);
    CHECK(q.size() == 2);
    CHECK(drain_all(q) == std::vector<waiter_rec*>{&a, &c});
    CHECK(q.empty());
    CHECK_FALSE(a.queued);
    CHECK(q.pop() == nullptr);
}

TEST_CASE("waiter_queue: pop_live skips (and reports) waiters past their deadline, oldest first") {
    waiter_queue q;
    waiter_rec late1, late2, live, after;
    late1.deadline = t0 - 1ms;
    late2.deadline = t0;  // a deadline of exactly now has passed
    live.deadline = t0 + 1ms;
    after.deadline = t0 - 5ms;  // behind a live one: not reached
    for (waiter_rec* w : {&late1, &late2, &live, &after}) q.push(*w);
    std::vector<waiter_rec*> expired;
    CHECK(q.pop_live(t0, [&](waiter_rec& w) { expired.push_back(&w); }) == &live);
    CHECK(expired == std::vector<waiter_rec*>{&late1, &late2});
    CHECK(q.size() == 1);
    CHECK(q.pop_live(t0, [&](waiter_rec& w) { expired.push_back(&w); }) == nullptr);
    CHECK(expired.size() == 3);
    CHECK(q.empty());
}

TEST_CASE("waiter_queue: remove_expired takes every late waiter wherever it is; earliest_deadline sees the rest") {
    waiter_queue q;
    waiter_rec a, b, c, d;
    a.deadline = t0 + 10ms;
    b.deadline = t0 - 1ms;
    c.deadline = t0 + 3ms;
    d.deadline = t0;
    for (waiter_rec* w : {&a, &b, &c, &d}) q.push(*w);
    CHECK(q.earliest_deadline() == t0 - 1ms);
    std::vector<waiter_rec*> expired;
    q.remove_expired(t0, [&](waiter_rec& w) { expired.push_back(&w); });
    CHECK(expired == std::vector<waiter_rec*>{&b, &d});
    CHECK(q.earliest_deadline() == t0 + 3ms);
    CHECK(drain_all(q) == std::vector<waiter_rec*>{&a, &c});
    CHECK(q.earliest_deadline() == never);
}
