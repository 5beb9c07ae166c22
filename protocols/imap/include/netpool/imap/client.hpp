// Reading mail through pooled IMAP sessions: one keyed pool per account.
#pragma once

#include <netpool/endpoint.hpp>
#include <netpool/imap/adapter.hpp>
#include <netpool/keyed_client.hpp>
#include <netpool/options.hpp>
#include <netpool/registry.hpp>

#include <asio/awaitable.hpp>

#include <cstddef>
#include <string>

namespace netpool::imap {

/// Where to read, as whom, and how to pool.
struct account {
    endpoint server;        ///< host, port, tls mode (none | starttls | implicit, 993), tls options
    client_options client;  ///< credentials, limits, timeouts
    pool_options pool;      ///< size, max_overflow, timeouts, health check, lifetimes
};

/// Fetches over the registry's keyed pools: one per (host, port, TLS mode, user, credential
/// fingerprint, TLS profile), so a session logged in as one user never reads for another.
/// The first fetch for a key creates its pool with that account's client and pool options.
/// A connection keeps its mailbox selected between leases: the next fetch of the same
/// mailbox sends no EXAMINE. A thin layer over netpool::keyed_client<imap::adapter>: it
/// keeps nothing per key itself.
///
/// Errors: every outcome is a fetch_result; a checkout failure has stage "checkout", and when
/// the pool is endpoint down (or the checkout timed out while a handshake failure is on
/// record) `ec` is the IMAP cause (e.g. errc::login_failed) with `detail`. A BYE, an I/O or
/// parse error or a timeout discards the connection.
/// Exceptions: config_error for invalid options (field named) or a TLS endpoint in a netpool
/// built without TLS.
/// Thread safety: all member functions are thread-safe, and the coroutines may be awaited
/// from any executor (a multi-threaded io_context too): each call runs on a strand of its
/// own unless the caller is on one (netpool::serialized). Object lifetimes: the registry must
/// outlive the client; `a` must stay valid until fetch_latest() completes.
class client {
public:
    explicit client(registry& reg);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// EXAMINE `mailbox` (unless the leased connection has it examined already), UID SEARCH
    /// for the last `top` messages, UID FETCH them with what `parts` asks for (flags,
    /// envelope, size and the header by default; whole messages only with
    /// fetch_parts::full); messages newest first. top == 0 only examines.
    asio::awaitable<fetch_result> fetch_latest(const account& a, std::string mailbox, std::size_t top,
                                               fetch_parts parts = fetch_parts::header);
    /// From a thread that is not running the registry's executor (throws std::logic_error if
    /// it is). Precondition: another thread runs it.
    fetch_result fetch_latest_blocking(const account& a, std::string mailbox, std::size_t top,
                                       fetch_parts parts = fetch_parts::header);

private:
    keyed_client<adapter> pools_;
};

}  // namespace netpool::imap
