// A pool's worker: one connection slot's socket, timer and strand (pool.cpp makes it, the
// coroutine in worker.cpp runs it). Internal, not installed.
#pragma once

#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/detail/node_table.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <cstdint>
#include <memory>

namespace asio::ssl { class context; }

namespace netpool {

/// The pool's access to a connection's private bookkeeping.
class detail_access {
public:
    static void on_lease(connection& c, std::uint64_t uses, bool stale) noexcept {
        c.uses_ = uses;
        c.may_be_stale_ = stale;
        c.reset_requested_ = false;
    }
    static void new_session(connection& c) noexcept {
        c.uses_ = 0;
        c.may_be_stale_ = false;
        c.reset_requested_ = false;
        c.clear_state();
    }
};

namespace detail {

struct worker : std::enable_shared_from_this<worker> {
    worker(const endpoint& ep, asio::ssl::context* tls, node_rec& n, asio::strand<asio::any_io_executor> s)
        : strand(s), node(&n), conn(s, ep, tls, n.id), timer(s) {}
    asio::strand<asio::any_io_executor> strand;  // this worker's socket and timer live here
    node_rec* node;
    connection conn;
    asio::steady_timer timer;
    bool timed = false;          // this lease is timed with the precise clock
    time_point lease_started{};  // when it is
};

}  // namespace detail
}  // namespace netpool
