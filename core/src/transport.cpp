// Connect and TLS: the network steps every worker goes through before its adapter speaks
// (the lookup and the TCP connect are in resolve.cpp). Every step is bounded by a timer and every failure comes back as an error_code.
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
#include <netpool/detail/resolve.hpp>

#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/time.hpp>

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

#include <ctime>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <deque>
#include <exception>
#include <typeinfo>
#include <memory>
#include <mutex>
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
    if (ec.category() == asio::error::get_ssl_category()) {
        const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
        if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) return errc::tls_verify_failed;
        // What came back is no TLS record: a clear-text greeting ("* OK", "220 ") read as a
        // record header has no valid version, or announces an absurd length.
        if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
            reason == SSL_R_HTTP_REQUEST || reason == SSL_R_RECORD_LENGTH_MISMATCH)
            return errc::tls_not_offered;
    }
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
    // NEVER_CHECK_SUBJECT: a certificate without a DNS subjectAltName is not matched on its
    // subject CN (RFC 6125 6.4.4 practice, as browsers do): a CN is not an issued host name.
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, address.to_string().c_str())
                         : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    return ok == 1 ? std::error_code{} : std::error_code(errc::tls_handshake_failed);
}

/// Session resumption. Each client context (a pool has its own) keeps the last few sessions
/// its handshakes produced, each tagged with the peer it was made with: endpoint host and
/// port, the name sent as SNI and verified, and the TLS profile. A handshake offers only a
/// session whose tag is its own peer's, so a session never crosses endpoints or server names
/// even when a context is shared. A resumed session carries the verification result of the
/// full handshake it came from, which verified the same name under the same profile.
///
/// Sessions arrive through the new-session callback: at the end of a TLS 1.2 handshake, and
/// for TLS 1.3 when a NewSessionTicket is read (after the handshake, with the first reads).
/// The cache keeps copies: OpenSSL marks a connection's own session not resumable when the
/// connection is freed without close_notify, which is how pooled connections end (TLS 1.1
/// and later no longer ask for that; RFC 4346 7.2.1, RFC 8446). TLS 1.3 tickets are used once
/// (RFC 8446 C.4); a TLS 1.2 session may be offered again.
struct session_cache {
    struct item {
        std::string peer;
        SSL_SESSION* session;
    };
    static constexpr std::size_t max_items = 8;

    ~session_cache() {
        for (auto& i : items) SSL_SESSION_free(i.session);
    }

    void put(std::string peer, SSL_SESSION* s) {
        std::lock_guard lk(mu);
        items.push_front(item{std::move(peer), s});
        if (items.size() > max_items) {
            SSL_SESSION_free(items.back().session);
            items.pop_back();
        }
    }

    /// A session for `peer` the caller owns one reference of, or null.
    SSL_SESSION* take(const std::string& peer) {
        std::lock_guard lk(mu);
        const auto now = static_cast<long>(std::time(nullptr));
        for (auto it = items.begin(); it != items.end();) {
            SSL_SESSION* s = it->session;
            const bool expired = SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s) <= now;
            if (expired || SSL_SESSION_is_resumable(s) != 1) {
                SSL_SESSION_free(s);
                it = items.erase(it);
                continue;
            }
            if (it->peer != peer) {
                ++it;
                continue;
            }
            if (SSL_SESSION_get_protocol_version(s) >= TLS1_3_VERSION) {
                items.erase(it);  // single use: the reference goes to the caller
            } else {
                SSL_SESSION_up_ref(s);
            }
            return s;
        }
        return nullptr;
    }

    std::mutex mu;
    std::deque<item> items;  // newest first
};

void free_session_cache(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<session_cache*>(ptr);
}
void free_peer_tag(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); }

/// ex_data slots: the cache on a client SSL_CTX, the peer tag on each SSL.
int session_cache_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_session_cache);
    return index;
}
int peer_tag_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_peer_tag);
    return index;
}

session_cache* session_cache_of(SSL_CTX* ctx) {
    const int index = session_cache_index();
    return index < 0 ? nullptr : static_cast<session_cache*>(SSL_CTX_get_ex_data(ctx, index));
}

/// Called by OpenSSL with a new resumable session of `ssl`. Returns 0: the cache keeps a
/// copy, not `s` itself.
int on_new_session(SSL* ssl, SSL_SESSION* s) {
    session_cache* cache = session_cache_of(SSL_get_SSL_CTX(ssl));
    const int index = peer_tag_index();
    const auto* peer = index < 0 ? nullptr : static_cast<const std::string*>(SSL_get_ex_data(ssl, index));
    if (cache == nullptr || peer == nullptr || SSL_SESSION_is_resumable(s) != 1) return 0;
    SSL_SESSION* copy = SSL_SESSION_dup(s);
    if (copy != nullptr) cache->put(*peer, copy);
    return 0;
}

/// The peer a session belongs to: everything that decides what the handshake verified.
std::string peer_tag(const endpoint& ep) {
    std::string tag = ep.host;
    tag += '\0';
    tag += std::to_string(ep.port);
    tag += '\0';
    tag += ep.tls_opts.server_name.empty() ? ep.host : ep.tls_opts.server_name;
    tag += '\0';
    tag += ep.tls_opts.verify ? "verify" : "noverify";
    tag += '\0';
    tag += ep.tls_opts.ca_file;
    return tag;
}

/// Tags `ssl` with its peer and offers that peer's last session, if the context keeps any.
void prepare_resumption(SSL* ssl, const endpoint& ep) {
    session_cache* cache = session_cache_of(SSL_get_SSL_CTX(ssl));
    const int index = peer_tag_index();
    if (cache == nullptr || index < 0) return;
    auto tag = std::make_unique<std::string>(peer_tag(ep));
    SSL_SESSION* s = cache->take(*tag);
    if (SSL_set_ex_data(ssl, index, tag.get()) == 1) tag.release();  // freed with the SSL
    if (s != nullptr) {
        SSL_set_session(ssl, s);  // takes its own reference
        SSL_SESSION_free(s);
    }
}

/// Puts TLS over the connected socket and performs the client handshake within `timeout`.
/// Leaves the stream as it is on failure; the callers close it.
asio::awaitable<std::error_code> tls_handshake(connection& c, asio::ssl::context& ctx,
                                               std::chrono::milliseconds timeout) {
    auto& tls = c.io().emplace_tls(ctx);
    if (auto ec = configure_peer_name(tls.native_handle(), c.remote())) co_return ec;
    prepare_resumption(tls.native_handle(), c.remote());

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

    // Session resumption (see session_cache): OpenSSL's own client cache is not used, ours
    // is filled by the callback and lives as long as the context.
    if (opts.resume_sessions) {
        SSL_CTX* native = ctx->native_handle();
        const int index = session_cache_index();
        auto cache = std::make_unique<session_cache>();
        if (index >= 0 && SSL_CTX_set_ex_data(native, index, cache.get()) == 1) {
            cache.release();  // freed with the SSL_CTX
            SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
            SSL_CTX_sess_set_new_cb(native, on_new_session);
        }
    }
    return ctx;
}
#else
std::shared_ptr<asio::ssl::context> make_client_tls_context(const tls_options&) {
    throw config_error("tls", NETPOOL_NO_TLS_REASON);
}
#endif

void ack_now(connection& c) noexcept {
#ifdef TCP_QUICKACK
    const int fd = c.io().socket().native_handle();
    if (fd < 0) return;
    const int on = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
#else
    (void)c;
#endif
}

asio::awaitable<std::error_code> connect_transport(connection& c, std::chrono::milliseconds connect_timeout,
                                                   std::chrono::milliseconds handshake_timeout,
                                                   std::chrono::milliseconds dns_refresh) {
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

    auto ec = co_await with_timeout(detail::resolve_and_connect(s.socket(), ep.host, ep.port, dns_refresh), connect_timeout,
                                    errc::connect_timeout);
    if (ec) co_return ec;

    // Requests are small and latency-bound; Nagle would hold them back waiting for ACKs
    // (the other direction's counterpart, for servers that leave Nagle on, is ack_now).
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

}  // namespace netpool
