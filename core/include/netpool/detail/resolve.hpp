// Resolve and connect, with the dns_refresh cache (core/src/resolve.cpp). Internal.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

namespace netpool::detail {

/// Connects `sock` to the first address of host:port that answers. An IP literal is not
/// looked up; with dns_refresh > 0 a name's addresses are reused that long, and dropped when
/// a connect fails on all of them. A cancellation of the caller returns operation_aborted at
/// once (the lookup finishes in the background).
asio::awaitable<std::error_code> resolve_and_connect(asio::ip::tcp::socket& sock, const std::string& host,
                                                     std::uint16_t port, std::chrono::milliseconds dns_refresh);

}  // namespace netpool::detail
