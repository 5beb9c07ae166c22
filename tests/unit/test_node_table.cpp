// node_table: the slots' statuses, their counts and the idle and parked lists in step.
#include <netpool/detail/node_table.hpp>

#include <doctest/doctest.h>

#include <set>

using namespace netpool;
using namespace netpool::detail;

namespace {
std::size_t counted(const node_table& t) {
    std::size_t sum = 0;
    for (std::size_t s = 0; s < node_status_count; ++s) sum += t.count(static_cast<node_status>(s));
    return sum;
}
}  // namespace

TEST_CASE("node_table: a new node starts, with a fresh id, and is counted") {
    node_table t(idle_order::lifo);
    node_rec& a = t.add(false);
    node_rec& b = t.add(true);
    CHECK(a.id != b.id);
    CHECK(a.status == node_status::starting);
    CHECK_FALSE(a.overflow);
    CHECK(b.overflow);
    CHECK(t.total() == 2);
    CHECK(t.count(node_status::starting) == 2);
    CHECK(t.on_the_way() == 2);
    CHECK(t.open() == 2);
}

TEST_CASE("node_table: counts follow every status change, and the lists hold exactly idle and parked nodes") {
    node_table t(idle_order::lifo);
    node_rec* n[4];
    for (auto& p : n) p = &t.add(false);
    t.set_status(*n[0], node_status::idle);
    t.set_status(*n[1], node_status::parked);
    t.set_status(*n[2], node_status::leased);
    t.set_status(*n[3], node_status::closing);
    CHECK(t.count(node_status::idle) == 1);
    CHECK(t.count(node_status::parked) == 1);
    CHECK(t.count(node_status::starting) == 0);
    CHECK(counted(t) == t.total());
    CHECK(t.open() == 3);
    CHECK(t.on_the_way() == 1);  // the parked one
    CHECK(t.idle_first() == n[0]);
    CHECK(t.first_parked() == n[1]);

    t.set_status(*n[0], node_status::leased);  // leaves the idle list
    t.set_status(*n[1], node_status::connecting);
    CHECK(t.idle_first() == nullptr);
    CHECK(t.first_parked() == nullptr);
    CHECK(counted(t) == t.total());
}

TEST_CASE("node_table: LIFO leases the most recently idled, FIFO the oldest; the coldest is the oldest") {
    for (auto order : {idle_order::lifo, idle_order::fifo}) {
        CAPTURE(static_cast<int>(order));
        node_table t(order);
        node_rec& a = t.add(false);
        node_rec& b = t.add(false);
        node_rec& c = t.add(false);
        for (node_rec* p : {&a, &b, &c}) t.set_status(*p, node_status::idle);  // a idled first
        const bool lifo = order == idle_order::lifo;
        CHECK(t.idle_first() == (lifo ? &c : &a));
        CHECK(t.idle_after(*t.idle_first()) == &b);
        CHECK(t.idle_after(b) == (lifo ? &a : &c));
        CHECK(t.idle_after(*t.idle_after(b)) == nullptr);
        CHECK(t.coldest_idle() == &a);
    }
}

TEST_CASE("node_table: the parked list is first come, first served") {
    node_table t(idle_order::lifo);
    node_rec& a = t.add(false);
    node_rec& b = t.add(false);
    t.set_status(b, node_status::parked);
    t.set_status(a, node_status::parked);
    CHECK(t.first_parked() == &b);
    t.set_status(b, node_status::connecting);
    CHECK(t.first_parked() == &a);
}

TEST_CASE("node_table: remove unlinks from its list and keeps every other node reachable") {
    node_table t(idle_order::fifo);
    std::set<node_rec*> all;
    for (int i = 0; i < 5; ++i) {
        node_rec& n = t.add(false);
        t.set_status(n, node_status::idle);
        all.insert(&n);
    }
    node_rec* middle = t.idle_after(*t.idle_first());
    all.erase(middle);
    t.remove(*middle);
    CHECK(t.total() == 4);
    CHECK(t.count(node_status::idle) == 4);
    std::set<node_rec*> listed, positioned;
    for (node_rec* n = t.idle_first(); n; n = t.idle_after(*n)) listed.insert(n);
    for (std::size_t i = 0; i < t.total(); ++i) positioned.insert(&t.at(i));
    CHECK(listed == all);
    CHECK(positioned == all);
    CHECK(to_string(node_status::parked) == std::string("parked"));
}
