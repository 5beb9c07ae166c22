// The echo protocol adapter: greeting check, ping health check, and framed requests.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/echo/frame.hpp>

#include <asio/awaitable.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace netpool::echo {

/// Speaks the echo protocol on a connected stream. Satisfies netpool::protocol_adapter and
/// keeps no per-connection state, so one object serves every connection of a pool.
///
/// Errors (from every hook and from request()): errc::connection_closed when the server
/// closes or resets the connection mid-exchange; errc::protocol_error for bytes the protocol
/// does not allow; errc::frame_too_large for a frame over max_frame(); other system errors
/// as they come from the socket.
/// Timeouts: none of its own; the pool bounds hooks, and a caller bounds request() (see
/// netpool::with_timeout). Cancellation: per-operation cancellation is supported; the
/// connection is then in an unknown state and must be discarded.
/// Thread safety: the adapter is immutable and may be shared; one connection is used by one
/// coroutine at a time.
class adapter {
public:
    /// Throws config_error("max_frame", ...) unless 0 < max_frame <= max_declarable_frame.
    explicit adapter(std::size_t max_frame = default_max_frame);

    std::string_view name() const noexcept { return "echo"; }
    std::size_t max_frame() const noexcept { return max_frame_; }

    /// Reads the server's greeting line. Errors: handshake_rejected for any line other than
    /// echo::greeting; connection_closed on EOF before a whole line; protocol_error for a
    /// line longer than any greeting could be, or bytes following it unasked.
    asio::awaitable<std::error_code> handshake(connection& c) const;
    /// A ping: an empty frame, which the server echoes. protocol_error if the reply is not
    /// an empty frame.
    asio::awaitable<std::error_code> health_check(connection& c) const;
    /// The protocol has no session state to reset.
    asio::awaitable<std::error_code> reset(connection& c) const;
    /// Nothing to say before closing: the pool closes the socket.
    asio::awaitable<void> close(connection& c) const;
    /// Reset only when a lease holder asked for it.
    bool needs_reset(const connection& c) const noexcept { return c.reset_requested(); }

    /// Sends `payload` as one frame and reads the reply frame into `reply` (resized to the
    /// reply; its capacity is reused, so a caller that keeps one string allocates nothing in
    /// steady state). Errors: frame_too_large if the request or the declared reply exceeds
    /// max_frame() (checked before anything is sent or allocated); connection_closed;
    /// protocol_error if the server sends more than one reply.
    asio::awaitable<std::error_code> request(connection& c, std::string_view payload, std::string& reply) const;

private:
    std::size_t max_frame_;
};

/// Adds "echo" to `registry`. Parameters: {"max_frame": "<bytes>"} (optional). make()
/// throws config_error naming the parameter for a bad value or an unknown parameter.
void register_echo_adapter(adapter_registry& registry);

}  // namespace netpool::echo
