// The pool's slots and their statuses: see node_table.hpp.
#include <netpool/detail/node_table.hpp>

#include <algorithm>
#include <cassert>

namespace netpool::detail {

const char* to_string(node_status s) noexcept {
    switch (s) {
    case node_status::starting: return "starting";
    case node_status::connecting: return "connecting";
    case node_status::parked: return "parked";
    case node_status::idle: return "idle";
    case node_status::leased: return "leased";
    case node_status::checking: return "checking";
    case node_status::resetting: return "resetting";
    case node_status::closing: return "closing";
    }
    return "?";
}

node_rec& node_table::add(bool overflow) {
    auto owned = std::make_unique<node_rec>();
    node_rec& n = *owned;
    n.id = next_id_++;
    n.overflow = overflow;
    n.status = node_status::starting;
    ++counts_[static_cast<std::size_t>(node_status::starting)];
    nodes_.push_back(std::move(owned));
    return n;
}

void node_table::remove(node_rec& n) {
    if (list* l = list_of(n.status)) unlink(*l, n);
    --counts_[static_cast<std::size_t>(n.status)];
    auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const auto& p) { return p.get() == &n; });
    assert(it != nodes_.end());
    std::swap(*it, nodes_.back());
    nodes_.pop_back();  // n is gone from here on
}

void node_table::set_status(node_rec& n, node_status s) {
    if (list* l = list_of(n.status)) unlink(*l, n);
    --counts_[static_cast<std::size_t>(n.status)];
    ++counts_[static_cast<std::size_t>(s)];
    n.status = s;
    if (s == node_status::idle) {
        n.sat_idle = true;
        push_front(idle_, n);
    }
    else if (s == node_status::parked) push_back(parked_, n);
}

std::size_t node_table::on_the_way() const noexcept {
    return count(node_status::starting) + count(node_status::connecting) + count(node_status::parked) +
           count(node_status::checking) + count(node_status::resetting);
}

node_table::list* node_table::list_of(node_status s) noexcept {
    if (s == node_status::idle) return &idle_;
    if (s == node_status::parked) return &parked_;
    return nullptr;
}

void node_table::push_front(list& l, node_rec& n) noexcept {
    n.prev = nullptr;
    n.next = l.head;
    if (l.head) l.head->prev = &n;
    l.head = &n;
    if (!l.tail) l.tail = &n;
}

void node_table::push_back(list& l, node_rec& n) noexcept {
    n.next = nullptr;
    n.prev = l.tail;
    if (l.tail) l.tail->next = &n;
    l.tail = &n;
    if (!l.head) l.head = &n;
}

void node_table::unlink(list& l, node_rec& n) noexcept {
    if (n.prev) n.prev->next = n.next; else l.head = n.next;
    if (n.next) n.next->prev = n.prev; else l.tail = n.prev;
    n.prev = n.next = nullptr;
}

}  // namespace netpool::detail
