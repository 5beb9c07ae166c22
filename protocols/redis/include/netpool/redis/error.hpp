// Redis error codes: what a Redis server can make a session or a command fail with.
// Transport and parse failures stay in netpool's category (connection_closed,
// protocol_error, frame_too_large, operation_timeout).
#pragma once

#include <system_error>

namespace netpool::redis {

/// Error values of the "netpool.redis" category. Zero is never used.
enum class errc {
    server_error = 1,  ///< a command got an error reply (-ERR, -WRONGTYPE...): a result, the connection stays usable
    auth_failed,       ///< AUTH (or HELLO's AUTH) was refused: wrong password, unknown or disabled user
    select_failed,     ///< SELECT of client_options::db was refused (e.g. the index is out of range)
    hello_failed,      ///< HELLO 3 was refused (a server before Redis 6 speaks RESP2 only)
};

/// The category, named "netpool.redis". Its default_error_condition() maps auth_failed,
/// select_failed and hello_failed to netpool::condition::handshake_rejected, so a pool whose
/// handshakes keep failing that way goes to errc::endpoint_down_handshake.
const std::error_category& redis_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), redis_category()}; }

}  // namespace netpool::redis

template <> struct std::is_error_code_enum<netpool::redis::errc> : std::true_type {};
