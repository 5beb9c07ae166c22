// The SMTP adapter: session set-up (greeting, EHLO/HELO, STARTTLS, AUTH), NOOP, RSET, QUIT,
// and one transaction. Decisions over replies are the pure functions of protocol.hpp; the
// I/O is a kit::session per connection, every read bounded by a timeout and by reply_limits.
#include <netpool/smtp/adapter.hpp>

#include <netpool/config.hpp>
#include <netpool/error.hpp>
#include <netpool/kit.hpp>
#include <netpool/options.hpp>
#include <netpool/sasl.hpp>
#include <netpool/smtp/protocol.hpp>
#include <netpool/smtp/reply.hpp>

#include <chrono>
#include <stdexcept>

namespace netpool::smtp {

namespace {

using std::chrono::milliseconds;

/// Per-connection session, kept in the connection's state. The kit session's read buffer
/// lasts the whole session, so bytes read past a reply are never lost between commands
/// (they are either the next pipelined reply or a protocol error).
struct session {
    kit::session io;
    capabilities caps;
    bool ready = false;    // the handshake completed
    bool in_data = false;  // after a 354, before the final dot: the server reads content
};

session* find_session(connection& c) { return c.state_if<session>(); }

/// Sends `line` (if any) and reads one reply within `timeout`. With `alone`, the reply must
/// be all the server sent: anything after it was sent unasked.
asio::awaitable<std::error_code> exchange(connection& c, session& s, std::string_view line,
                                          const client_options& o, milliseconds timeout, reply& out,
                                          bool alone = true) {
    reply_parser parser(o.limits);
    auto ec = co_await s.io.exchange(c, line, parser, out, timeout);
    if (!ec && alone && !s.io.buffered().empty()) ec = netpool::errc::protocol_error;
    co_return ec;
}

asio::awaitable<std::error_code> read_reply(connection& c, session& s, const client_options& o, milliseconds timeout,
                                            reply& out) {
    co_return co_await exchange(c, s, {}, o, timeout, out, false);
}

/// Where a handshake failed, for last_handshake_failure(). Secrets collected during AUTH
/// are removed from anything recorded.
struct failure_info {
    std::string stage;
    std::optional<reply> r;
    std::vector<wiped_string> secrets;  // forms not derived from cred.secret (the XOAUTH2 token)
};

std::error_code failed(failure_info& f, std::string stage, std::error_code ec, const reply* r = nullptr) {
    f.stage = std::move(stage);
    if (r) f.r = *r;
    return ec;
}

/// EHLO, and HELO when EHLO gets a 5xx (a pre-ESMTP server).
asio::awaitable<std::error_code> greet(connection& c, session& s, const client_options& o, failure_info& f) {
    reply r;
    if (auto ec = co_await exchange(c, s, "EHLO " + o.helo_name + "\r\n", o, o.command_timeout, r))
        co_return failed(f, "EHLO", ec);
    if (r.code == 250) {
        s.caps = parse_ehlo(r);
        co_return std::error_code{};
    }
    if (r.code == 421) co_return failed(f, "EHLO", errc::service_closing, &r);
    if (!r.permanent()) co_return failed(f, "EHLO", errc::ehlo_rejected, &r);
    if (auto ec = co_await exchange(c, s, "HELO " + o.helo_name + "\r\n", o, o.command_timeout, r))
        co_return failed(f, "HELO", ec);
    if (r.code == 421) co_return failed(f, "HELO", errc::service_closing, &r);
    if (r.code != 250) co_return failed(f, "HELO", errc::ehlo_rejected, &r);
    s.caps = capabilities{};  // esmtp = false: no extensions
    co_return std::error_code{};
}

/// After a failed or refused exchange: 421 closes, anything else is auth_failed.
std::error_code auth_refused(failure_info& f, const std::string& stage, const reply& r) {
    return failed(f, stage, r.code == 421 ? std::error_code(errc::service_closing) : errc::auth_failed, &r);
}

/// XOAUTH2 refused: the token (it may have expired), not the credentials; the next session
/// asks for a fresh one.
std::error_code token_refused(failure_info& f, const std::string& stage, const reply& r) {
    return failed(f, stage, r.code == 421 ? std::error_code(errc::service_closing) : errc::token_rejected, &r);
}

asio::awaitable<std::error_code> auth_plain(connection& c, session& s, const client_options& o, failure_info& f) {
    const std::string stage = "AUTH PLAIN";
    // Everything built from the secret is wiped when it goes (the redactor knows its forms).
    const wiped_string response(netpool::sasl::plain_response(o.cred.user, o.cred.secret));
    const wiped_string line = wiped_concat({"AUTH PLAIN ", response, "\r\n"});
    reply r;
    if (auto ec = co_await exchange(c, s, line, o, o.command_timeout, r)) co_return failed(f, stage, ec);
    if (r.code == 235) co_return std::error_code{};
    if (r.code == 334) {
        // A challenge after an initial response is not PLAIN (RFC 4954 4): cancel.
        reply end;
        if (auto ec = co_await exchange(c, s, "*\r\n", o, o.command_timeout, end)) co_return failed(f, stage, ec, &r);
        co_return auth_refused(f, stage, end);
    }
    co_return auth_refused(f, stage, r);
}

asio::awaitable<std::error_code> auth_login(connection& c, session& s, const client_options& o, failure_info& f) {
    const std::string stage = "AUTH LOGIN";
    const std::string user = base64_encode(o.cred.user);
    const wiped_string secret(base64_encode(o.cred.secret));
    const wiped_string secret_line = wiped_concat({secret, "\r\n"});
    reply r;
    if (auto ec = co_await exchange(c, s, "AUTH LOGIN\r\n", o, o.command_timeout, r)) co_return failed(f, stage, ec);
    if (r.code != 334) co_return auth_refused(f, stage, r);
    if (auto ec = co_await exchange(c, s, user + "\r\n", o, o.command_timeout, r)) co_return failed(f, stage, ec);
    if (r.code != 334) co_return auth_refused(f, stage, r);
    if (auto ec = co_await exchange(c, s, secret_line, o, o.command_timeout, r)) co_return failed(f, stage, ec);
    if (r.code == 235) co_return std::error_code{};
    co_return auth_refused(f, stage, r);
}

asio::awaitable<std::error_code> auth_xoauth2(connection& c, session& s, const client_options& o,
                                              std::atomic<bool>& token_rejected, failure_info& f) {
    const std::string stage = "AUTH XOAUTH2";
    const wiped_string token(o.oauth_token(token_rejected.load()));
    const wiped_string response(netpool::sasl::xoauth2_response(o.cred.user, token));
    f.secrets.emplace_back(std::string(token.s()));  // the redactor adds its forms (raw, XOAUTH2)
    const wiped_string line = wiped_concat({"AUTH XOAUTH2 ", response, "\r\n"});
    reply r;
    if (auto ec = co_await exchange(c, s, line, o, o.command_timeout, r)) co_return failed(f, stage, ec);
    if (r.code == 235) {
        token_rejected = false;
        co_return std::error_code{};
    }
    if (r.code == 421) co_return failed(f, stage, errc::service_closing, &r);
    token_rejected = true;
    if (r.code == 334) {
        // The challenge carries the error (base64 JSON); an empty line gets the final 535.
        reply end;
        if (auto ec = co_await exchange(c, s, "\r\n", o, o.command_timeout, end)) co_return failed(f, stage, ec, &r);
        co_return token_refused(f, stage, end);
    }
    co_return token_refused(f, stage, r);
}

asio::awaitable<std::error_code> authenticate(connection& c, session& s, const client_options& o,
                                              std::atomic<bool>& token_rejected, failure_info& f) {
    std::vector<std::string> wanted;
    if (o.oauth_token) wanted.emplace_back("XOAUTH2");
    for (const auto& m : o.mechanisms) {
        if (m == "XOAUTH2" && (!o.oauth_token || !wanted.empty())) continue;
        if (o.oauth_token && o.cred.secret.empty()) continue;  // PLAIN/LOGIN need the secret
        wanted.push_back(m);
    }
    for (const auto& m : wanted) {
        if (!s.caps.has_auth(m)) continue;
        if (m == "XOAUTH2") co_return co_await auth_xoauth2(c, s, o, token_rejected, f);
        if (m == "PLAIN") co_return co_await auth_plain(c, s, o, f);
        if (m == "LOGIN") co_return co_await auth_login(c, s, o, f);
    }
    co_return failed(f, "AUTH", errc::auth_unavailable);
}

asio::awaitable<std::error_code> open_session(connection& c, const client_options& o,
                                              std::atomic<bool>& token_rejected, failure_info& f) {
    session& s = c.emplace_state<session>();
    const tls_mode mode = c.remote().tls;
    const bool auth = !o.cred.user.empty();
    if (kit::credentials_in_clear_refused(c, auth, o.allow_plaintext_auth))
        co_return failed(f, "AUTH", errc::plaintext_auth_refused);

    reply r;
    if (auto ec = co_await exchange(c, s, {}, o, o.command_timeout, r)) co_return failed(f, "greeting", ec);
    if (r.code == 421) co_return failed(f, "greeting", errc::service_closing, &r);
    if (r.code != 220) co_return failed(f, "greeting", errc::greeting_rejected, &r);
    if (auto ec = co_await greet(c, s, o, f)) co_return ec;

    if (mode == tls_mode::starttls) {
        if (!s.caps.starttls) co_return failed(f, "STARTTLS", errc::starttls_unavailable);
        if (auto ec = co_await exchange(c, s, "STARTTLS\r\n", o, o.command_timeout, r, false))
            co_return failed(f, "STARTTLS", ec);
        if (r.code == 421) co_return failed(f, "STARTTLS", errc::service_closing, &r);
        if (r.code != 220) co_return failed(f, "STARTTLS", errc::starttls_rejected, &r);
        const std::error_code injected = errc::starttls_injection;
        if (auto ec = co_await s.io.start_tls(c, o.command_timeout, injected))
            co_return ec == injected ? failed(f, "STARTTLS", ec, &r) : failed(f, "STARTTLS handshake", ec);
        s.caps = capabilities{};  // what the server said in clear text is forgotten
        if (auto ec = co_await greet(c, s, o, f)) co_return ec;
    }

    if (auth) {
        if (auto ec = co_await authenticate(c, s, o, token_rejected, f)) co_return ec;
    }
    s.ready = true;
    co_return std::error_code{};
}

/// A command outside a transaction that must get 250 (NOOP, RSET).
asio::awaitable<std::error_code> simple_command(connection& c, const client_options& o, std::string_view line) {
    session* s = find_session(c);
    if (!s || !s->ready) co_return netpool::errc::protocol_error;
    reply r;
    if (auto ec = co_await exchange(c, *s, line, o, o.command_timeout, r)) co_return ec;
    if (r.code == 250) co_return std::error_code{};
    if (r.code == 421) co_return errc::service_closing;
    co_return errc::unexpected_reply;
}

asio::awaitable<void> quit(connection& c, const client_options& o) {
    session* s = find_session(c);
    // Between a 354 and the final dot the server reads content: QUIT would be a line of the
    // message, and no reply would come.
    if (!s || !c.io().is_open() || s->in_data) co_return;
    reply r;
    (void)co_await exchange(c, *s, "QUIT\r\n", o, o.command_timeout, r, false);
}

session& ready_session(connection& c) {
    session* s = find_session(c);
    if (!s || !s->ready)
        throw std::logic_error("netpool::smtp::adapter::send: the connection was not opened by an SMTP adapter");
    return *s;
}

/// Fails the transaction because the server sent something between its 354 and the final dot
/// (the dot not yet written): no reply is due then (RFC 5321 4.1.1.4, 3.3), so it can be no
/// verdict on the message, and the next reply would be read out of step. The dot is never
/// sent; what came is read (within command_timeout) only to show it in the result; the
/// session stays "in data", so close() sends no QUIT into the content.
asio::awaitable<void> fail_reply_before_end_of_data(connection& c, session& s, const client_options& o,
                                                    send_result& r) {
    r.sent = false;
    r.ec = errc::reply_before_end_of_data;
    r.stage = "end of data";
    r.discard = true;
    r.detail = "the server replied before the end of the message data; the final dot was not sent";
    reply early;
    if (!co_await read_reply(c, s, o, o.command_timeout, early)) {
        r.detail += " (it sent: " + early.to_string() + ")";
        r.last_reply = std::move(early);
    }
    s.io.drop_buffered();
}

std::string_view stage_of_read(std::size_t index, std::size_t rcpts) {
    if (index == 0) return "MAIL FROM";
    if (index <= rcpts) return "RCPT TO";
    return "DATA";
}

}  // namespace

// ---------------------------------------------------------------------------------------

adapter::adapter(client_options options)
    : options_(std::move(options)), token_rejected_(std::make_shared<std::atomic<bool>>(false)) {
    options_.validate();
}

asio::awaitable<std::error_code> adapter::handshake(connection& c) const {
    failure_info f;
    const auto ec = co_await open_session(c, options_, *token_rejected_, f);
    if (ec) {
        // The record is what an operator reads when a pool goes endpoint_down: the stage and
        // the server's words, never a secret (a server could echo one back).
        // Every form sent: the password raw and in base64 (AUTH LOGIN, AUTH PLAIN), the token
        // raw and in its XOAUTH2 message.
        netpool::redactor redact;
        redact.add_credential(options_.cred.user, options_.cred.secret);
        for (const auto& secret : f.secrets) redact.add_credential(options_.cred.user, secret);
        if (f.r)
            for (auto& line : f.r->lines) line = redact(std::move(line));
        const std::string what = f.r ? f.r->to_string() : ec.message();
        failures_.record(redact, f.stage, what, std::move(f.r));
    }
    co_return ec;
}

asio::awaitable<std::error_code> adapter::health_check(connection& c) const {
    co_return co_await simple_command(c, options_, "NOOP\r\n");
}

asio::awaitable<std::error_code> adapter::reset(connection& c) const {
    co_return co_await simple_command(c, options_, "RSET\r\n");
}

asio::awaitable<void> adapter::close(connection& c) const { co_await quit(c, options_); }

const capabilities* adapter::session_capabilities(const connection& c) {
    const auto* s = c.state_if<session>();
    return s ? &s->caps : nullptr;
}

std::string adapter::last_handshake_failure() const { return failures_.text(); }

std::optional<reply> adapter::last_handshake_reply() const { return failures_.detail(); }

// g++ 12 inlines Asio's coroutine frame allocator (thread_info_base::allocate, which may
// call aligned_alloc) into this large coroutine and then warns that the frame's operator
// delete does not match aligned_alloc. Asio's operator delete routes the block back through
// thread_info_base::deallocate, which frees it with aligned_delete: the pair does match.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<send_result> adapter::send(connection& c, const envelope& env, std::string_view content) const {
    session& s = ready_session(c);
    const client_options& o = options_;
    send_result r;

    // A line over 998 octets is refused, not rewritten (see check_line_lengths): nothing sent.
    if (auto ec = check_line_lengths(content, r.detail)) {
        r.ec = ec;
        r.stage = "content";
        co_return r;
    }
    std::string data;
    encode_data(content, data);  // ends with ".\r\n"
    mail_parameters params;
    if (auto ec = plan_transaction(env, s.caps, data.size() - 3, has_8bit(content), params, r.stage)) {
        r.ec = ec;  // nothing was sent: the session is as clean as before
        co_return r;
    }

    const auto io_failure = [&](std::error_code ec, std::string_view stage) {
        r.sent = false;
        r.ec = ec;
        r.stage = std::string(stage);
        r.discard = true;  // a reply may be half read or a command half written
        return r;
    };

    reply mail;
    std::vector<reply> rcpts;
    rcpts.reserve(env.rcpt_to.size());
    std::optional<reply> data_reply;
    envelope_next next = envelope_next::proceed;

    if (o.use_pipelining && s.caps.pipelining) {
        // RFC 2920: the whole envelope and DATA in one write, replies read in order.
        std::string batch = mail_from_command(env.mail_from, params);
        for (const auto& a : env.rcpt_to) batch += rcpt_to_command(a);
        batch += "DATA\r\n";
        if (auto ec = co_await s.io.write_all(c, batch, o.command_timeout)) co_return io_failure(ec, "MAIL FROM");
        const std::size_t expected = env.rcpt_to.size() + 2;
        for (std::size_t i = 0; i < expected; ++i) {
            reply x;
            if (auto ec = co_await read_reply(c, s, o, o.command_timeout, x))
                co_return io_failure(ec, stage_of_read(i, env.rcpt_to.size()));
            const bool closing = x.code == 421;
            if (i == 0) mail = std::move(x);
            else if (i <= env.rcpt_to.size()) rcpts.push_back(std::move(x));
            else data_reply = std::move(x);
            if (closing) break;  // the server is going away: no more replies will come
        }
        next = judge_envelope(env, mail, rcpts, data_reply ? &*data_reply : nullptr, r);
    } else {
        if (auto ec = co_await exchange(c, s, mail_from_command(env.mail_from, params), o, o.command_timeout, mail))
            co_return io_failure(ec, "MAIL FROM");
        next = judge_envelope(env, mail, rcpts, nullptr, r);
        while (next == envelope_next::proceed && rcpts.size() < env.rcpt_to.size()) {
            reply x;
            if (auto ec = co_await exchange(c, s, rcpt_to_command(env.rcpt_to[rcpts.size()]), o, o.command_timeout, x))
                co_return io_failure(ec, "RCPT TO");
            rcpts.push_back(std::move(x));
            next = judge_envelope(env, mail, rcpts, nullptr, r);
        }
        if (next == envelope_next::proceed) {
            reply x;
            // Not `alone`: bytes behind a 354 are judged below, as a reply before the content.
            if (auto ec = co_await exchange(c, s, "DATA\r\n", o, o.command_timeout, x, false))
                co_return io_failure(ec, "DATA");
            data_reply = std::move(x);
            next = judge_envelope(env, mail, rcpts, &*data_reply, r);
        }
    }

    switch (next) {
    case envelope_next::abort: co_return r;  // judge set discard
    case envelope_next::done:
        if (!s.io.buffered().empty()) r.discard = true;  // unasked bytes after the last reply
        else c.request_reset();
        co_return r;
    case envelope_next::send_dot_only: {
        // The server is reading content for a transaction without recipients: end it with
        // nothing, and report the envelope's failure. Unless it already sent more: then the
        // reply to the dot could not be told from it.
        s.in_data = true;
        if (s.io.bytes_waiting(c)) {
            r.discard = true;
            r.detail = "the server sent data after its 354, before the final dot";
            co_return r;
        }
        reply end;
        if (auto ec = co_await exchange(c, s, ".\r\n", o, o.data_timeout, end)) {
            r.discard = true;
            co_return r;
        }
        s.in_data = false;
        if (end.code == 421) r.discard = true;
        else c.request_reset();
        co_return r;
    }
    case envelope_next::proceed: break;
    }

    // After the 354: the content, a check that the server said nothing meanwhile, the final
    // dot, and the reply to it, all within data_timeout. The verdict on the message is only
    // a reply read after the dot was written: anything that came before it is a protocol
    // violation (a false "sent" if it were taken for the verdict, and every later reply out
    // of step). What comes after the check but before the dot leaves cannot be told apart:
    // the check runs as late as it can.
    s.in_data = true;
    if (s.io.bytes_waiting(c)) {
        co_await fail_reply_before_end_of_data(c, s, o, r);
        co_return r;
    }
    const auto started = std::chrono::steady_clock::now();
    const auto left = [&] {  // no time_point + data_timeout: a huge timeout must not overflow
        const auto spent = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
        return spent >= o.data_timeout ? milliseconds(1) : o.data_timeout - spent;
    };
    const std::string_view content_lines = std::string_view(data).substr(0, data.size() - 3);
    if (!content_lines.empty()) {
        if (auto ec = co_await s.io.write_all(c, content_lines, left())) co_return io_failure(ec, "end of data");
    }
    if (s.io.bytes_waiting(c)) {
        co_await fail_reply_before_end_of_data(c, s, o, r);
        co_return r;
    }
    // The dot: if its write fails it did not go out, and without it no server delivers (RFC
    // 5321 4.1.1.4): a plain failure, safe to send again. Once it went out, a missing reply
    // is no verdict either way: the outcome is unknown. (Still in_data: no QUIT into a broken
    // session.)
    if (auto ec = co_await s.io.write_all(c, std::string_view(data).substr(data.size() - 3), left()))
        co_return io_failure(ec, "end of data");
    reply final_reply;
    if (auto ec = co_await read_reply(c, s, o, left(), final_reply)) {
        io_failure(ec, "end of data");
        r.ec = errc::outcome_unknown;
        r.detail = "the final dot was sent and no reply came (" + ec.message() + "): the message may have been delivered";
        co_return r;
    }
    s.in_data = false;
    judge_end_of_data(final_reply, r);
    if (!s.io.buffered().empty()) {
        r.discard = true;  // unasked bytes after the last reply
        if (r.sent) r.detail = "the server sent data after its reply to the final dot";
    } else if (!r.sent && !r.discard) {
        c.request_reset();
    }
    co_return r;
}
#pragma GCC diagnostic pop

// ---------------------------------------------------------------------------------------


void register_smtp_adapter(adapter_registry& registry) {
    registry.add("smtp", [](const adapter_params& params) -> any_adapter {
        client_options o;
        for (const auto& [key, value] : params) {
            if (key == "helo") o.helo_name = value;
            else if (key == "user") o.cred.user = value;
            else if (key == "password_env") o.cred.secret = param_secret_from_env(key, value);
            else if (key == "mechanisms") {
                o.mechanisms.clear();
                std::string_view rest = value;
                while (!rest.empty()) {
                    const auto comma = rest.find(',');
                    const auto item = rest.substr(0, comma);
                    if (!item.empty()) o.mechanisms.emplace_back(item);
                    if (comma == std::string_view::npos) break;
                    rest.remove_prefix(comma + 1);
                }
            } else if (key == "allow_plaintext_auth") o.allow_plaintext_auth = param_bool(key, value);
            else if (key == "pipelining") o.use_pipelining = param_bool(key, value);
            else if (key == "command_timeout_ms") o.command_timeout = milliseconds(param_count(key, value, 86400000));
            else if (key == "data_timeout_ms") o.data_timeout = milliseconds(param_count(key, value, 86400000));
            else if (key == "max_line") o.limits.max_line = param_count(key, value);
            else if (key == "max_lines") o.limits.max_lines = param_count(key, value);
            else
                throw config_error(key, "unknown parameter of the smtp adapter (known: helo, user, password_env, "
                                        "mechanisms, allow_plaintext_auth, pipelining, command_timeout_ms, "
                                        "data_timeout_ms, max_line, max_lines)");
        }
        return adapter(std::move(o));
    });
}

}  // namespace netpool::smtp
