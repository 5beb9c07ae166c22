// A buffered session over one pooled connection: what an adapter's I/O is made of.
//
//   struct my_state { netpool::kit::session io{64 * 1024}; int db = 0; };
//   auto& s = c.emplace_state<my_state>();                    // in handshake()
//   co_await s.io.write_all(c, "PING\r\n", timeout);
//   netpool::kit::line_parser p(512);
//   std::string line;
//   co_await s.io.read_reply(c, p, line, timeout);            // "+PONG"
//
// The read buffer lives as long as the session (one per connection, in its state), so bytes
// read past one reply are never lost: they are the next pipelined reply, or bytes the server
// sent unasked (buffered() tells which, and bytes_waiting() also looks in the socket).
#pragma once

#include <netpool/connection.hpp>
#include <netpool/time.hpp>
#include <netpool/error.hpp>
#include <netpool/kit/io.hpp>
#include <netpool/transport.hpp>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace netpool::kit {

/// An incremental parser the session can drive: feed() consumes what it can of `in` and says
/// need_more (it took every byte and wants more), complete (one reply is done; `used` bytes
/// were its own, the rest belong to what follows) or error (error() says why). take() hands
/// the completed reply over. smtp::reply_parser, imap::response_parser and redis's parser
/// are such parsers; line_parser below is the simplest one.
template <class P>
concept incremental_parser = requires(P& p, std::string_view in, std::size_t& used) {
    { p.feed(in, used) } -> std::same_as<typename P::status>;
    { p.error() } -> std::convertible_to<std::error_code>;
    p.take();
    P::status::need_more;
    P::status::complete;
    P::status::error;
};

/// `op` within `timeout` (errc::operation_timeout), or without a timer when `timeout` is
/// session::no_timeout (a century or more): with_timeout() for an adapter's own exchanges,
/// which hooks run unbounded (the pool bounds them) and commands run bounded.
inline asio::awaitable<std::error_code> within(asio::awaitable<std::error_code> op, std::chrono::milliseconds timeout) {
    if (timeout >= detail::forever) co_return co_await std::move(op);
    co_return co_await with_timeout(std::move(op), timeout, errc::operation_timeout);
}

/// The checks a handshake makes before a byte is exchanged. Throws config_error
/// ("endpoint.tls") for a STARTTLS endpoint in a netpool built without TLS. Returns true when
/// the adapter would send credentials (`sends_credentials`) over a connection without TLS
/// and the user did not allow it (`allow_plaintext`): refuse then, before connecting
/// further. netpool never upgrades or downgrades an endpoint's TLS mode on its own.
bool credentials_in_clear_refused(const connection& c, bool sends_credentials, bool allow_plaintext);

/// What a parser's take() returns.
template <class P> using reply_of = std::remove_cvref_t<decltype(std::declval<P&>().take())>;

/// One line ended by LF (a CR before the LF is dropped with it). A line longer than
/// max_line bytes is errc::frame_too_large as soon as it is, not when its end comes.
class line_parser {
public:
    enum class status { need_more, complete, error };
    explicit line_parser(std::size_t max_line) noexcept : max_(max_line) {}
    status feed(std::string_view in, std::size_t& used);
    std::string take() { return std::exchange(done_, {}); }
    std::error_code error() const noexcept { return error_; }

private:
    std::size_t max_;
    std::string line_, done_;
    std::error_code error_;
};
static_assert(incremental_parser<line_parser>);

/// A read buffer and deadline-bound reads and writes on one connection. Keep one per
/// connection in the adapter's state (connection::emplace_state), made in handshake(): the
/// pool clears the state when the worker reconnects.
///
/// Errors: errc::operation_timeout when an operation misses its timeout; connection_closed
/// when the peer goes away (map_io_error); the parser's error; errc::frame_too_large for a
/// reply over max_reply bytes; socket and TLS errors as they come. After any error the
/// session is broken(): a reply may be half read or a command half written, and the lease
/// holder must discard the connection.
/// Threading: as with_timeout (transport.hpp): the awaiting coroutine runs on a strand, or
/// on an io_context run by one thread. Hooks the pool calls always do; a lease holder on a
/// multi-threaded io_context wraps its work in netpool::serialized().
class session {
public:
    /// `max_reply`: bytes one reply may take (beyond the parser's own limits); `chunk`: the
    /// size of one read from the socket (allocated once, on the first read).
    explicit session(std::size_t max_reply = std::numeric_limits<std::size_t>::max(), std::size_t chunk = 4096)
        : max_reply_(max_reply), chunk_size_(chunk == 0 ? 4096 : chunk) {}

    /// Writes every byte of `bytes` (any Asio ConstBufferSequence, or a string_view) within
    /// `timeout`.
    /// `no_timeout` (or any timeout of a century or more) runs without a timer: for hooks,
    /// which the pool bounds itself, and callers that bound a whole exchange.
    template <class Buffers>
        requires asio::is_const_buffer_sequence<Buffers>::value
    asio::awaitable<std::error_code> write_all(connection& c, const Buffers& bytes, std::chrono::milliseconds timeout) {
        co_return note(co_await within(write_raw(c, bytes), timeout));
    }
    asio::awaitable<std::error_code> write_all(connection& c, std::string_view bytes, std::chrono::milliseconds timeout) {
        co_return note(co_await within(write_raw(c, asio::buffer(bytes)), timeout));
    }

    /// Drives `parser` over the buffered bytes, then the socket, until it yields one reply
    /// (moved into `out`) within `timeout`. What follows the reply stays buffered.
    template <incremental_parser P>
    asio::awaitable<std::error_code> read_reply(connection& c, P& parser, reply_of<P>& out,
                                                std::chrono::milliseconds timeout) {
        co_return note(co_await within(read_raw(c, parser, out), timeout));
    }

    /// Writes `request` and reads one reply, all within one `timeout`.
    template <incremental_parser P>
    asio::awaitable<std::error_code> exchange(connection& c, std::string_view request, P& parser, reply_of<P>& out,
                                              std::chrono::milliseconds timeout) {
        co_return note(co_await within(exchange_raw(c, request, parser, out), timeout));
    }

    /// One line (without CR LF) of at most `max_line` bytes.
    asio::awaitable<std::error_code> read_line(connection& c, std::string& line, std::size_t max_line,
                                               std::chrono::milliseconds timeout) {
        line_parser p(max_line);
        co_return co_await read_reply(c, p, line, timeout);
    }

    /// Bytes read past the last reply and not yet parsed.
    std::string_view buffered() const noexcept { return in_; }
    /// Forgets them (e.g. what a server sent in clear text before a TLS handshake).
    void drop_buffered() noexcept { in_.clear(); }
    /// True when the server sent anything not read as a reply yet: buffered bytes, bytes in
    /// the socket, or (TLS) bytes inside the TLS layer, decrypted or not. Used to tell a
    /// reply that came too early (before a command's end) or unasked (after the last reply).
    bool bytes_waiting(connection& c) const;

    /// STARTTLS, once the server has said go: TLS over this connection with the pool's trust
    /// settings (netpool::start_tls). Anything already buffered or waiting in the socket was
    /// sent before the handshake, in clear text, by whoever sits on the path: it is dropped,
    /// never parsed as a reply after TLS, and `on_injection` is returned (the protocol's own
    /// code, e.g. smtp::errc::starttls_injection). Any error breaks the session.
    asio::awaitable<std::error_code> start_tls(connection& c, std::chrono::milliseconds timeout,
                                               std::error_code on_injection);

    /// For a connection about to be used after sitting in the pool: true when it cannot take
    /// a command safely: the session is broken, bytes nobody asked for are buffered, the
    /// server's end of file (or a socket error) is waiting, or, over plain TCP, any byte is
    /// waiting (over TLS a waiting record may be a session ticket, so it does not count).
    /// Nothing is read or sent: a client whose command must not run twice (an INCR, a mail)
    /// discards such a connection and takes another before writing anything.
    bool peer_closed(connection& c) const;

    /// Bytes received from the socket (after TLS: the protocol's bytes) and written to it,
    /// since this session began: what a command cost on the wire.
    std::uint64_t bytes_read() const noexcept { return bytes_read_; }
    std::uint64_t bytes_written() const noexcept { return bytes_written_; }

    /// An operation of this session failed: the connection's state is unknown.
    bool broken() const noexcept { return broken_; }
    void mark_broken() noexcept { broken_ = true; }

    /// No timer: see write_all.
    static constexpr std::chrono::milliseconds no_timeout = std::chrono::milliseconds::max();

private:
    std::error_code note(std::error_code ec) noexcept {
        if (ec) broken_ = true;
        return ec;
    }

    template <class Buffers>
    asio::awaitable<std::error_code> write_raw(connection& c, Buffers bytes) {
        auto [ec, n] = co_await asio::async_write(c.io(), bytes, use_tuple);
        bytes_written_ += n;
        unacked_ = false;
        co_return ec ? map_io_error(ec) : std::error_code{};
    }

    template <class P>
    asio::awaitable<std::error_code> exchange_raw(connection& c, std::string_view request, P& parser,
                                                  reply_of<P>& out) {
        if (!request.empty()) {
            if (auto ec = co_await write_raw(c, asio::buffer(request))) co_return ec;
        }
        co_return co_await read_raw(c, parser, out);
    }

    /// The parser consumes every byte it is given unless a reply completes, so in_ never
    /// holds more than one read beyond a reply.
    template <class P>
    asio::awaitable<std::error_code> read_raw(connection& c, P& parser, reply_of<P>& out) {
        std::size_t taken = 0;  // bytes of this reply so far
        if (!in_.empty()) {
            std::size_t used = 0;
            const auto st = parser.feed(in_, used);
            if (st == P::status::complete) {
                in_.erase(0, used);
                out = parser.take();
                co_return std::error_code{};
            }
            if (st == P::status::error) co_return std::error_code(parser.error());
            taken = in_.size();
            in_.clear();
            if (taken > max_reply_) co_return errc::frame_too_large;
        }
        if (chunk_.empty()) chunk_.resize(chunk_size_);
        for (;;) {
            // Bytes came since our last write (which carried their ACK) and we wait for more:
            // acknowledge now, or a server that leaves Nagle on holds the rest of its reply
            // until our delayed-ACK timer fires (40 ms on Linux). A reply read in one go, the
            // common case, costs nothing. Right after a TLS handshake the same holds for
            // records we never see here: a TLS 1.3 server's session tickets, each in a write
            // of its own, which the TLS layer reads and consumes while we wait for a reply;
            // the first reads of a TLS session acknowledge at once, whatever came.
            const bool fresh_tls = tls_fresh_reads_ > 0 && c.io().is_tls();
            if (unacked_ || fresh_tls) {
                ack_now(c);
                unacked_ = false;
                if (fresh_tls) --tls_fresh_reads_;
            }
            auto [ec, n] = co_await c.io().async_read_some(asio::buffer(chunk_), use_tuple);
            bytes_read_ += n;
            unacked_ = n > 0;
            if (ec) co_return map_io_error(ec);
            std::size_t used = 0;
            const auto st = parser.feed(std::string_view(chunk_.data(), n), used);
            if (st == P::status::error) co_return std::error_code(parser.error());
            taken += st == P::status::complete ? used : n;
            if (taken > max_reply_) co_return errc::frame_too_large;
            if (st == P::status::complete) {
                in_.assign(chunk_.data() + used, n - used);
                out = parser.take();
                co_return std::error_code{};
            }
        }
    }

    std::string in_;
    std::vector<char> chunk_;
    std::size_t max_reply_;
    std::size_t chunk_size_;
    std::uint64_t bytes_read_ = 0;
    std::uint64_t bytes_written_ = 0;
    bool unacked_ = false;  ///< read since the last write or ack_now
    /// Reads of a new TLS session (implicit TLS: this session's first; STARTTLS: after
    /// start_tls) that acknowledge at once: see read_raw.
    int tls_fresh_reads_ = tls_fresh_reads;
    static constexpr int tls_fresh_reads = 4;
    bool broken_ = false;
};

}  // namespace netpool::kit
