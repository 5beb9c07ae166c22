#include <netpool/echo/adapter.hpp>

#include <netpool/error.hpp>
#include <netpool/kit.hpp>
#include <netpool/options.hpp>

#include <asio/buffer.hpp>
#include <asio/completion_condition.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <array>
#include <functional>

namespace netpool::echo {

namespace {

using kit::map_io_error;
using kit::use_tuple;

/// Longer than any greeting a compatible server could send; a line that does not end by
/// then is not our protocol, and reading on would let a peer make us buffer without bound.
constexpr std::size_t max_greeting_line = 256;

bool overlaps(std::string_view a, const std::string& b) noexcept {
    if (a.empty() || b.empty()) return false;
    const std::less<const char*> before;
    return !before(a.data() + a.size() - 1, b.data()) && !before(b.data() + b.size() - 1, a.data());
}

}  // namespace

adapter::adapter(std::size_t max_frame) : max_frame_(max_frame) {
    if (max_frame == 0 || max_frame > max_declarable_frame)
        throw config_error("max_frame", "must be between 1 and " + std::to_string(max_declarable_frame) + " bytes");
}

asio::awaitable<std::error_code> adapter::handshake(connection& c) const {
    // A session for the greeting only: frames are read straight into the caller's string.
    kit::session s(max_greeting_line);
    std::string line;
    auto ec = co_await s.read_line(c, line, max_greeting_line, kit::session::no_timeout);  // the pool bounds hooks
    if (ec == errc::frame_too_large) co_return errc::protocol_error;
    if (ec) co_return ec;
    // The server speaks once and then waits for frames: anything after the greeting was
    // sent unasked, and the frame reader would misread it.
    if (!s.buffered().empty()) co_return errc::protocol_error;
    if (line + "\r\n" != greeting) co_return errc::handshake_rejected;
    co_return std::error_code{};
}

asio::awaitable<std::error_code> adapter::health_check(connection& c) const {
    std::string reply;  // an empty reply fits in the string itself: no allocation
    auto ec = co_await request(c, {}, reply);
    if (!ec && !reply.empty()) ec = errc::protocol_error;
    co_return ec;
}

asio::awaitable<std::error_code> adapter::reset(connection&) const { co_return std::error_code{}; }

asio::awaitable<void> adapter::close(connection&) const { co_return; }

asio::awaitable<std::error_code> adapter::request(connection& c, std::string_view payload, std::string& reply) const {
    if (payload.size() > max_frame_) co_return errc::frame_too_large;
    stream& io = c.io();
    const auto header = encode_header(payload.size());

    if (io.is_tls() && !overlaps(payload, reply)) {
        // TLS turns every buffer of a gather write into its own record. Building the frame
        // in `reply` (about to be overwritten anyway) sends one record, without allocating
        // once its capacity has grown to the frame size.
        reply.assign(header.data(), header.size());
        reply.append(payload);
        auto [ec, n] = co_await asio::async_write(io, asio::buffer(reply), use_tuple);
        if (ec) co_return map_io_error(ec);
    } else {
        // Plain TCP: a gather write is one writev() and copies nothing.
        const std::array<asio::const_buffer, 2> out{asio::buffer(header), asio::buffer(payload)};
        auto [ec, n] = co_await asio::async_write(io, out, use_tuple);
        if (ec) co_return map_io_error(ec);
    }

    // An echo reply is as long as its request: reading header and expected payload in one
    // scatter read usually takes a single system call. The guess is only a guess; the
    // header decides.
    std::array<char, frame_header_size> reply_header{};
    reply.resize(payload.size());
    const std::array<asio::mutable_buffer, 2> in{asio::buffer(reply_header), asio::buffer(reply)};
    auto [ec, got] = co_await asio::async_read(io, in, asio::transfer_at_least(frame_header_size), use_tuple);
    if (ec) co_return map_io_error(ec);

    const std::size_t length = decode_header(reply_header);
    if (length > max_frame_) co_return errc::frame_too_large;  // before resizing to it
    const std::size_t have = got - frame_header_size;
    if (have > length) co_return errc::protocol_error;  // bytes beyond the one reply frame
    reply.resize(length);
    if (have < length) {
        auto [rest_ec, rest] =
            co_await asio::async_read(io, asio::buffer(reply.data() + have, length - have), use_tuple);
        if (rest_ec) co_return map_io_error(rest_ec);
    }
    co_return std::error_code{};
}

void register_echo_adapter(adapter_registry& registry) {
    registry.add("echo", [](const adapter_params& params) -> any_adapter {
        std::size_t max_frame = default_max_frame;
        for (const auto& [key, value] : params) {
            if (key != "max_frame")
                throw config_error(key, "unknown parameter of the echo adapter (known: max_frame)");
            max_frame = param_count(key, value);  // the adapter's constructor checks the range
        }
        return adapter(max_frame);
    });
}

}  // namespace netpool::echo
