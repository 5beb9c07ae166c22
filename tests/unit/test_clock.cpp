// manual_clock (netpool/clock.hpp): time moves only when told, subscribers run after each
// move, a released subscription is not called. The pools on it: tests/integration/test_pool_clock.cpp.
#include <netpool/clock.hpp>

#include <doctest/doctest.h>

using namespace netpool;
using namespace std::chrono_literals;

TEST_CASE("manual_clock: advance moves time and runs the subscribers; a released handle is not called") {
    manual_clock c;
    const auto t0 = c.now();
    CHECK_FALSE(c.real_time());
    int calls = 0;
    auto sub = c.subscribe([&] { ++calls; });
    c.advance(90s);
    CHECK(c.now() - t0 == 90s);
    CHECK(calls == 1);
    c.advance(-5s);  // counts as zero: time never goes back
    CHECK(c.now() - t0 == 90s);
    CHECK(calls == 2);
    sub.reset();
    c.advance(1s);
    CHECK(calls == 2);
}

TEST_CASE("manual_clock: a subscriber may subscribe another, or drop its own handle, while being called") {
    manual_clock c;
    std::shared_ptr<void> second;
    int first_calls = 0, second_calls = 0;
    std::shared_ptr<void> first;
    first = c.subscribe([&] {
        ++first_calls;
        if (!second) second = c.subscribe([&] { ++second_calls; });
        else first.reset();  // the clock still holds it for this call
    });
    c.advance(1s);
    CHECK(first_calls == 1);
    CHECK(second_calls == 0);  // subscribed during this move: called from the next
    c.advance(1s);
    CHECK(first_calls == 2);
    CHECK(second_calls == 1);
    c.advance(1s);
    CHECK(first_calls == 2);
    CHECK(second_calls == 2);
}
