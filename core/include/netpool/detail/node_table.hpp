// The pool's connection slots and where each one is: the only place a slot's status changes,
// so the per-status counts and the idle and parked lists always agree with the statuses.
// No I/O, no policy: pool_state decides, this keeps the books.
#pragma once

#include <netpool/events.hpp>
#include <netpool/options.hpp>
#include <netpool/time.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace netpool::detail {

/// Where a node is. Each status has a count; only `idle` and `parked` nodes are in a list.
enum class node_status : std::uint8_t {
    starting,    ///< spawned; its worker has not asked what to do yet
    connecting,  ///< connect + TLS + protocol handshake in progress
    parked,      ///< wants to connect; waits at the connect gate (supervisor)
    idle,        ///< connected, free
    leased,      ///< connected, held by a lease
    checking,    ///< health check (on checkout or keepalive)
    resetting,   ///< adapter reset before reuse
    closing,     ///< polite close in progress
};
inline constexpr std::size_t node_status_count = 8;
const char* to_string(node_status s) noexcept;

/// What a woken worker has been asked to do.
enum class node_cmd : std::uint8_t { none, connect, check, reset, close, exit };

/// One connection slot.
struct node_rec {
    std::uint64_t id = 0;
    node_status status = node_status::starting;
    node_cmd pending = node_cmd::none;
    bool overflow = false;         ///< created beyond `size`
    bool exit_after_close = false; ///< closing for good (else reconnect after close)
    bool overdue_reported = false;
    bool has_permit = false;       ///< holds a permit of the registry's global cap
    bool timed = false;            ///< this lease is one of the sample timed precisely
    close_reason closing_reason = close_reason::broken;
    std::uint64_t uses = 0;
    bool sat_idle = false;          ///< its socket has waited in the idle list since it connected
    std::uint64_t connect_gen = 0; ///< the failure generation its current connect started in
    time_point connect_started{};
    time_point expires_at = never;  ///< max_lifetime with jitter
    time_point last_activity{};     ///< last checkin or successful check
    time_point lease_start{};
    node_rec* prev = nullptr;  ///< links of the idle or the parked list
    node_rec* next = nullptr;
    void* io = nullptr;  ///< the I/O layer's worker
};

class node_table {
public:
    explicit node_table(idle_order order) noexcept : order_(order) {}
    node_table(const node_table&) = delete;
    node_table& operator=(const node_table&) = delete;

    /// A new slot in `starting`, with the next id.
    node_rec& add(bool overflow);
    /// Unlinks and destroys `n`.
    void remove(node_rec& n);
    void set_status(node_rec& n, node_status s);

    std::size_t count(node_status s) const noexcept { return counts_[static_cast<std::size_t>(s)]; }
    std::size_t total() const noexcept { return nodes_.size(); }
    /// Slots on their way to becoming free (spawned, connecting, at the gate, checked, reset).
    std::size_t on_the_way() const noexcept;
    /// Slots not closing: the ones a shrink rule counts against the base size.
    std::size_t open() const noexcept { return total() - count(node_status::closing); }

    /// The idle node to lease next (LIFO: the most recent; FIFO: the oldest), and the one
    /// after it in that order.
    node_rec* idle_first() const noexcept { return order_ == idle_order::lifo ? idle_.head : idle_.tail; }
    node_rec* idle_after(const node_rec& n) const noexcept { return order_ == idle_order::lifo ? n.next : n.prev; }
    /// The idle node unused the longest.
    node_rec* coldest_idle() const noexcept { return idle_.tail; }
    /// The oldest node parked at the connect gate.
    node_rec* first_parked() const noexcept { return parked_.head; }

    /// All nodes by position; positions may change under set_status (never under a
    /// command), and remove() swaps the last node into the removed one's place.
    node_rec& at(std::size_t i) const noexcept { return *nodes_[i]; }

private:
    struct list {
        node_rec* head = nullptr;
        node_rec* tail = nullptr;
    };
    list* list_of(node_status s) noexcept;
    static void push_front(list& l, node_rec& n) noexcept;
    static void push_back(list& l, node_rec& n) noexcept;
    static void unlink(list& l, node_rec& n) noexcept;

    idle_order order_;
    std::vector<std::unique_ptr<node_rec>> nodes_;
    std::array<std::size_t, node_status_count> counts_{};
    list idle_;    // newest at the head
    list parked_;  // oldest at the head
    std::uint64_t next_id_ = 1;
};

}  // namespace netpool::detail
