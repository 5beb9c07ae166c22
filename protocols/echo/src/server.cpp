#include <netpool/echo/server.hpp>

#include <netpool/config.hpp>
#include <netpool/options.hpp>

#include <asio/buffer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#if NETPOOL_HAS_TLS
#include <asio/ssl.hpp>
#endif
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace netpool::echo {

namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// A connection's buffer starts at this size and grows only for a larger frame: small
/// enough for 10,000 idle connections, large enough to take many small pipelined frames
/// with one read.
constexpr std::size_t initial_buffer = 4096;

constexpr std::string_view bad_greeting = "HELLO NOT-ECHO 0\r\n";

/// Nothing a connection does may take the io_context down; errors are values inside it.
void ignore_exception(const std::exception_ptr&) noexcept {}

}  // namespace

const char* to_string(fault_mode m) noexcept {
    switch (m) {
        case fault_mode::normal: return "normal";
        case fault_mode::silent: return "silent";
        case fault_mode::no_greeting_garbage: return "no_greeting_garbage";
        case fault_mode::close_mid_frame: return "close_mid_frame";
        case fault_mode::reset_after_n: return "reset_after_n";
    }
    return "unknown";
}

std::optional<fault_mode> parse_fault_mode(std::string_view s) noexcept {
    for (auto m : {fault_mode::normal, fault_mode::silent, fault_mode::no_greeting_garbage,
                   fault_mode::close_mid_frame, fault_mode::reset_after_n}) {
        const std::string_view name = to_string(m);
        if (name.size() == s.size() &&
            std::equal(name.begin(), name.end(), s.begin(), [](char a, char b) { return a == b || (a == '_' && b == '-'); }))
            return m;
    }
    return std::nullopt;
}

/// One accepted connection. Shared between its coroutine and the session table, so stop()
/// can close it on the connection's own strand even if the coroutine is just ending.
struct session {
    explicit session(tcp::socket s) : socket(std::move(s)) {}
    void close() noexcept {
        std::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
    }
    tcp::socket socket;  // its executor is the connection's strand
#if NETPOOL_HAS_TLS
    std::optional<asio::ssl::stream<tcp::socket&>> tls;
#endif
};

/// One listening socket; a restart makes a new one, so an old accept loop can only ever
/// see its own, closed, acceptor.
struct listener {
    explicit listener(asio::any_io_executor ex) : acceptor(std::move(ex)) {}
    tcp::acceptor acceptor;  // its executor is the listener's strand
};

struct server::impl : std::enable_shared_from_this<impl> {
    impl(asio::any_io_executor e, server_options o) : ex(std::move(e)), opts(std::move(o)) {
        mode.store(opts.mode);
        reset_after.store(std::max<std::size_t>(opts.reset_after, 1));
        port.store(opts.port);
#if NETPOOL_HAS_TLS
        if (opts.cert_file.empty() != opts.key_file.empty())
            throw config_error(opts.cert_file.empty() ? "cert_file" : "key_file",
                               "TLS needs both a certificate and a key");
        if (!opts.cert_file.empty()) load_tls();
#else
        if (!opts.cert_file.empty() || !opts.key_file.empty())
            throw config_error(opts.cert_file.empty() ? "key_file" : "cert_file", NETPOOL_NO_TLS_REASON);
#endif
    }

#if NETPOOL_HAS_TLS
    void load_tls() {
        auto& ctx = tls_ctx.emplace(asio::ssl::context::tls_server);
        SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
        std::error_code ec;
        ctx.use_certificate_chain_file(opts.cert_file, ec);
        if (ec) throw config_error("cert_file", "cannot load '" + opts.cert_file + "': " + ec.message());
        ctx.use_private_key_file(opts.key_file, asio::ssl::context::pem, ec);
        if (ec) throw config_error("key_file", "cannot load '" + opts.key_file + "': " + ec.message());
    }
#endif

    void start();
    void stop(std::function<void()> on_stopped);
    asio::awaitable<void> accept_loop(std::shared_ptr<listener> l, std::uint64_t generation);
    void start_session(tcp::socket socket, std::uint64_t generation);
    asio::awaitable<void> run_session(std::shared_ptr<session> s, std::uint64_t id);
    template <class Stream> asio::awaitable<void> serve(Stream& stream);
    asio::awaitable<void> drain(session& s);

    const asio::any_io_executor ex;
    server_options opts;  // port updated by the first start(); guarded by mu after that
#if NETPOOL_HAS_TLS
    std::optional<asio::ssl::context> tls_ctx;
#endif

    std::atomic<fault_mode> mode{fault_mode::normal};
    std::atomic<std::size_t> reset_after{1};
    std::atomic<std::uint16_t> port{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> frames{0};
    std::atomic<std::size_t> open{0};

    std::mutex mu;
    bool running = false;              // guarded by mu
    std::uint64_t generation = 0;      // guarded by mu; bumped by every start and stop
    std::shared_ptr<listener> current; // guarded by mu
    std::uint64_t next_session_id = 0; // guarded by mu
    std::unordered_map<std::uint64_t, std::shared_ptr<session>> sessions;  // guarded by mu
};

void server::impl::start() {
    std::lock_guard lock(mu);
    if (running) return;
    const tcp::endpoint where(asio::ip::make_address(opts.address), opts.port);
    auto l = std::make_shared<listener>(asio::any_io_executor(asio::make_strand(ex)));
    l->acceptor.open(where.protocol());
    // A restart must be able to bind the same port while the previous connections are in
    // TIME_WAIT.
    l->acceptor.set_option(tcp::acceptor::reuse_address(true));
    l->acceptor.bind(where);
    l->acceptor.listen(asio::socket_base::max_listen_connections);
    opts.port = l->acceptor.local_endpoint().port();
    port.store(opts.port);
    running = true;
    current = l;
    asio::co_spawn(l->acceptor.get_executor(), accept_loop(l, ++generation), ignore_exception);
}

void server::impl::stop(std::function<void()> on_stopped) {
    std::shared_ptr<listener> l;
    std::vector<std::shared_ptr<session>> victims;
    {
        std::lock_guard lock(mu);
        running = false;
        ++generation;
        l = std::move(current);
        // Dead to the server from now on, even before their sockets are closed below: a
        // session's own exit then finds nothing left to unregister.
        victims.reserve(sessions.size());
        for (auto& entry : sessions) victims.push_back(std::move(entry.second));
        sessions.clear();
        open.store(0);
    }
    // Each socket is closed on its own strand: closing it from here would race with the
    // coroutine using it. The last of those closes reports completion.
    struct completion {
        std::atomic<std::size_t> remaining;
        std::function<void()> on_stopped;
        void one_done() {
            if (remaining.fetch_sub(1) == 1 && on_stopped) on_stopped();
        }
    };
    auto done = std::make_shared<completion>();
    done->remaining.store(victims.size() + 1);
    done->on_stopped = std::move(on_stopped);
    if (l) {
        auto l_ex = l->acceptor.get_executor();
        asio::post(l_ex, [l = std::move(l), done] {
            std::error_code ignored;
            l->acceptor.close(ignored);
            done->one_done();
        });
    } else {
        asio::post(ex, [done] { done->one_done(); });
    }
    for (auto& s : victims) {
        auto s_ex = s->socket.get_executor();
        asio::post(s_ex, [s = std::move(s), done] {
            s->close();
            done->one_done();
        });
    }
}

asio::awaitable<void> server::impl::accept_loop(std::shared_ptr<listener> l, std::uint64_t gen) {
    auto self = shared_from_this();  // the server object may go away while we run
    for (;;) {
        // Each connection gets its own strand: connections run in parallel on a
        // multi-threaded io_context, each one's steps in order.
        auto [ec, socket] = co_await l->acceptor.async_accept(asio::any_io_executor(asio::make_strand(ex)), use_tuple);
        if (!l->acceptor.is_open()) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            // Out of descriptors or buffers: the connection waits in the backlog. Retrying
            // at once would spin; a short pause lets other connections close.
            asio::steady_timer pause(l->acceptor.get_executor(), std::chrono::milliseconds(20));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        accepted.fetch_add(1, std::memory_order_relaxed);
        start_session(std::move(socket), gen);
    }
}

void server::impl::start_session(tcp::socket socket, std::uint64_t gen) {
    auto s = std::make_shared<session>(std::move(socket));
    std::uint64_t id = 0;
    {
        std::lock_guard lock(mu);
        // Accepted just before a stop (or by the previous run's listener): the server is
        // dead to this connection.
        if (!running || gen != generation) {
            s->close();
            return;
        }
        id = next_session_id++;
        sessions.emplace(id, s);
        open.fetch_add(1, std::memory_order_relaxed);
    }
    auto s_ex = s->socket.get_executor();
    asio::co_spawn(s_ex, run_session(std::move(s), id), ignore_exception);
}

asio::awaitable<void> server::impl::run_session(std::shared_ptr<session> s, std::uint64_t id) {
    auto self = shared_from_this();
    struct unregister {
        impl& server;
        std::uint64_t id;
        ~unregister() {
            std::lock_guard lock(server.mu);
            if (server.sessions.erase(id) != 0) server.open.fetch_sub(1, std::memory_order_relaxed);
        }
    } unregister_on_exit{*this, id};

    std::error_code ignored;
    s->socket.set_option(tcp::no_delay(true), ignored);

    if (mode.load() == fault_mode::silent) {
        // Not even a TLS handshake: a client's connect succeeds and then hears nothing.
        co_await drain(*s);
#if NETPOOL_HAS_TLS
    } else if (tls_ctx) {
        auto& tls = s->tls.emplace(s->socket, *tls_ctx);
        auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, use_tuple);
        if (!ec) co_await serve(tls);
#endif
    } else {
        co_await serve(s->socket);
    }
    s->close();
}

asio::awaitable<void> server::impl::drain(session& s) {
    std::array<char, 512> sink;
    for (;;) {
        auto [ec, n] = co_await s.socket.async_read_some(asio::buffer(sink), use_tuple);
        if (ec) co_return;
    }
}

template <class Stream>
asio::awaitable<void> server::impl::serve(Stream& stream) {
    const std::string_view hello = mode.load() == fault_mode::no_greeting_garbage ? bad_greeting : greeting;
    if (auto [ec, n] = co_await asio::async_write(stream, asio::buffer(hello), use_tuple); ec) co_return;

    std::vector<char> buf(initial_buffer);
    std::size_t filled = 0;
    std::size_t answered = 0;  // frames echoed on this connection, for reset_after_n

    // Writes buf[from, to): a run of whole frames, sent back as they came.
    auto echo_run = [&](std::size_t from, std::size_t to, std::size_t count) -> asio::awaitable<bool> {
        if (from == to) co_return true;
        // Counted before the write, so a client that has its reply also sees the count.
        frames.fetch_add(count, std::memory_order_relaxed);
        answered += count;
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(buf.data() + from, to - from), use_tuple);
        co_return !ec;
    };

    for (;;) {
        // Answer every whole frame in the buffer. Consecutive frames that are echoed as they
        // are form one run and go out in one write, copied nowhere.
        std::size_t pos = 0;
        std::size_t run_start = 0;
        std::size_t run_count = 0;
        std::size_t needed = 0;
        for (;;) {
            const auto r = decode_frame(std::string_view(buf.data() + pos, filled - pos), opts.max_frame);
            if (r.status == decode_status::error) co_return;  // framing lost: hang up
            if (r.status == decode_status::need_more) {
                needed = r.needed;
                break;
            }
            const auto frame_start = pos;
            pos += r.consumed;
            switch (mode.load(std::memory_order_relaxed)) {
                case fault_mode::normal:
                case fault_mode::no_greeting_garbage:
                    ++run_count;
                    break;
                case fault_mode::reset_after_n:
                    ++run_count;
                    if (answered + run_count >= reset_after.load(std::memory_order_relaxed)) {
                        co_await echo_run(run_start, pos, run_count);
                        co_return;
                    }
                    break;
                case fault_mode::silent:
                    // Switched to silent while this connection was open: swallow the frame.
                    if (!co_await echo_run(run_start, frame_start, run_count)) co_return;
                    run_start = pos;
                    run_count = 0;
                    break;
                case fault_mode::close_mid_frame: {
                    if (!co_await echo_run(run_start, frame_start, run_count)) co_return;
                    // Header and half the payload (half the header for an empty frame): the
                    // client has a frame it can never complete.
                    const std::size_t cut = r.payload.empty() ? frame_header_size / 2
                                                              : frame_header_size + r.payload.size() / 2;
                    co_await asio::async_write(stream, asio::buffer(buf.data() + frame_start, cut), use_tuple);
                    co_return;
                }
            }
        }
        if (!co_await echo_run(run_start, pos, run_count)) co_return;

        // Keep the partial frame at the front, and make room for all of it: decode_frame
        // has checked its declared length against max_frame, so this growth is bounded.
        if (pos != 0) {
            std::memmove(buf.data(), buf.data() + pos, filled - pos);
            filled -= pos;
        }
        if (needed > buf.size()) buf.resize(needed);
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf.data() + filled, buf.size() - filled), use_tuple);
        if (ec) co_return;
        filled += n;
    }
}

server::server(asio::any_io_executor ex, server_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts))) {}

server::~server() { impl_->stop({}); }

void server::start() { impl_->start(); }
void server::stop(std::function<void()> on_stopped) { impl_->stop(std::move(on_stopped)); }
std::uint16_t server::port() const noexcept { return impl_->port.load(); }
bool server::tls() const noexcept {
#if NETPOOL_HAS_TLS
    return impl_->tls_ctx.has_value();
#else
    return false;
#endif
}
void server::set_mode(fault_mode m) noexcept { impl_->mode.store(m); }
void server::set_reset_after(std::size_t n) noexcept { impl_->reset_after.store(std::max<std::size_t>(n, 1)); }
fault_mode server::mode() const noexcept { return impl_->mode.load(); }
std::uint64_t server::connections_accepted() const noexcept { return impl_->accepted.load(); }
std::size_t server::open_sessions() const noexcept { return impl_->open.load(); }
std::uint64_t server::frames_echoed() const noexcept { return impl_->frames.load(); }

}  // namespace netpool::echo
