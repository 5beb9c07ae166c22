// Resolve, connect, TLS: the network steps every worker goes through before its adapter
// speaks. Every step is bounded by a timer and every failure comes back as an error_code.
//
// Threading: the caller's coroutine must run on a strand (or an io_context run by one
// thread). with_timeout() runs the operation as a child coroutine beside a timer on the
// caller's executor, and the timer's completion cancels the operation; on an
// unsynchronised multi-threaded executor that cancellation would race with the operation.
//
// Cancellation: once the awaiting coroutine has been cancelled, Asio throws from the next
// co_await. The functions here check the cancellation state before each step and return
// operation_aborted instead, so a caller's own timeout never turns into an exception here.
#include <netpool/transport.hpp>

#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/detail/deadline.hpp>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <asio/strand.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#if NETPOOL_HAS_TLS
#include <asio/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#endif

#include <exception>
#include <typeinfo>
#include <memory>
#include <string>

namespace netpool {

namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// True once the awaiting coroutine has been cancelled: its next co_await of an awaitable
/// would throw. (Reading this_coro::cancellation_state itself never throws.)
bool cancelled(const asio::cancellation_state& cs) noexcept {
    return cs.cancelled() != asio::cancellation_type::none;
}

/// Closes the stream unless disarmed: covers every early return and an unexpected exception.
class close_guard {
public:
    explicit close_guard(stream& s) noexcept : s_(&s) {}
    close_guard(const close_guard&) = delete;
    close_guard& operator=(const close_guard&) = delete;
    ~close_guard() {
        if (s_) s_->close();
    }
    void disarm() noexcept { s_ = nullptr; }

private:
    stream* s_;
};

/// The resolver's background lookup (getaddrinfo) cannot be interrupted, and a
/// parallel_group waits for every member to finish, so a timeout could not return before
/// the system resolver gave up. The lookup therefore completes into shared state that
/// outlives this coroutine, and the coroutine waits on a timer that the lookup cancels:
/// a timeout or a caller's cancellation returns at once and leaves the lookup to finish
/// (and be discarded) in the background.
struct resolve_state {
    explicit resolve_state(const asio::any_io_executor& ex) : resolver(ex), done(ex) {}
    tcp::resolver resolver;
    asio::steady_timer done;
    std::error_code ec;
    tcp::resolver::results_type results;
    bool finished = false;
};

asio::awaitable<std::error_code> resolve_and_connect(tcp::socket& sock, const std::string& host,
                                                     std::uint16_t port) {
    // An IP literal needs no lookup; this is also the common case in tests and benchmarks.
    std::error_code parse_ec;
    const auto address = asio::ip::make_address(host, parse_ec);
    if (!parse_ec) {
        const tcp::endpoint target(address, port);
        auto [ec] = co_await sock.async_connect(target, use_tuple);
        co_return ec;
    }

    const auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<resolve_state>(ex);
    st->done.expires_at(asio::steady_timer::time_point::max());
    st->resolver.async_resolve(host, std::to_string(port),
                               [st](const std::error_code& ec, tcp::resolver::results_type results) {
                                   st->ec = ec;
                                   st->results = std::move(results);
                                   st->finished = true;
                                   st->done.cancel();
                               });
    co_await st->done.async_wait(use_tuple);
    if (!st->finished) {
        // Our wait was cancelled from outside (timeout or caller): abandon the lookup.
        st->resolver.cancel();
        co_return asio::error::operation_aborted;
    }
    if (st->ec) co_return st->ec;
    if (cancelled(co_await asio::this_coro::cancellation_state)) co_return asio::error::operation_aborted;

    auto [ec, connected_to] = co_await asio::async_connect(sock, st->results, use_tuple);
    (void)connected_to;
    co_return ec;
}

#if NETPOOL_HAS_TLS
/// A failed handshake is a verification failure if OpenSSL recorded a verify error or the
/// handshake stopped at certificate verification; any other TLS-level error is a handshake
/// failure. System errors (reset, EOF, ...) are left for the caller to see as they are.
std::error_code classify_tls_error(const std::error_code& ec, SSL* ssl) {
    const bool ssl_level = ec.category() == asio::error::get_ssl_category() ||
                           ec.category() == asio::ssl::error::get_stream_category();
    if (!ssl_level) return ec;
    // Without VERIFY_PEER OpenSSL still records a verify result but goes on regardless, so
    // the result says nothing about why such a handshake failed.
    const bool verifying = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
    if (verifying && SSL_get_verify_result(ssl) != X509_V_OK) return errc::tls_verify_failed;
    if (ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED)
        return errc::tls_verify_failed;
    return errc::tls_handshake_failed;
}

/// SNI and host-name verification on one SSL object. OpenSSL checks the name itself as part
/// of chain verification, so a mismatch shows up in SSL_get_verify_result like any other
/// verification failure. IP literals are matched against IP SANs and never sent as SNI
/// (RFC 6066 allows host names only).
std::error_code configure_peer_name(SSL* ssl, const endpoint& ep) {
    const std::string& name = ep.tls_opts.server_name.empty() ? ep.host : ep.tls_opts.server_name;
    std::error_code parse_ec;
    const auto address = asio::ip::make_address(name, parse_ec);
    const bool is_ip = !parse_ec;

    if (!is_ip && !name.empty() && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1)
        return errc::tls_handshake_failed;

    if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0) return {};
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, address.to_string().c_str())
                         : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    return ok == 1 ? std::error_code{} : std::error_code(errc::tls_handshake_failed);
}

/// Puts TLS over the connected socket and performs the client handshake within `timeout`.
/// Leaves the stream as it is on failure; the callers close it.
asio::awaitable<std::error_code> tls_handshake(connection& c, asio::ssl::context& ctx,
                                               std::chrono::milliseconds timeout) {
    auto& tls = c.io().emplace_tls(ctx);
    if (auto ec = configure_peer_name(tls.native_handle(), c.remote())) co_return ec;

    auto handshake = [](stream::tls_stream& s) -> asio::awaitable<std::error_code> {
        auto [ec] = co_await s.async_handshake(asio::ssl::stream_base::client, use_tuple);
        co_return ec;
    };
    const auto ec = co_await with_timeout(handshake(tls), timeout, errc::handshake_timeout);
    co_return classify_tls_error(ec, tls.native_handle());
}
#endif  // NETPOOL_HAS_TLS

}  // namespace

#if NETPOOL_HAS_TLS
std::shared_ptr<asio::ssl::context> make_client_tls_context(const tls_options& opts) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    // Method-independent floor: TLS 1.2 is the oldest version still considered safe.
    if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
        throw config_error("tls", "cannot set the minimum TLS version to 1.2");
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);

    std::error_code ec;
    if (!opts.ca_file.empty()) {
        ctx->load_verify_file(opts.ca_file, ec);
        if (ec) throw config_error("tls.ca_file", "cannot load '" + opts.ca_file + "': " + ec.message());
    } else {
        ctx->set_default_verify_paths(ec);
        if (ec) throw config_error("tls.ca_file", "cannot load the system's default CA paths: " + ec.message());
    }
    ctx->set_verify_mode(opts.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    return ctx;
}
#else
std::shared_ptr<asio::ssl::context> make_client_tls_context(const tls_options&) {
    throw config_error("tls", NETPOOL_NO_TLS_REASON);
}
#endif

asio::awaitable<std::error_code> connect_transport(connection& c, std::chrono::milliseconds connect_timeout,
                                                   std::chrono::milliseconds handshake_timeout) {
#if !NETPOOL_HAS_TLS
    // Before anything is opened: a plain connection to a TLS port would only fail later,
    // and less clearly.
    if (c.remote().tls != tls_mode::none)
        throw config_error("endpoint.tls", std::string("is '") + to_string(c.remote().tls) + "', but " +
                                               NETPOOL_NO_TLS_REASON);
    (void)handshake_timeout;
#endif
    const auto cs = co_await asio::this_coro::cancellation_state;
    if (cancelled(cs)) co_return asio::error::operation_aborted;
    const endpoint& ep = c.remote();
    stream& s = c.io();
    // A reconnecting worker reuses its connection object: start from a clean socket.
    s.close();
    close_guard guard(s);

    auto ec = co_await with_timeout(resolve_and_connect(s.socket(), ep.host, ep.port), connect_timeout,
                                    errc::connect_timeout);
    if (ec) co_return ec;

    // Requests are small and latency-bound; Nagle would hold them back waiting for ACKs.
    s.socket().set_option(tcp::no_delay(true), ec);
    if (ec) co_return ec;

#if NETPOOL_HAS_TLS
    if (ep.tls == tls_mode::implicit) {
        if (c.tls_context() == nullptr) co_return errc::tls_handshake_failed;
        if (cancelled(cs)) co_return asio::error::operation_aborted;
        ec = co_await tls_handshake(c, *c.tls_context(), handshake_timeout);
        if (ec) co_return ec;
    }
#endif
    guard.disarm();
    co_return std::error_code{};
}

asio::awaitable<std::error_code> start_tls(connection& c, std::chrono::milliseconds handshake_timeout) {
    stream& s = c.io();
    // A half-upgraded stream cannot carry the protocol any further: any failure closes it.
    close_guard guard(s);
#if !NETPOOL_HAS_TLS
    (void)handshake_timeout;
    throw config_error("tls", NETPOOL_NO_TLS_REASON);
    co_return std::error_code{};  // never reached; keeps this a coroutine, so it throws where awaited
#else
    if (cancelled(co_await asio::this_coro::cancellation_state)) co_return asio::error::operation_aborted;
    if (s.is_tls() || c.tls_context() == nullptr || !s.is_open()) co_return errc::tls_handshake_failed;
    const auto ec = co_await tls_handshake(c, *c.tls_context(), handshake_timeout);
    if (ec) co_return ec;
    guard.disarm();
    co_return std::error_code{};
#endif
}

namespace {
// Asio 1.22's any_io_executor::target<T>() is an unchecked cast: it returns a pointer for
// any target type. Compare the type first.
template <class T> const T* target_as(const asio::any_io_executor& ex) noexcept {
    return ex && ex.target_type() == typeid(T) ? ex.target<T>() : nullptr;
}
}  // namespace

bool is_strand(const asio::any_io_executor& ex) noexcept {
    return target_as<asio::strand<asio::io_context::executor_type>>(ex) != nullptr ||
           target_as<asio::strand<asio::any_io_executor>>(ex) != nullptr;
}

bool running_in_this_thread(const asio::any_io_executor& ex) noexcept {
    // Asked of the execution context, not of the executor's type: strands, wrappers and
    // user-defined executors all answer the context query, so none is missed.
    // io_context and thread_pool both run Asio's scheduler service (on Linux); it knows
    // whether this thread is inside its run loop. (Asio's detail API, in this one place.)
    if (!ex) return false;
    asio::execution_context& ctx = asio::query(ex, asio::execution::context);
#if !defined(ASIO_HAS_IOCP)
    if (asio::has_service<asio::detail::scheduler>(ctx)) return asio::use_service<asio::detail::scheduler>(ctx).can_dispatch();
#endif
    if (const auto* e = target_as<asio::io_context::executor_type>(ex)) return e->running_in_this_thread();
    return false;
}

asio::awaitable<std::error_code> with_timeout(asio::awaitable<std::error_code> op, std::chrono::milliseconds timeout,
                                              std::error_code on_timeout) {
    const auto cs = co_await asio::this_coro::cancellation_state;
    if (cancelled(cs)) co_return asio::error::operation_aborted;

    // A parallel group rather than awaitable_operators' `||`: `||` needs the timer to fail
    // by throwing whenever the operation wins, an exception on every successful call.
    // wait_for_one cancels the loser either way, and the group forwards a cancellation of
    // this coroutine to both.
    const auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex);
    timer.expires_at(detail::later(asio::steady_timer::clock_type::now(), timeout));  // huge: no timeout
    auto [order, thrown, op_ec, timer_ec] =
        co_await asio::experimental::make_parallel_group(
            asio::co_spawn(ex, std::move(op), asio::experimental::deferred),
            timer.async_wait(asio::experimental::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);

    const bool timer_fired = order[0] == 1 && !timer_ec;
    // An operation that still completed cleanly after the timer fired did its work; calling
    // it a timeout would make the caller throw away a good connection.
    if (timer_fired && !thrown && !op_ec) co_return std::error_code{};
    if (timer_fired) co_return on_timeout;
    if (thrown) {
        // Cancelled coroutines throw operation_aborted from their next co_await; that is the
        // cancellation we were asked for, not a failure of the operation.
        if (cancelled(cs)) co_return asio::error::operation_aborted;
        std::rethrow_exception(thrown);
    }
    co_return op_ec;
}

}  // namespace netpool
