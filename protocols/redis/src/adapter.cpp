// The Redis adapter on the adapter kit: a kit::session per connection, the RESP parser, and
// one exchange (write every command at once, read the replies in order) that the hooks and
// the commands share.
#include <netpool/redis/adapter.hpp>

#include <netpool/kit.hpp>

// g++ 12 misreads Asio's coroutine frame allocator (see protocols/imap/src/adapter.cpp).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::redis {

namespace {

using std::chrono::milliseconds;

struct state {
    kit::session io;
    bool no_reset = false;     // RESET was an unknown command: a server before 6.2
    std::string last_failure;  // what broke the session, for error details
};

bool is_simple(const reply& r, std::string_view text) {
    return r.type == reply_type::simple_string && r.str == text;
}

asio::awaitable<std::error_code> round_trip(connection& c, state& s, const resp_limits& limits, const std::string& wire,
                                            std::size_t n, std::vector<reply>& out) {
    if (auto ec = co_await s.io.write_all(c, wire, kit::session::no_timeout)) co_return ec;
    resp_parser p(limits);
    out.clear();
    while (out.size() < n) {
        reply r;
        if (auto ec = co_await s.io.read_reply(c, p, r, kit::session::no_timeout)) {
            if (p.error()) s.last_failure = p.error_detail();
            co_return ec;
        }
        // RESP3 pushes (client tracking, pub/sub) are not replies to our commands.
        if (r.type != reply_type::push) out.push_back(std::move(r));
    }
    co_return std::error_code{};
}

/// Writes `wire` (n commands) and reads their n replies, all within `timeout` (no_timeout:
/// the pool bounds the hook). Any error leaves the session broken: a reply may be half read.
asio::awaitable<std::error_code> exchange(connection& c, const resp_limits& limits, const std::string& wire,
                                          std::size_t n, std::vector<reply>& out, milliseconds timeout) {
    state& s = c.state_as<state>();
    if (s.io.broken()) co_return netpool::errc::connection_closed;
    const auto ec = co_await kit::within(round_trip(c, s, limits, wire, n, out), timeout);
    if (ec) s.io.mark_broken();
    co_return ec;
}

std::string encode_all(std::span<const command> cmds) {
    std::string wire;
    std::size_t size = 0;  // reserved: growing would leave a copy of an AUTH behind, unwiped
    for (const auto& cmd : cmds)
        for (const auto& arg : cmd) size += arg.size() + 32;
    wire.reserve(size + 32);
    for (const auto& cmd : cmds) encode_command(cmd, wire);
    return wire;
}

}  // namespace

adapter::adapter(client_options options) : options_(std::move(options)) {
    options_.validate();
    redact_.add_credential(options_.cred.user, options_.cred.secret);
}

asio::awaitable<std::error_code> adapter::handshake(connection& c) const {
    c.emplace_state<state>();
    const auto& o = options_;
    std::vector<redis::command> cmds;
    const std::string user = o.cred.user.empty() ? "default" : o.cred.user;
    std::string password(o.cred.secret.view());  // wiped below, with the commands
    if (o.resp3) cmds.push_back(password.empty() ? redis::command{"HELLO", "3"}
                                                 : redis::command{"HELLO", "3", "AUTH", user, password});
    else if (!o.cred.user.empty()) cmds.push_back(redis::command{"AUTH", o.cred.user, password});
    else if (!password.empty()) cmds.push_back(redis::command{"AUTH", password});  // also before Redis 6
    if (o.db != 0) cmds.push_back(redis::command{"SELECT", std::to_string(o.db)});
    const wiped_string wire(encode_all(cmds));
    // Only the command names are needed from here on: the arguments (the password) go now.
    wipe(password.data(), password.capacity());
    for (auto& cmd : cmds)
        for (std::size_t i = 1; i < cmd.size(); ++i) wipe(cmd[i].data(), cmd[i].capacity());
    if (cmds.empty()) co_return std::error_code{};
    std::vector<reply> out;
    if (auto ec = co_await exchange(c, o.limits, wire.s(), cmds.size(), out, kit::session::no_timeout)) {
        const std::string detail = last_failure(c);
        failures_.record(redact_, cmds.front()[0], ec.message() + (detail.empty() ? "" : " (" + detail + ")"));
        co_return ec;
    }
    for (std::size_t i = 0; i < cmds.size(); ++i) {
        const std::string& what = cmds[i][0];
        const bool ok = what == "HELLO" ? out[i].type == reply_type::map : is_simple(out[i], "OK");
        if (ok) continue;
        failures_.record(redact_, what, out[i].to_string());
        if (!out[i].is_error()) co_return netpool::errc::protocol_error;
        if (what == "SELECT") co_return errc::select_failed;
        const bool refused = out[i].str.starts_with("WRONGPASS") || out[i].str.starts_with("NOPERM");
        co_return what == "HELLO" && !refused ? errc::hello_failed : errc::auth_failed;
    }
    co_return std::error_code{};
}

asio::awaitable<std::error_code> adapter::health_check(connection& c) const {
    reply r;
    const std::string_view ping[] = {"PING"};
    auto ec = co_await command(c, ping, r);
    // An error reply (-NOAUTH, -LOADING) still shows a live connection in step.
    if (ec == errc::server_error) ec = {};
    else if (!ec && !is_simple(r, "PONG")) ec = netpool::errc::protocol_error;
    co_return ec;
}

asio::awaitable<std::error_code> adapter::reset(connection& c) const {
    state& s = c.state_as<state>();
    reply r;
    if (!s.no_reset) {
        const std::string_view cmd[] = {"RESET"};
        auto ec = co_await command(c, cmd, r);
        if (!ec && is_simple(r, "RESET")) co_return co_await handshake(c);  // RESET logged out, selected db 0
        if (ec != errc::server_error) co_return ec ? ec : netpool::errc::protocol_error;
        s.no_reset = true;
    }
    // Before 6.2 there is no RESET: undo what a lease holder most likely changed, the database.
    const std::string db = std::to_string(options_.db);
    const std::string_view select[] = {"SELECT", db};
    auto ec = co_await command(c, select, r);
    co_return ec == errc::server_error ? make_error_code(errc::select_failed) : ec;
}

asio::awaitable<void> adapter::close(connection& c) const {
    if (c.state_if<state>() == nullptr) co_return;
    reply r;
    const std::string_view quit[] = {"QUIT"};
    co_await command(c, quit, r);
}

bool adapter::needs_reset(const connection& c) const noexcept {
    const state* s = c.state_if<state>();
    return c.reset_requested() || s == nullptr || s->io.broken();
}

asio::awaitable<std::error_code> adapter::command(connection& c, std::span<const std::string_view> args,
                                                  reply& out) const {
    std::string wire;
    encode_command(args, wire);
    std::vector<reply> replies;
    if (auto ec = co_await exchange(c, options_.limits, wire, 1, replies, options_.command_timeout)) co_return ec;
    out = std::move(replies.front());
    co_return out.is_error() ? make_error_code(errc::server_error) : std::error_code{};
}

asio::awaitable<std::error_code> adapter::command(connection& c, const redis::command& args, reply& out) const {
    const std::vector<std::string_view> views(args.begin(), args.end());
    co_return co_await command(c, views, out);
}

asio::awaitable<std::error_code> adapter::pipeline(connection& c, std::span<const redis::command> cmds,
                                                   std::vector<reply>& out) const {
    const std::string wire = encode_all(cmds);
    if (auto ec = co_await exchange(c, options_.limits, wire, cmds.size(), out, options_.command_timeout))
        co_return ec;
    for (const auto& r : out)
        if (r.is_error()) co_return errc::server_error;
    co_return std::error_code{};
}

bool adapter::peer_closed(connection& c) {
    const state* s = c.state_if<state>();
    return s == nullptr || s->io.peer_closed(c);
}

std::string adapter::last_failure(const connection& c) {
    const state* s = c.state_if<state>();
    return s ? s->last_failure : std::string();
}

}  // namespace netpool::redis
