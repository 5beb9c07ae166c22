// The Redis adapter on the adapter kit: a kit::session per connection, the RESP parser, and
// one exchange (write every command at once, read the replies in order) that the hooks and
// the commands share.
#include <netpool/redis/adapter.hpp>

#include <netpool/kit.hpp>
#include <netpool/options.hpp>

#include <cerrno>
#include <cstdlib>

#include <sys/socket.h>

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

/// The commands' replies, all within `timeout` (no_timeout: the pool bounds the hook). Any
/// error leaves the session broken: a reply may be half read.
asio::awaitable<std::error_code> exchange(connection& c, const resp_limits& limits, std::span<const command> cmds,
                                          std::vector<reply>& out, milliseconds timeout) {
    state& s = c.state_as<state>();
    if (s.io.broken()) co_return netpool::errc::connection_closed;
    std::string wire;
    for (const auto& cmd : cmds) encode_command(cmd, wire);
    std::error_code ec;
    if (timeout == kit::session::no_timeout) {
        ec = co_await round_trip(c, s, limits, wire, cmds.size(), out);
    } else {
        ec = co_await with_timeout(round_trip(c, s, limits, wire, cmds.size(), out), timeout,
                                   netpool::errc::operation_timeout);
    }
    if (ec) s.io.mark_broken();
    co_return ec;
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
    if (o.resp3) cmds.push_back(o.cred.secret.empty() ? redis::command{"HELLO", "3"}
                                                      : redis::command{"HELLO", "3", "AUTH", user, o.cred.secret});
    else if (!o.cred.user.empty()) cmds.push_back(redis::command{"AUTH", o.cred.user, o.cred.secret});
    else if (!o.cred.secret.empty()) cmds.push_back(redis::command{"AUTH", o.cred.secret});  // also before Redis 6
    if (o.db != 0) cmds.push_back(redis::command{"SELECT", std::to_string(o.db)});
    if (cmds.empty()) co_return std::error_code{};
    std::vector<reply> out;
    if (auto ec = co_await exchange(c, o.limits, cmds, out, kit::session::no_timeout)) {
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
    if (!ec && !is_simple(r, "PONG")) ec = netpool::errc::protocol_error;
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
    const redis::command cmd(args.begin(), args.end());
    co_return co_await command(c, cmd, out);
}

asio::awaitable<std::error_code> adapter::command(connection& c, const redis::command& args, reply& out) const {
    std::vector<reply> replies;
    if (auto ec = co_await exchange(c, options_.limits, std::span(&args, 1), replies, options_.command_timeout))
        co_return ec;
    out = std::move(replies.front());
    co_return out.is_error() ? make_error_code(errc::server_error) : std::error_code{};
}

asio::awaitable<std::error_code> adapter::pipeline(connection& c, std::span<const redis::command> cmds,
                                                   std::vector<reply>& out) const {
    if (auto ec = co_await exchange(c, options_.limits, cmds, out, options_.command_timeout)) co_return ec;
    for (const auto& r : out)
        if (r.is_error()) co_return errc::server_error;
    co_return std::error_code{};
}

bool adapter::peer_closed(connection& c) {
    const state* s = c.state_if<state>();
    if (s == nullptr || s->io.broken() || !s->io.buffered().empty()) return true;
    char byte = 0;
    const auto n = ::recv(c.io().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;  // the server's end of file
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    return !c.io().is_tls();
}

std::string adapter::last_failure(const connection& c) {
    const state* s = c.state_if<state>();
    return s ? s->last_failure : std::string();
}

void client_options::validate() const {
    if (command_timeout <= milliseconds::zero()) throw config_error("command_timeout", "must be > 0");
    if (!cred.user.empty() && cred.secret.empty()) throw config_error("cred.secret", "a user needs a password");
    const std::pair<const char*, std::size_t> bounds[] = {{"limits.max_line", limits.max_line},
                                                          {"limits.max_bulk", limits.max_bulk},
                                                          {"limits.max_elements", limits.max_elements},
                                                          {"limits.max_depth", limits.max_depth},
                                                          {"limits.max_reply", limits.max_reply}};
    for (const auto& [field, value] : bounds)
        if (value == 0) throw config_error(field, "must be > 0");
}

void register_redis_adapter(adapter_registry& registry) {
    registry.add("redis", [](const adapter_params& params) -> any_adapter {
        client_options o;
        const auto count = [](const std::string& key, const std::string& value) {
            char* end = nullptr;
            errno = 0;
            const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || errno != 0 || value[0] == '-' || v > 0xFFFFFFFFull)
                throw config_error(key, "expects a non-negative integer, got '" + value + "'");
            return static_cast<unsigned>(v);
        };
        for (const auto& [key, value] : params) {
            if (key == "user") o.cred.user = value;
            else if (key == "password_env") {
                // The variable's name travels in the parameters, its value never does.
                const char* secret = std::getenv(value.c_str());
                if (secret == nullptr) throw config_error(key, "environment variable '" + value + "' is not set");
                o.cred.secret = secret;
            } else if (key == "db") o.db = count(key, value);
            else if (key == "command_timeout_ms") o.command_timeout = milliseconds(count(key, value));
            else if (key == "resp3" && (value == "true" || value == "false")) o.resp3 = value == "true";
            else if (key == "resp3") throw config_error(key, "expects true or false, got '" + value + "'");
            else
                throw config_error(key, "unknown parameter of the redis adapter (known: user, password_env, db, "
                                        "resp3, command_timeout_ms)");
        }
        return adapter(std::move(o));
    });
}

}  // namespace netpool::redis
