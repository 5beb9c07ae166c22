// Redis commands through pooled sessions: one keyed pool per account (netpool::keyed_client).
#pragma once

#include <netpool/endpoint.hpp>
#include <netpool/keyed_client.hpp>
#include <netpool/options.hpp>
#include <netpool/redis/adapter.hpp>
#include <netpool/registry.hpp>

#include <asio/awaitable.hpp>

#include <string>
#include <system_error>
#include <vector>

namespace netpool::redis {

/// Where to send commands, as whom, and how to pool.
struct account {
    endpoint server;        ///< host, port, tls mode (none or implicit; Redis has no STARTTLS)
    client_options client;  ///< credentials, db, RESP3, limits, command timeout
    pool_options pool;      ///< size, max_overflow, timeouts, health check, lifetimes
};

/// The outcome of one command.
struct result {
    std::error_code ec;  ///< empty on success; redis::errc::server_error for an error reply
    /// More about a failure: the error reply ("-WRONGTYPE ..."), the RESP limit that was hit,
    /// or the handshake failure behind a failed checkout ("AUTH: -WRONGPASS ..."). Never
    /// credentials.
    std::string detail;
    /// Where it ended: "checkout", "command", or "" on success.
    std::string stage;
    reply value;  ///< the reply (an error reply too)
    bool ok() const noexcept { return !ec; }
    /// One line for logs: the reply, or "failed at checkout: ... (detail)".
    std::string to_string() const;
};

/// Runs commands over the registry's keyed pools: one per (host, port, TLS mode, user,
/// credential fingerprint, TLS profile). The first command for a key creates its pool with
/// that account's client and pool options.
///
/// Errors: every outcome is a result. A checkout failure has stage "checkout"; when the pool
/// is endpoint down (or the checkout timed out while a handshake failure is on record), `ec`
/// is the Redis cause (e.g. errc::auth_failed) and `detail` what the server said. An I/O or
/// parse error or a timeout discards the connection. A command is never sent twice: a
/// pooled connection the server closed (while idle, or a new one the server dropped before
/// its first command) is found before the command is written (adapter::peer_closed) and
/// replaced; a connection that breaks after the write
/// is reported, since the server may have run the command.
/// Exceptions: config_error for invalid options (field named) or a TLS endpoint in a netpool
/// built without TLS.
/// Thread safety: all member functions are thread-safe, and command() may be awaited from
/// any executor (each call runs on a strand: netpool::serialized). Object lifetimes: the
/// registry must outlive the client; `a` must stay valid until command() completes. A pool
/// retired by the registry while a command waits is kept alive by the command; it then
/// fails with errc::pool_closed (or the aborted lease's error).
class client {
public:
    explicit client(registry& reg) noexcept : pools_(reg) {}

    /// Sends `args` (e.g. {"INCR", "counter"}) on a pooled connection and returns its reply.
    asio::awaitable<result> command(const account& a, std::vector<std::string> args) const;
    /// From a thread that is not running the registry's executor (throws std::logic_error if
    /// it is). Precondition: another thread runs it.
    result command_blocking(const account& a, std::vector<std::string> args) const;

    /// The pool for the account (made on first use): for stats, or for pipelines on a lease.
    keyed_client<adapter>::handle pool_for(const account& a) const;

private:
    keyed_client<adapter> pools_;
};

}  // namespace netpool::redis
