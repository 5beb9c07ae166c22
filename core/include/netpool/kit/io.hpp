// The small pieces every adapter's I/O needs: one completion token, one error mapping.
#pragma once

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <system_error>

namespace netpool::kit {

/// `co_await op(..., use_tuple)` gives a tuple (error_code, results...) instead of throwing.
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// One outcome for the peer going away, however the socket says it: end of file,
/// connection reset, broken pipe and a TLS stream truncated without close_notify all become
/// netpool::errc::connection_closed (the connection is gone and nothing partial can be
/// used). Everything else is returned as it is.
std::error_code map_io_error(const std::error_code& ec) noexcept;

}  // namespace netpool::kit
