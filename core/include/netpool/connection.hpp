// One pooled connection as an adapter and a lease holder see it.
#pragma once

#include <netpool/endpoint.hpp>
#include <netpool/stream.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

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
    /// False only when the socket was opened for this lease and went straight to it. True
    /// when it served an earlier lease or waited in the idle list (a base connection opened
    /// at start that no caller has used yet counts): the server may have closed it
    /// meanwhile, which only a read shows. Check before sending what must not be sent twice.
    bool may_be_stale() const noexcept { return may_be_stale_; }

    /// Adapter-owned per-connection state (a kit::session, capabilities, the selected
    /// mailbox...), of any type, copyable or not. Made by the adapter's handshake() and
    /// destroyed by the pool when the worker reconnects or closes.
    ///
    /// Replaces any state there was with a T made from `args`; returns it.
    template <class T, class... Args>
    T& emplace_state(Args&&... args) {
        state_.reset();
        auto owned = std::make_unique<T>(std::forward<Args>(args)...);
        T& ref = *owned;
        state_ = state_ptr(owned.release(), [](void* p) noexcept { delete static_cast<T*>(p); });
        state_type_ = &typeid(T);
        return ref;
    }
    /// The state if it is a T, else null (none yet, or another adapter's).
    template <class T> T* state_if() noexcept { return holds<T>() ? static_cast<T*>(state_.get()) : nullptr; }
    template <class T> const T* state_if() const noexcept {
        return holds<T>() ? static_cast<const T*>(state_.get()) : nullptr;
    }
    /// The state as a T. Throws std::logic_error if it is not one (no handshake by this
    /// adapter yet: a connection used with the wrong adapter).
    template <class T> T& state_as() {
        if (T* s = state_if<T>()) return *s;
        throw std::logic_error(std::string("netpool::connection::state_as: the connection holds no ") +
                               typeid(T).name() + " (was it opened by this adapter's handshake?)");
    }
    bool has_state() const noexcept { return state_ != nullptr; }
    void clear_state() noexcept {
        state_.reset();
        state_type_ = nullptr;
    }

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
    bool may_be_stale_ = false;
    bool reset_requested_ = false;
    using state_ptr = std::unique_ptr<void, void (*)(void*) noexcept>;
    template <class T> bool holds() const noexcept { return state_type_ != nullptr && *state_type_ == typeid(T); }
    state_ptr state_{nullptr, [](void*) noexcept {}};
    const std::type_info* state_type_ = nullptr;
};

}  // namespace netpool
