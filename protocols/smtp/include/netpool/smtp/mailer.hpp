// Sending mail through pooled SMTP sessions: one keyed pool per account.
#pragma once

#include <netpool/endpoint.hpp>
#include <netpool/keyed_client.hpp>
#include <netpool/options.hpp>
#include <netpool/registry.hpp>
#include <netpool/smtp/adapter.hpp>
#include <netpool/smtp/message.hpp>
#include <netpool/smtp/retry.hpp>

#include <asio/awaitable.hpp>

#include <string>

namespace netpool::smtp {

/// Where to send, as whom, and how to pool.
struct account {
    endpoint server;        ///< host, port, tls mode (none | starttls | implicit), tls options
    client_options client;  ///< helo name, credentials, mechanisms, timeouts
    pool_options pool;      ///< size, max_overflow, timeouts, health check, lifetimes
    retry_policy retry;     ///< when send() tries again (default: up to 3 attempts in 60 s, never a duplicate)
};

/// Sends messages over the registry's keyed pools: one per (host, port, TLS mode, user,
/// credential fingerprint, TLS profile), so a connection authenticated as one user never
/// sends for another. The registry's per_key_limit caps connections per account. The first
/// send for a key creates its pool with that account's client and pool options; later
/// accounts with the same key share it (and its options, the pool's adapter's). A thin layer
/// over netpool::keyed_client<smtp::adapter>: it keeps nothing per key itself.
///
/// Retries: send() tries a message again as a.retry says (see retry_policy and
/// docs/smtp.md#retries): only what cannot deliver it twice, unless the policy opts in to
/// at-least-once; recipients already accepted are never sent to again. send_result::attempts
/// says how many transactions it took.
///
/// Errors: every outcome is a send_result (see adapter::send); a checkout failure has
/// stage "checkout", and when the pool is endpoint down (or the checkout timed out while a
/// handshake failure is on record) `ec` is the SMTP cause (e.g. errc::auth_failed), with
/// `last_reply` and `detail` from the failed handshake.
/// Exceptions: config_error for invalid options (field named) or a TLS endpoint in a
/// netpool built without TLS; std::invalid_argument from message::render().
/// Thread safety: all member functions are thread-safe, and the coroutines may be awaited
/// from any executor (a multi-threaded io_context too): each call runs on a strand of its
/// own unless the caller is on one (netpool::serialized). Object lifetimes: the registry
/// must outlive the mailer; `a` and the message must stay valid until send() completes.
class mailer {
public:
    explicit mailer(registry& reg);
    ~mailer();
    mailer(const mailer&) = delete;
    mailer& operator=(const mailer&) = delete;

    /// Renders `m` (Message-ID domain: a.client.helo_name) and sends it to its envelope.
    asio::awaitable<send_result> send(const account& a, const message& m);
    asio::awaitable<send_result> send(const account& a, const envelope& e, std::string raw_rfc5322);

    /// From a thread that is not running the registry's executor (throws std::logic_error
    /// if it is: the call would wait for itself). Precondition: another thread runs it.
    send_result send_blocking(const account& a, const message& m);
    send_result send_blocking(const account& a, const envelope& e, std::string raw_rfc5322);

private:
    keyed_client<adapter> pools_;
};

}  // namespace netpool::smtp
