// A TCP socket with an optional TLS layer on top: what an adapter reads and writes.
#pragma once

#include <netpool/config.hpp>

#include <asio/async_result.hpp>
#include <asio/ip/tcp.hpp>
#if NETPOOL_HAS_TLS
#include <asio/ssl.hpp>
#endif

#include <optional>
#include <system_error>
#include <utility>

namespace netpool {

/// Byte stream of one pooled connection. Satisfies Asio's AsyncReadStream and
/// AsyncWriteStream (one completion signature whether TLS is on or not), so
/// asio::async_read/async_write/async_read_until work on it with any completion token.
/// Thread safety: one holder at a time (the lease's), like any Asio socket.
/// Built without TLS (NETPOOL_HAS_TLS 0), it is a plain TCP socket: is_tls() is always
/// false, and tls_stream, tls() and emplace_tls() do not exist.
class stream {
public:
    using executor_type = asio::any_io_executor;
#if NETPOOL_HAS_TLS
    using tls_stream = asio::ssl::stream<asio::ip::tcp::socket&>;
#endif

    explicit stream(executor_type ex) : socket_(std::move(ex)) {}
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    asio::ip::tcp::socket& socket() noexcept { return socket_; }
    const asio::ip::tcp::socket& socket() const noexcept { return socket_; }

#if NETPOOL_HAS_TLS
    bool is_tls() const noexcept { return tls_.has_value(); }
    /// The TLS layer; precondition: is_tls().
    tls_stream& tls() noexcept { return *tls_; }
    /// Puts a TLS layer over the connected socket (the handshake is the caller's, see
    /// transport.hpp). Precondition: !is_tls().
    tls_stream& emplace_tls(asio::ssl::context& ctx) { return tls_.emplace(socket_, ctx); }
#else
    bool is_tls() const noexcept { return false; }
#endif

    /// Completion signature: void(std::error_code, std::size_t), with or without TLS, so any
    /// completion token works (use_awaitable, deferred, as_tuple, a callback).
    template <class Buffers, class Token>
    auto async_read_some(const Buffers& b, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
            [this](auto handler, const Buffers& buffers) {
#if NETPOOL_HAS_TLS
                if (tls_) return tls_->async_read_some(buffers, std::move(handler));
#endif
                socket_.async_read_some(buffers, std::move(handler));
            },
            token, b);
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& b, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
            [this](auto handler, const Buffers& buffers) {
#if NETPOOL_HAS_TLS
                if (tls_) return tls_->async_write_some(buffers, std::move(handler));
#endif
                socket_.async_write_some(buffers, std::move(handler));
            },
            token, b);
    }

    bool is_open() const noexcept { return socket_.is_open(); }
    /// Closes the socket at once (no TLS close_notify) and drops the TLS layer.
    void close() noexcept {
        std::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
#if NETPOOL_HAS_TLS
        tls_.reset();
#endif
    }

private:
    asio::ip::tcp::socket socket_;
#if NETPOOL_HAS_TLS
    std::optional<tls_stream> tls_;
#endif
};

}  // namespace netpool
