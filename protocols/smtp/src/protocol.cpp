// Pure SMTP client logic: AUTH encodings, envelope checks, command lines, and the verdict over a
// transaction's replies.
#include <netpool/smtp/protocol.hpp>

#include <netpool/base64.hpp>
#include <netpool/smtp/error.hpp>

namespace netpool::smtp {

namespace {

bool is_ascii(std::string_view s) noexcept { return !has_8bit(s); }

std::error_code failure_for(const reply& r) {
    return r.transient() ? errc::transient_failure : errc::permanent_failure;
}

void fail(send_result& r, std::error_code ec, std::string stage, const reply& rep) {
    r.sent = false;
    r.ec = ec;
    r.stage = std::move(stage);
    r.last_reply = rep;
}

envelope_next abort_with(send_result& r, std::error_code ec, std::string stage, const reply& rep) {
    fail(r, ec, std::move(stage), rep);
    r.discard = true;
    return envelope_next::abort;
}

}  // namespace

bool valid_address(std::string_view address, bool allow_empty) noexcept {
    if (address.empty()) return allow_empty;
    if (address.size() > 512) return false;  // RFC 5321 4.5.3.1.3: a path is at most 256 octets; be lenient
    for (char ch : address) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x21 || c == 0x7F || c == '<' || c == '>') return false;  // controls, space, CR, LF, brackets
    }
    return true;
}

bool has_8bit(std::string_view bytes) noexcept {
    for (char c : bytes)
        if (static_cast<unsigned char>(c) >= 0x80) return true;
    return false;
}

std::error_code plan_transaction(const envelope& env, const capabilities& caps, std::size_t message_size,
                                 bool content_8bit, mail_parameters& out, std::string& stage) {
    out = {};
    stage = "envelope";
    bool non_ascii = !is_ascii(env.mail_from);
    if (!valid_address(env.mail_from, true)) return errc::invalid_address;
    if (env.rcpt_to.empty()) return errc::no_recipients;
    for (const auto& a : env.rcpt_to) {
        if (!valid_address(a, false)) return errc::invalid_address;
        non_ascii = non_ascii || !is_ascii(a);
    }
    if (non_ascii) {
        // RFC 6531: internationalised addresses only to a server that says SMTPUTF8.
        if (!caps.smtputf8) return errc::invalid_address;
        out.smtputf8 = true;
    }
    if (caps.size) {
        stage = "SIZE";
        if (*caps.size > 0 && message_size > *caps.size) return errc::message_too_large;
        out.size = message_size;
    }
    // Without 8BITMIME the bytes go as they are: most servers pass them, and refusing would
    // be a worse answer for UTF-8 text than trying.
    out.body_8bitmime = content_8bit && caps.eight_bit_mime;
    stage.clear();
    return {};
}

std::error_code check_line_lengths(std::string_view content, std::string& detail) {
    std::size_t line = 1, start = 0;
    for (std::size_t i = 0; i <= content.size(); ++i) {
        const bool end = i == content.size() || content[i] == '\r' || content[i] == '\n';
        if (!end) continue;
        if (i - start > max_content_line) {
            detail = "line " + std::to_string(line) + " (byte offset " + std::to_string(start) + ") has " +
                     std::to_string(i - start) + " octets; at most " + std::to_string(max_content_line) +
                     " are allowed (RFC 5322 2.1.1): encode the part (quoted-printable or base64) or build the "
                     "message with smtp::message, which does; nothing was sent";
            return errc::line_too_long;
        }
        if (i < content.size() && content[i] == '\r' && i + 1 < content.size() && content[i + 1] == '\n') ++i;
        start = i + 1;
        ++line;
    }
    return {};
}

std::string mail_from_command(std::string_view address, const mail_parameters& p) {
    std::string cmd = "MAIL FROM:<";
    cmd += address;
    cmd += '>';
    if (p.size) cmd += " SIZE=" + std::to_string(*p.size);
    if (p.body_8bitmime) cmd += " BODY=8BITMIME";
    if (p.smtputf8) cmd += " SMTPUTF8";
    cmd += "\r\n";
    return cmd;
}

std::string rcpt_to_command(std::string_view address) {
    std::string cmd = "RCPT TO:<";
    cmd += address;
    cmd += ">\r\n";
    return cmd;
}

envelope_next judge_envelope(const envelope& env, const reply& mail, const std::vector<reply>& rcpt,
                             const reply* data, send_result& r) {
    r.recipients.clear();
    for (std::size_t i = 0; i < rcpt.size() && i < env.rcpt_to.size(); ++i) {
        const reply& x = rcpt[i];
        recipient_result rr;
        rr.address = env.rcpt_to[i];
        rr.code = x.code;
        rr.status = x.status;
        for (std::size_t l = 0; l < x.lines.size(); ++l) {
            if (l) rr.text += " / ";
            rr.text += x.lines[l];
        }
        r.recipients.push_back(std::move(rr));
    }

    // 421 at any point ends the session, whatever came before.
    if (mail.code == 421) return abort_with(r, errc::service_closing, "MAIL FROM", mail);
    for (const auto& x : rcpt)
        if (x.code == 421) return abort_with(r, errc::service_closing, "RCPT TO", x);
    if (data && data->code == 421) return abort_with(r, errc::service_closing, "DATA", *data);

    if (mail.code < 200 || (mail.code >= 300 && mail.code < 400))
        return abort_with(r, errc::unexpected_reply, "MAIL FROM", mail);
    for (const auto& x : rcpt)
        if (x.code < 200 || (x.code >= 300 && x.code < 400))
            return abort_with(r, errc::unexpected_reply, "RCPT TO", x);
    if (data && data->code != 354 && (data->code < 400 || data->code >= 600))
        return abort_with(r, errc::unexpected_reply, "DATA", *data);

    // A pipelined DATA that the server accepted must be ended even when the envelope failed
    // (RFC 2920 3.1): the server is now reading content.
    const auto failed = [&]() { return data && data->code == 354 ? envelope_next::send_dot_only : envelope_next::done; };

    if (!mail.positive()) {
        fail(r, failure_for(mail), "MAIL FROM", mail);
        return failed();
    }
    if (rcpt.size() < env.rcpt_to.size()) return envelope_next::proceed;  // more RCPTs to come (lock-step)

    bool any_accepted = false, any_transient = false;
    const reply* last_refusal = nullptr;
    for (const auto& x : rcpt) {
        if (x.positive()) any_accepted = true;
        else {
            any_transient = any_transient || x.transient();
            last_refusal = &x;
        }
    }
    if (!any_accepted) {
        fail(r, any_transient ? errc::transient_failure : errc::permanent_failure, "RCPT TO",
             last_refusal ? *last_refusal : mail);
        return failed();
    }
    if (data && data->code != 354) {
        fail(r, failure_for(*data), "DATA", *data);
        return envelope_next::done;
    }
    return envelope_next::proceed;
}

void judge_end_of_data(const reply& final_reply, send_result& r) {
    if (final_reply.code >= 200 && final_reply.code < 300) {
        r.sent = true;
        r.ec.clear();
        r.stage.clear();
        r.last_reply = final_reply;
        return;
    }
    if (final_reply.code == 421) {
        fail(r, errc::service_closing, "end of data", final_reply);
        r.discard = true;
    } else if (final_reply.code >= 400 && final_reply.code < 600) {
        fail(r, failure_for(final_reply), "end of data", final_reply);
    } else {
        fail(r, errc::unexpected_reply, "end of data", final_reply);
        r.discard = true;
    }
}

}  // namespace netpool::smtp
