// The handle a checkout returns.
#pragma once

#include <netpool/connection.hpp>

#include <utility>

namespace netpool {

namespace detail {
class pool_impl;
struct worker;
/// Checks a connection back in (pool.cpp). Never throws.
void lease_checkin(pool_impl& p, worker& w, bool discard, bool skip_reset) noexcept;
}  // namespace detail

/// What a checkout returns: exclusive use of one connection until destroyed or released.
/// Move-only; destroying it checks the connection back in.
///
/// Thread safety: one holder at a time. Object lifetimes: a lease must be released before
/// the io_context that runs its pool is destroyed; it may outlive the `pool` object.
class lease {
public:
    lease() noexcept = default;
    lease(lease&& o) noexcept
        : impl_(std::exchange(o.impl_, nullptr)), worker_(std::exchange(o.worker_, nullptr)),
          conn_(std::exchange(o.conn_, nullptr)), discard_(o.discard_), skip_reset_(o.skip_reset_) {}
    lease& operator=(lease&& o) noexcept {
        if (this != &o) {
            release();
            impl_ = std::exchange(o.impl_, nullptr);
            worker_ = std::exchange(o.worker_, nullptr);
            conn_ = std::exchange(o.conn_, nullptr);
            discard_ = o.discard_;
            skip_reset_ = o.skip_reset_;
        }
        return *this;
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() { release(); }

    explicit operator bool() const noexcept { return conn_ != nullptr; }
    /// Precondition: *this holds a connection.
    connection& get() const noexcept { return *conn_; }
    connection& operator*() const noexcept { return *conn_; }
    connection* operator->() const noexcept { return conn_; }

    /// The connection is broken or in an unknown state: close it and replace it.
    void discard() noexcept { discard_ = true; }
    /// Whether discard() was called.
    bool discarded() const noexcept { return discard_; }
    /// Return it without the adapter's reset (the holder knows the session is clean).
    void skip_reset() noexcept { skip_reset_ = true; }
    /// Check the connection back in now. Idempotent.
    void release() noexcept {
        if (impl_) {
            detail::lease_checkin(*impl_, *worker_, discard_, skip_reset_);
            impl_ = nullptr;
            worker_ = nullptr;
            conn_ = nullptr;
        }
    }

private:
    friend class detail::pool_impl;
    lease(detail::pool_impl* p, detail::worker* w, connection* c) noexcept : impl_(p), worker_(w), conn_(c) {}
    detail::pool_impl* impl_ = nullptr;
    detail::worker* worker_ = nullptr;
    connection* conn_ = nullptr;
    bool discard_ = false;
    bool skip_reset_ = false;
};

}  // namespace netpool
