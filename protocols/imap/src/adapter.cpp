// The IMAP adapter: session set-up (greeting, CAPABILITY, STARTTLS, LOGIN / AUTHENTICATE
// PLAIN), NOOP, UNSELECT, LOGOUT, and SELECT/EXAMINE, UID SEARCH, UID FETCH on a leased
// connection. Decisions over responses are the pure functions of protocol.hpp; the I/O is
// the session's kit::session, every command bounded by command_timeout and every response
// by response_limits.
#include <netpool/imap/adapter.hpp>

#include <netpool/config.hpp>
#include <netpool/error.hpp>
#include <netpool/imap/protocol.hpp>
#include <netpool/imap/response.hpp>
#include <netpool/kit.hpp>
#include <netpool/options.hpp>
#include <netpool/sasl.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>

// g++ 12 inlines Asio's coroutine frame allocator (which may call aligned_alloc) into the
// larger coroutines below and then warns that the frame's operator delete does not match:
// Asio's operator delete routes the block back through the same allocator, so it does.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::imap {

struct adapter::uidvalidity_record {
    std::mutex mu;
    std::map<std::string, std::uint32_t, std::less<>> last;  // per mailbox
};

namespace {

using std::chrono::milliseconds;
/// For reads and writes inside a command: the command as a whole is bounded (command_timeout).
constexpr auto unbounded = kit::session::no_timeout;
/// Sees each untagged response of a command (after BYE, EXISTS/EXPUNGE and CAPABILITY are
/// handled); an error stops the command and breaks the session.
using untagged_handler = std::function<std::error_code(response&)>;

session* find_session(connection& c) { return c.state_if<session>(); }

/// The next response, from what the session buffered or from the socket; a parser of its
/// own for each (what follows a response stays buffered in the session).
asio::awaitable<std::error_code> next_response(connection& c, session& s, const response_limits& limits,
                                               response& out) {
    response_parser parser(limits);
    co_return co_await s.io.read_reply(c, parser, out, unbounded);
}

/// How many untagged responses one command may still receive: those it asks for (one FETCH
/// per UID, one SEARCH) plus client_options::max_unsolicited. Whatever a server streams, a
/// command ends when this runs out, not at its timeout.
class untagged_budget {
public:
    untagged_budget(std::size_t expected, std::size_t max_unsolicited) noexcept
        : left_(expected > std::numeric_limits<std::size_t>::max() - max_unsolicited
                    ? std::numeric_limits<std::size_t>::max()
                    : expected + max_unsolicited) {}
    std::error_code take() noexcept {
        if (left_ == 0) return limit_errc::too_many_unsolicited;
        --left_;
        return {};
    }

private:
    std::size_t left_;
};

/// An untagged response during a command: BYE ends the session; EXISTS/EXPUNGE update the
/// selected mailbox; the command's own handler sees the rest.
std::error_code on_untagged(session& s, response& r, const untagged_handler& handler, untagged_budget& budget) {
    if (r.status == "BYE") return errc::server_bye;
    if (auto ec = budget.take()) return ec;
    if (s.selected && r.number && (r.name == "EXISTS" || r.name == "EXPUNGE")) apply_untagged(r, *s.selected);
    if (r.name == "CAPABILITY") s.caps = parse_capabilities(r.data);
    if (handler) return handler(r);
    return {};
}

/// Sends the command's parts (waiting for a continuation between them: synchronizing
/// literals) and reads up to its tagged response.
asio::awaitable<std::error_code> command_raw(connection& c, session& s, const response_limits& limits,
                                             const std::vector<std::string>& parts, const std::string& tag,
                                             const untagged_handler& handler, untagged_budget budget,
                                             response& tagged) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (auto ec = co_await s.io.write_all(c, parts[i], unbounded)) co_return ec;
        if (i + 1 == parts.size()) break;
        for (;;) {
            response r;
            if (auto ec = co_await next_response(c, s, limits, r)) co_return ec;
            if (r.is_continuation()) break;
            if (r.is_tagged()) {
                if (r.tag != tag) co_return errc::unexpected_response;
                tagged = std::move(r);  // the server refused the literal
                co_return std::error_code{};
            }
            if (auto ec = on_untagged(s, r, handler, budget)) co_return ec;
        }
    }
    for (;;) {
        response r;
        if (auto ec = co_await next_response(c, s, limits, r)) co_return ec;
        if (r.is_tagged()) {
            if (r.tag != tag) co_return errc::unexpected_response;
            tagged = std::move(r);
            co_return std::error_code{};
        }
        if (r.is_continuation()) co_return errc::unexpected_response;
        if (auto ec = on_untagged(s, r, handler, budget)) co_return ec;
    }
}

std::string next_tag(session& s) { return "A" + std::to_string(s.next_tag++); }

/// Records which limit stopped `what` and its value (session::last_failure), for a
/// limit_errc; returns ec.
std::error_code note_limit(session& s, const client_options& o, std::string_view what, const std::error_code& ec) {
    if (ec.category() == limit_category())
        s.last_failure = limit_failure(what, static_cast<limit_errc>(ec.value()), o);
    return ec;
}

/// One command within command_timeout. Any error here (I/O, parse, BYE, timeout, an
/// unexpected response, a limit) breaks the session. The tagged status is the caller's to
/// judge. `expected`: the untagged responses the command asks for (see untagged_budget).
asio::awaitable<std::error_code> command(connection& c, session& s, const client_options& o, std::string_view verb,
                                         std::span<const command_arg> args, const untagged_handler& handler,
                                         response& tagged, std::size_t expected = 0) {
    const std::string tag = next_tag(s);
    auto parts = build_command(tag, verb, args, can_use_nonsync_literals(s.caps, args));
    auto ec = co_await with_timeout(
        command_raw(c, s, o.limits, parts, tag, handler, untagged_budget(expected, o.max_unsolicited), tagged),
        o.command_timeout, netpool::errc::operation_timeout);
    for (auto& part : parts) netpool::wipe(part.data(), part.capacity());  // LOGIN's hold the password
    if (ec) s.broken = true;
    co_return note_limit(s, o, verb, ec);
}

/// Every form of the credential the client sends (raw, quoted for LOGIN, base64 for
/// AUTHENTICATE PLAIN): a server may echo any of them back in its text.
netpool::redactor credential_redactor(const client_options& o) {
    netpool::redactor r;
    r.add_credential(o.cred.user, o.cred.secret);
    return r;
}

/// OK -> success; NO -> command_failed; BAD -> command_rejected (recorded in s.last_failure,
/// redacted).
std::error_code judge(session& s, const client_options& o, const response& tagged) {
    if (tagged.status == "OK") return {};
    s.last_failure = credential_redactor(o)(tagged.to_string());
    return tagged.status == "NO" ? std::error_code(errc::command_failed) : std::error_code(errc::command_rejected);
}

/// Where a handshake failed, for last_handshake_failure(). Secrets sent during login are
/// removed from anything recorded.
struct failure_info {
    std::string stage;
    std::string what;  // the server's response, if one decided
};

std::error_code failed(failure_info& f, std::string stage, std::error_code ec, const response* r = nullptr) {
    f.stage = std::move(stage);
    if (r) f.what = r->to_string();
    return ec;
}

asio::awaitable<std::error_code> capability(connection& c, session& s, const client_options& o, failure_info& f) {
    response tagged;
    capabilities caps;
    bool seen = false;
    const untagged_handler h = [&](response& r) {
        if (r.name == "CAPABILITY") {
            caps = parse_capabilities(r.data);
            seen = true;
        }
        return std::error_code{};
    };
    if (auto ec = co_await command(c, s, o, "CAPABILITY", {}, h, tagged)) co_return failed(f, "CAPABILITY", ec);
    if (tagged.status != "OK") co_return failed(f, "CAPABILITY", netpool::errc::protocol_error, &tagged);
    if (!seen) co_return failed(f, "CAPABILITY", netpool::errc::protocol_error, &tagged);
    s.caps = std::move(caps);
    co_return std::error_code{};
}

/// Refreshes the capabilities after login: from the tagged OK's [CAPABILITY] code, from an
/// untagged CAPABILITY seen during the command, or by asking.
asio::awaitable<std::error_code> after_login(connection& c, session& s, const client_options& o, failure_info& f,
                                             const response& tagged, bool untagged_seen) {
    if (tagged.code_name() == "CAPABILITY") {
        s.caps = parse_capabilities(tagged.code_argument());
        co_return std::error_code{};
    }
    if (untagged_seen) co_return std::error_code{};
    co_return co_await capability(c, s, o, f);
}

asio::awaitable<std::error_code> sasl_plain_raw(connection& c, session& s, const client_options& o, const std::string& tag,
                                                std::string_view initial, bool ir, bool& caps_seen,
                                                response& tagged) {
    // The lines that carry the credential are wiped when they go.
    const std::string_view sent_initial = !ir ? std::string_view() : initial.empty() ? "=" : initial;
    const wiped_string line = wiped_concat({tag, " AUTHENTICATE PLAIN", ir ? " " : "", sent_initial, "\r\n"});
    if (auto ec = co_await s.io.write_all(c, std::string_view(line), unbounded)) co_return ec;
    bool sent = ir;
    untagged_budget budget(0, o.max_unsolicited);
    for (;;) {
        response r;
        if (auto ec = co_await next_response(c, s, o.limits, r)) co_return ec;
        if (r.is_continuation()) {
            // The first continuation asks for the response; another is a challenge PLAIN
            // does not have: cancel (RFC 9051 6.2.2), the server answers BAD.
            // A named string, not a conditional's temporary inside co_await: GCC 12 destroys
            // such a temporary twice (a double free on this path).
            const wiped_string reply_line = sent ? wiped_concat({"*\r\n"}) : wiped_concat({initial, "\r\n"});
            if (auto ec = co_await s.io.write_all(c, std::string_view(reply_line), unbounded)) co_return ec;
            sent = true;
            continue;
        }
        if (r.is_tagged()) {
            if (r.tag != tag) co_return errc::unexpected_response;
            tagged = std::move(r);
            co_return std::error_code{};
        }
        if (r.status == "BYE") co_return errc::server_bye;
        if (auto ec = budget.take()) co_return ec;
        if (r.name == "CAPABILITY") {
            s.caps = parse_capabilities(r.data);
            caps_seen = true;
        }
    }
}

asio::awaitable<std::error_code> login(connection& c, session& s, const client_options& o, failure_info& f) {
    if (o.method == login_method::authenticate_plain && !s.caps.has_auth("PLAIN")) {
        f.what = "login_method::authenticate_plain, but the server does not offer AUTH=PLAIN";
        co_return failed(f, "AUTHENTICATE PLAIN", errc::login_failed);
    }
    if (o.method != login_method::login && s.caps.has_auth("PLAIN")) {
        const std::string stage = "AUTHENTICATE PLAIN";
        const wiped_string initial(netpool::sasl::plain_response(o.cred.user, o.cred.secret));
        const bool ir = o.use_sasl_ir && s.caps.sasl_ir;
        const std::string tag = next_tag(s);
        bool caps_seen = false;
        response tagged;
        auto ec = co_await with_timeout(sasl_plain_raw(c, s, o, tag, initial, ir, caps_seen, tagged), o.command_timeout,
                                        netpool::errc::operation_timeout);
        if (ec) co_return failed(f, stage, ec);
        if (tagged.status != "OK") co_return failed(f, stage, errc::login_failed, &tagged);
        co_return co_await after_login(c, s, o, f, tagged, caps_seen);
    }
    if (s.caps.login_disabled) {
        f.what = "the server offers neither AUTH=PLAIN nor LOGIN (LOGINDISABLED)";
        co_return failed(f, "LOGIN", errc::login_disabled);
    }
    const std::array<command_arg, 2> args{command_arg{o.cred.user}, command_arg{o.cred.secret}};
    response tagged;
    bool caps_seen = false;
    const untagged_handler h = [&](response& r) {
        caps_seen = caps_seen || r.name == "CAPABILITY";
        return std::error_code{};
    };
    if (auto ec = co_await command(c, s, o, "LOGIN", args, h, tagged)) co_return failed(f, "LOGIN", ec);
    if (tagged.status != "OK") co_return failed(f, "LOGIN", errc::login_failed, &tagged);
    co_return co_await after_login(c, s, o, f, tagged, caps_seen);
}

asio::awaitable<std::error_code> open_session(connection& c, const client_options& o, failure_info& f) {
    session& s = c.emplace_state<session>();
    const tls_mode mode = c.remote().tls;
    const bool auth = !o.cred.user.empty();
    if (kit::credentials_in_clear_refused(c, auth, o.allow_plaintext_login))
        co_return failed(f, "LOGIN", errc::plaintext_login_refused);

    response greeting;
    response_parser greeting_parser(o.limits);
    auto ec = co_await s.io.read_reply(c, greeting_parser, greeting, std::min(o.greeting_timeout, o.command_timeout));
    if (ec == netpool::errc::operation_timeout) {
        f.what = mode == tls_mode::implicit ? "nothing within the greeting timeout after the TLS handshake"
                                            : "nothing within the greeting timeout: does the port expect TLS at once "
                                              "(implicit TLS, 993)?";
        co_return failed(f, "greeting", netpool::errc::no_greeting);
    }
    if (ec) co_return failed(f, "greeting", ec);
    if (!greeting.is_untagged()) co_return failed(f, "greeting", netpool::errc::protocol_error, &greeting);
    if (greeting.status == "BYE") co_return failed(f, "greeting", errc::greeting_bye, &greeting);
    if (greeting.status != "OK" && greeting.status != "PREAUTH")
        co_return failed(f, "greeting", netpool::errc::protocol_error, &greeting);
    if (!s.io.buffered().empty()) co_return failed(f, "greeting", netpool::errc::protocol_error);  // sent unasked
    const bool preauth = greeting.status == "PREAUTH";
    if (greeting.code_name() == "CAPABILITY") s.caps = parse_capabilities(greeting.code_argument());
    else if (auto e = co_await capability(c, s, o, f)) co_return e;

    if (mode == tls_mode::starttls) {
        // STARTTLS exists only before authentication: a PREAUTH session cannot upgrade.
        if (preauth || !s.caps.starttls) co_return failed(f, "STARTTLS", errc::starttls_unavailable);
        response tagged;
        if (auto e = co_await command(c, s, o, "STARTTLS", {}, {}, tagged)) co_return failed(f, "STARTTLS", e);
        if (tagged.status != "OK") co_return failed(f, "STARTTLS", errc::starttls_unavailable, &tagged);
        const std::error_code injected = errc::starttls_injection;
        if (auto e = co_await s.io.start_tls(c, o.command_timeout, injected)) {
            s.broken = true;
            co_return e == injected ? failed(f, "STARTTLS", e, &tagged) : failed(f, "STARTTLS handshake", e);
        }
        s.caps = capabilities{};  // what the server said in clear text is forgotten
        if (auto e = co_await capability(c, s, o, f)) co_return e;
    }

    if (auth && !preauth) {
        if (auto e = co_await login(c, s, o, f)) co_return e;
    }
    s.authenticated = auth || preauth;
    s.ready = true;
    co_return std::error_code{};
}

session& ready_session(connection& c, const char* what) {
    session* s = find_session(c);
    if (!s || !s->ready)
        throw std::logic_error(std::string("netpool::imap::adapter::") + what +
                               ": the connection was not opened by an IMAP adapter");
    return *s;
}

/// A command that must get OK and has nothing else to say (NOOP, UNSELECT).
asio::awaitable<std::error_code> simple_command(connection& c, const client_options& o, std::string_view verb) {
    session* s = find_session(c);
    if (!s || !s->ready || s->broken) co_return netpool::errc::protocol_error;
    response tagged;
    if (auto ec = co_await command(c, *s, o, verb, {}, {}, tagged)) co_return ec;
    co_return judge(*s, o, tagged);
}

asio::awaitable<std::error_code> logout_raw(connection& c, session& s, const client_options& o) {
    const std::string line = next_tag(s) + " LOGOUT\r\n";
    if (auto ec = co_await s.io.write_all(c, line, unbounded)) co_return ec;
    untagged_budget budget(1, o.max_unsolicited);
    for (;;) {  // "* BYE ..." then the tagged OK
        response r;
        if (auto ec = co_await next_response(c, s, o.limits, r)) co_return ec;
        if (r.is_tagged()) co_return std::error_code{};
        if (auto ec = budget.take()) co_return ec;
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------

adapter::adapter(client_options options)
    : options_(std::move(options)), uidvalidity_(std::make_shared<uidvalidity_record>()) {
    options_.validate();
}

asio::awaitable<std::error_code> adapter::handshake(connection& c) const {
    failure_info f;
    const auto ec = co_await open_session(c, options_, f);
    if (ec) {
        // What an operator reads when a pool goes endpoint_down: the stage and the server's
        // words, never a secret (a server could echo one back).
        netpool::redactor redact = credential_redactor(options_);
        std::string what = f.what.empty() ? ec.message() : f.what;
        if (ec.category() == limit_category()) what = limit_failure(f.stage, static_cast<limit_errc>(ec.value()), options_);
        failures_.record(redact, f.stage, what);
    }
    co_return ec;
}

asio::awaitable<std::error_code> adapter::health_check(connection& c) const {
    co_return co_await simple_command(c, options_, "NOOP");
}

asio::awaitable<std::error_code> adapter::reset(connection& c) const {
    session* s = find_session(c);
    if (s && s->ready && s->selected && s->caps.unselect) {
        auto ec = co_await simple_command(c, options_, "UNSELECT");
        if (!ec) s->selected.reset();
        co_return ec;
    }
    co_return co_await simple_command(c, options_, "NOOP");
}

asio::awaitable<void> adapter::close(connection& c) const {
    session* s = find_session(c);
    if (!s || s->broken || !c.io().is_open()) co_return;
    (void)co_await with_timeout(logout_raw(c, *s, options_), options_.command_timeout,
                                netpool::errc::operation_timeout);
}

asio::awaitable<std::error_code> adapter::select(connection& c, std::string_view mailbox, bool read_only,
                                                 mailbox_info* out) const {
    session& s = ready_session(c, "select");
    if (s.broken) co_return netpool::errc::protocol_error;
    // Already selected: EXAMINE is satisfied by any read-only selection, SELECT only by a
    // read-write one.
    if (s.selected && s.selected->name == mailbox && s.selected->read_only == read_only) {
        if (out) *out = *s.selected;
        co_return std::error_code{};
    }
    const char* verb = read_only ? "EXAMINE" : "SELECT";
    s.selected.reset();  // the server deselects at once, whatever the outcome
    mailbox_info m;
    m.name = std::string(mailbox);
    m.read_only = read_only;
    const untagged_handler h = [&](response& r) {
        apply_untagged(r, m);
        return std::error_code{};
    };
    const std::array<command_arg, 1> args{command_arg{mailbox}};
    response tagged;
    if (auto ec = co_await command(c, s, options_, verb, args, h, tagged)) co_return ec;
    if (auto ec = judge(s, options_, tagged)) {
        const std::string code = tagged.code_name();
        if (tagged.status == "NO" && (code.empty() || code == "NONEXISTENT")) co_return errc::mailbox_not_found;
        co_return ec;
    }
    const std::string code = tagged.code_name();
    if (code == "READ-ONLY") m.read_only = true;
    else if (code == "READ-WRITE") m.read_only = false;
    {
        std::lock_guard lk(uidvalidity_->mu);
        auto it = uidvalidity_->last.find(m.name);
        if (it == uidvalidity_->last.end()) uidvalidity_->last.emplace(m.name, m.uidvalidity);
        else {
            m.uidvalidity_changed = it->second != m.uidvalidity;
            it->second = m.uidvalidity;
        }
    }
    if (out) *out = m;
    m.uidvalidity_changed = false;  // reported once
    s.selected = std::move(m);
    co_return std::error_code{};
}

asio::awaitable<std::error_code> adapter::uid_search(connection& c, std::string_view criteria,
                                                     std::vector<std::uint32_t>& uids) const {
    session& s = ready_session(c, "uid_search");
    if (criteria.empty() || criteria.find_first_of("\r\n") != std::string_view::npos)
        throw std::invalid_argument("netpool::imap::adapter::uid_search: criteria must be non-empty, without CR or LF");
    if (s.broken) co_return netpool::errc::protocol_error;
    uids.clear();
    const untagged_handler h = [&](response& r) -> std::error_code {
        if (r.name != "SEARCH" && r.name != "ESEARCH") return {};
        switch (collect_search(r, uids, options_.max_search_results)) {
        case search_status::ok: return {};
        case search_status::too_many: return limit_errc::too_many_search_results;
        case search_status::malformed: break;
        }
        return netpool::errc::protocol_error;
    };
    const std::array<command_arg, 1> args{command_arg{criteria, false}};
    response tagged;
    if (auto ec = co_await command(c, s, options_, "UID SEARCH", args, h, tagged, 1)) {
        uids.clear();
        co_return ec;
    }
    co_return judge(s, options_, tagged);
}

asio::awaitable<std::error_code> adapter::uid_fetch(connection& c, std::span<const std::uint32_t> uids,
                                                    std::vector<fetched_message>& out, fetch_parts parts) const {
    session& s = ready_session(c, "uid_fetch");
    out.clear();
    if (s.broken) co_return netpool::errc::protocol_error;
    if (uids.empty()) co_return std::error_code{};
    const std::string set = format_uid_set(uids);
    std::vector<std::uint32_t> wanted(uids.begin(), uids.end());
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    std::map<std::uint32_t, fetched_message> got;
    const untagged_handler h = [&](response& r) {
        if (r.name != "FETCH") return std::error_code{};
        // Kept only for a UID asked for: a FETCH without UID (flags of another message) or
        // for any other UID is dropped here, so what a server sends cannot pile up.
        const auto uid = fetch_uid(r);
        if (!uid || !std::binary_search(wanted.begin(), wanted.end(), *uid)) return std::error_code{};
        auto m = parse_fetch(r);
        auto [it, fresh] = got.try_emplace(m->uid);
        if (fresh) it->second = std::move(*m);
        else merge_fetch(it->second, std::move(*m));
        return std::error_code{};
    };
    const char* items = "(UID FLAGS ENVELOPE RFC822.SIZE)";
    if (parts == fetch_parts::header) items = "(UID FLAGS ENVELOPE RFC822.SIZE BODY.PEEK[HEADER])";
    if (parts == fetch_parts::full) items = "(UID FLAGS ENVELOPE RFC822.SIZE BODY.PEEK[])";
    const std::array<command_arg, 2> args{command_arg{set, false}, command_arg{items, false}};
    response tagged;
    if (auto ec = co_await command(c, s, options_, "UID FETCH", args, h, tagged, wanted.size())) co_return ec;
    if (auto ec = judge(s, options_, tagged)) co_return ec;
    out.reserve(got.size());
    for (const auto uid : uids) {
        auto it = got.find(uid);
        if (it == got.end()) continue;
        if (parts == fetch_parts::full && it->second.header.empty()) {
            // The header ends at the first empty line (RFC 5322), which it includes; a
            // message without one is all header.
            const auto& body = it->second.body;
            const auto end = body.find("\r\n\r\n");
            it->second.header = end == std::string::npos ? body : body.substr(0, end + 4);
        }
        out.push_back(std::move(it->second));
        got.erase(it);
    }
    co_return std::error_code{};
}

const session* adapter::session_state(const connection& c) { return c.state_if<session>(); }

bool adapter::must_discard(const std::error_code& ec) noexcept {
    if (!ec) return false;
    return !(ec == errc::command_failed || ec == errc::command_rejected || ec == errc::mailbox_not_found ||
             ec == errc::uidvalidity_changed);
}

std::string adapter::last_handshake_failure() const { return failures_.text(); }

// ---------------------------------------------------------------------------------------


void register_imap_adapter(adapter_registry& registry) {
    registry.add("imap", [](const adapter_params& params) -> any_adapter {
        client_options o;
        for (const auto& [key, value] : params) {
            if (key == "user") o.cred.user = value;
            else if (key == "password_env") o.cred.secret = param_secret_from_env(key, value);
            else if (key == "allow_plaintext_login") o.allow_plaintext_login = param_bool(key, value);
            else if (key == "sasl_ir") o.use_sasl_ir = param_bool(key, value);
            else if (key == "login") {
                if (value == "automatic") o.method = login_method::automatic;
                else if (value == "login") o.method = login_method::login;
                else if (value == "plain") o.method = login_method::authenticate_plain;
                else throw config_error(key, "expects automatic, login or plain, got '" + value + "'");
            }
            else if (key == "command_timeout_ms") o.command_timeout = milliseconds(param_count(key, value, 86400000));
            else if (key == "greeting_timeout_ms") o.greeting_timeout = milliseconds(param_count(key, value, 86400000));
            else if (key == "max_line") o.limits.max_line = param_count(key, value);
            else if (key == "max_literal") o.limits.max_literal = param_count(key, value);
            else if (key == "max_values") o.limits.max_values = param_count(key, value);
            else if (key == "max_search_results") o.max_search_results = param_count(key, value);
            else if (key == "max_unsolicited") o.max_unsolicited = param_count(key, value);
            else
                throw config_error(key, "unknown parameter of the imap adapter (known: user, password_env, "
                                        "allow_plaintext_login, sasl_ir, login, command_timeout_ms, greeting_timeout_ms, max_line, "
                                        "max_literal, max_values, max_search_results, max_unsolicited)");
        }
        return adapter(std::move(o));
    });
}

}  // namespace netpool::imap
