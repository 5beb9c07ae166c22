// The Redis protocol adapter: AUTH / HELLO 3 and SELECT for the pool, PING, RESET, QUIT; and
// commands (one, or several pipelined in one write) on a leased connection.
#pragma once

#include <netpool/adapter.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/kit/failure_record.hpp>
#include <netpool/redact.hpp>
#include <netpool/redis/error.hpp>
#include <netpool/redis/types.hpp>

#include <asio/awaitable.hpp>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::redis {

/// How a client opens and uses a session. A plain struct with defaults; validate() checks it.
struct client_options {
    /// AUTH user secret (Redis 6 ACL user), AUTH secret when the user is empty (the default
    /// user, requirepass), nothing when the secret is empty.
    credentials cred;
    unsigned db = 0;                                   ///< SELECT db when not 0
    std::chrono::milliseconds command_timeout{10000};  ///< one command or one pipeline, all its replies
    bool resp3 = false;                                ///< HELLO 3 (with AUTH in it) at connect
    resp_limits limits;                                ///< what one reply may make the client hold

    /// Throws netpool::config_error naming the field ("command_timeout", "limits.max_bulk",
    /// "cred.user"...). Never puts a secret in the message.
    void validate() const;
};

/// Speaks Redis (RESP2, or RESP3 with client_options::resp3) for a pool. One adapter object
/// and its copies (which share the failure record) serve every connection of a pool; the
/// session (a kit::session and what reset needs) lives in the connection's state.
///
/// Errors: redis::errc::server_error when a command's reply is an error reply (the reply is
/// in `out`; the connection stays usable); redis::errc::auth_failed, select_failed,
/// hello_failed from the handshake (equivalent to netpool::condition::handshake_rejected);
/// netpool::errc::protocol_error or frame_too_large for a reply that breaks RESP or
/// resp_limits (last_failure() says which limit); connection_closed when the server goes
/// away; operation_timeout when a command misses command_timeout; socket and TLS errors as
/// they come. After any error other than server_error the session is broken: the lease
/// holder must lease::discard() the connection (must_discard() says so; if it forgets, the
/// reset at checkin fails and the pool closes it).
/// Cancellation: a cancelled command breaks the session, as a timeout does.
/// Thread safety: const member functions may run concurrently on different connections; one
/// connection is used by one coroutine at a time, on a strand (see kit::session).
/// Object lifetimes: `args`, `cmds` and `out` must stay valid until the awaitable completes.
class adapter {
public:
    /// Throws config_error if options.validate() does.
    explicit adapter(client_options options = {});

    std::string_view name() const noexcept { return "redis"; }
    const client_options& options() const noexcept { return options_; }

    /// HELLO 3 (with AUTH when a secret is set) or AUTH, then SELECT db; all in one write.
    /// Nothing is sent for RESP2 without credentials and db 0.
    asio::awaitable<std::error_code> handshake(connection& c) const;
    /// PING, expecting +PONG; an error reply (-NOAUTH for a client without credentials,
    /// -LOADING while the server loads its data) also passes: the connection is alive and in
    /// step, and the command that follows gets the error as its result.
    asio::awaitable<std::error_code> health_check(connection& c) const;
    /// RESET (Redis 6.2+), then the handshake again (RESET logs out and selects db 0); on an
    /// older server (RESET an unknown command), SELECT db. Runs only when needs_reset().
    asio::awaitable<std::error_code> reset(connection& c) const;
    /// QUIT; errors ignored.
    asio::awaitable<void> close(connection& c) const;
    /// When a lease holder asked (connection::request_reset()) or the session is broken.
    bool needs_reset(const connection& c) const noexcept;

    /// Sends one command and reads its reply into `out`.
    asio::awaitable<std::error_code> command(connection& c, std::span<const std::string_view> args, reply& out) const;
    asio::awaitable<std::error_code> command(connection& c, const redis::command& args, reply& out) const;
    /// Sends every command of `cmds` in one write and reads their replies in order into `out`
    /// (one per command). server_error when any reply is an error reply (all are in `out`).
    asio::awaitable<std::error_code> pipeline(connection& c, std::span<const redis::command> cmds,
                                              std::vector<reply>& out) const;

    /// True when `ec` from a command leaves the connection unusable (discard the lease).
    static bool must_discard(const std::error_code& ec) noexcept { return ec && ec != errc::server_error; }
    /// True when the connection cannot take a command: the server closed it while it sat in
    /// the pool (its end of file is waiting), the session is broken, or bytes nobody asked for
    /// are waiting (plain TCP only: over TLS they may be a session ticket). Nothing is sent or
    /// read, so a caller may discard it and take another connection without having run its
    /// command twice.
    static bool peer_closed(connection& c);
    /// What broke this connection's session last (a RESP limit with its value, a parse
    /// error), or "".
    static std::string last_failure(const connection& c);
    /// The last handshake failure of any connection of this adapter and its copies, e.g.
    /// "AUTH: -WRONGPASS invalid username-password pair or user is disabled."; "" if none.
    /// Never credentials. Thread-safe.
    std::string last_handshake_failure() const { return failures_.text(); }

private:
    client_options options_;
    redactor redact_;
    kit::failure_record<> failures_;
};

/// Adds "redis" to `registry`. Parameters (all optional): user, password_env (the name of an
/// environment variable holding the secret), db, resp3 (true/false, 1/0, yes/no), command_timeout_ms.
/// Unknown parameters and bad values throw config_error naming the parameter.
void register_redis_adapter(adapter_registry& registry);

}  // namespace netpool::redis
