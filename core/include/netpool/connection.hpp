// One pooled connection as an adapter and a lease holder see it.
#pragma once

#include <netpool/endpoint.hpp>
#include <netpool/stream.hpp>

#include <any>
#include <cstdint>

// Only ever used through a pointer, so a build without TLS needs no OpenSSL header here.
namespace asio::ssl { class context; }

namespace netpool {

class connection {
public:
    connection(asio::any_io_executor ex, const endpoint& ep, asio::ssl::context* tls_ctx, std::uint64_t id)
        : stream_(std::move(ex)), endpoint_(&ep), tls_ctx_(tls_ctx), id_(id) {}

    /// The byte stream (TCP, or TLS over TCP).
    netpool::stream& io() noexcept { return stream_; }
    const endpoint& remote() const noexcept { return *endpoint_; }
    /// The pool's TLS context (for STARTTLS); null when the endpoint's tls is none, and
    /// always null when netpool was built without TLS.
    asio::ssl::context* tls_context() const noexcept { return tls_ctx_; }
    /// Unique within the process; stable across reconnects of the same worker.
    std::uint64_t id() const noexcept { return id_; }
    /// Leases served since the current socket was opened.
    std::uint64_t uses() const noexcept { return uses_; }

    /// Adapter-owned per-connection state (capabilities, selected mailbox, ...).
    /// Cleared when the worker reconnects.
    std::any& state() noexcept { return state_; }
    const std::any& state() const noexcept { return state_; }

    /// Ask for the adapter's reset before this connection is reused (e.g. after a
    /// failed transaction). Cleared at each checkout.
    void request_reset() noexcept { reset_requested_ = true; }
    bool reset_requested() const noexcept { return reset_requested_; }

private:
    friend class detail_access;
    netpool::stream stream_;
    const endpoint* endpoint_;
    asio::ssl::context* tls_ctx_;
    std::uint64_t id_;
    std::uint64_t uses_ = 0;
    bool reset_requested_ = false;
    std::any state_;
};

}  // namespace netpool
