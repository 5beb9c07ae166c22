// Connecting a pooled connection: resolve, TCP connect, TCP_NODELAY, implicit TLS, and the
// STARTTLS upgrade adapters use. Every step bounded by a timeout.
//
// Built without TLS (NETPOOL_HAS_TLS 0 in netpool/config.hpp), the TLS entry points still
// exist, so code using them compiles, but they throw config_error: asking a plain-TCP-only
// netpool for TLS is a configuration mistake, and it is reported as one, never as a
// network error that would be retried.
#pragma once

#include <netpool/config.hpp>
#include <netpool/connection.hpp>
#include <netpool/endpoint.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#if NETPOOL_HAS_TLS
#include <asio/ssl/context.hpp>
#else
namespace asio::ssl { class context; }
#endif

#include <chrono>
#include <memory>
#include <system_error>

namespace netpool {

/// A client TLS context for `opts`: TLS 1.2+, peer verification on unless opts.verify is
/// false, CAs from opts.ca_file (or the system's default paths when empty). With
/// opts.resume_sessions the context keeps the last few sessions its handshakes produced and
/// connect_transport/start_tls offer one only to the peer (host, port, server name, trust
/// settings) it came from.
/// Throws config_error("tls.ca_file", ...) if the CA file cannot be loaded.
/// Without TLS: throws config_error("tls", NETPOOL_NO_TLS_REASON).
std::shared_ptr<asio::ssl::context> make_client_tls_context(const tls_options& opts);

/// Host name lookups this process made so far (connect_transport; for tests and diagnostics).
std::uint64_t dns_lookups() noexcept;

/// Resolves ep.host (or, with dns_refresh > 0, reuses the addresses resolved for the same
/// host and port less than dns_refresh ago; a connect that fails on all of them drops
/// them), connects c.io() to the first address that answers, sets TCP_NODELAY
/// and, for tls_mode::implicit, performs the TLS handshake (SNI and host-name check from
/// ep.tls_opts.server_name or ep.host).
/// Errors: errc::connect_timeout, errc::handshake_timeout, errc::tls_verify_failed,
/// errc::tls_handshake_failed, errc::tls_not_offered (a clear-text answer to our
/// ClientHello: not a TLS port), or the system error (connection_refused, host_not_found...).
/// Cancellation: per-operation cancellation of the awaiting coroutine closes the socket.
/// Without TLS: an endpoint whose tls is not tls_mode::none throws
/// config_error("endpoint.tls", ...) before anything is opened.
asio::awaitable<std::error_code> connect_transport(connection& c, std::chrono::milliseconds connect_timeout,
                                                   std::chrono::milliseconds handshake_timeout,
                                                   std::chrono::milliseconds dns_refresh = std::chrono::milliseconds{0});

/// Acknowledges what the socket received at once instead of after the kernel's delayed-ACK
/// timer (Linux: TCP_QUICKACK, which the kernel clears again by itself; elsewhere nothing).
/// For a reader that got part of a reply and waits for the rest: a server that leaves
/// Nagle's algorithm on holds its last small segment until the first is acknowledged, so
/// without this each such reply takes about 40 ms longer. kit::session calls it before a
/// read that follows a read with no write in between (a reply arriving in parts), and on
/// the first reads of a TLS session. Never fails (a closed socket is ignored).
void ack_now(connection& c) noexcept;

/// TLS handshake over an already connected plain stream (STARTTLS). Precondition:
/// !c.io().is_tls() and c.tls_context() != nullptr. Same errors as the TLS part above.
/// Without TLS: closes the stream (the peer expects a handshake) and throws
/// config_error("tls", NETPOOL_NO_TLS_REASON).
asio::awaitable<std::error_code> start_tls(connection& c, std::chrono::milliseconds handshake_timeout);

/// Runs `op` and fails with `on_timeout` if it has not finished within `timeout`: the
/// operation is cancelled (the one place a timer's operation_aborted becomes a timeout).
/// Threading: the awaiting coroutine must run on a strand (or an io_context run by one
/// thread): the timer's completion cancels the operation, which on an unsynchronised
/// multi-threaded executor would race with the operation's own completion. The same holds
/// for every adapter hook called on a lease; serialized() below lifts the requirement.
asio::awaitable<std::error_code> with_timeout(asio::awaitable<std::error_code> op, std::chrono::milliseconds timeout,
                                              std::error_code on_timeout);

/// True when `ex` is one of Asio's strands (of an io_context or of any_io_executor), whose
/// handlers never run concurrently. A plain io_context executor is not, even when one
/// thread runs it: that cannot be known from the executor.
bool is_strand(const asio::any_io_executor& ex) noexcept;

/// True when the calling thread runs the execution context behind `ex` (an io_context or a
/// thread_pool, whatever the executor's type: plain, a strand, or a user's wrapper that
/// answers the context query): a blocking wait for work on `ex` would then wait for itself.
/// False for other contexts, which cannot be asked.
bool running_in_this_thread(const asio::any_io_executor& ex) noexcept;

/// Runs `op` where its handlers cannot run concurrently: on the caller's executor when that
/// is already a strand, otherwise on a new strand of it (one co_spawn and one strand per
/// call). A cancellation of the awaiting coroutine is forwarded to `op` on that strand.
/// smtp::mailer::send and imap::client::fetch_latest go through this, so they may be
/// awaited from any executor, a multi-threaded io_context included.
template <class T>
asio::awaitable<T> serialized(asio::awaitable<T> op) {
    const auto ex = co_await asio::this_coro::executor;
    if (is_strand(ex)) co_return co_await std::move(op);
    const asio::any_io_executor strand = asio::make_strand(ex);
    // Emitted from whatever thread cancels the caller; posted so that `op` sees it on its
    // strand. The signal outlives a post that arrives after `op` has finished.
    auto signal = std::make_shared<asio::cancellation_signal>();
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    asio::cancellation_slot slot = state.slot();
    if (slot.is_connected())
        slot.assign([strand, signal](asio::cancellation_type type) {
            asio::post(strand, [signal, type] { signal->emit(type); });
        });
    struct clear_on_exit {
        asio::cancellation_slot s;
        ~clear_on_exit() {
            if (s.is_connected()) s.clear();
        }
    } clear{slot};
    co_return co_await asio::co_spawn(strand, std::move(op),
                                      asio::bind_cancellation_slot(signal->slot(), asio::use_awaitable));
}

}  // namespace netpool
