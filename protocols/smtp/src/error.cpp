// The "netpool.smtp" error category.
#include <netpool/smtp/error.hpp>

#include <netpool/error.hpp>

#include <string>

namespace netpool::smtp {
namespace {

class category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "netpool.smtp"; }

    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
        case errc::greeting_rejected: return "SMTP greeting rejected: the server did not answer 220";
        case errc::ehlo_rejected: return "SMTP EHLO and HELO rejected by the server";
        case errc::starttls_unavailable: return "SMTP STARTTLS required but not offered by the server";
        case errc::starttls_rejected: return "SMTP STARTTLS refused by the server";
        case errc::starttls_injection:
            return "SMTP STARTTLS: the server sent data after its 220, before the TLS handshake (possible injection)";
        case errc::plaintext_auth_refused:
            return "SMTP AUTH refused over a connection without TLS (allow_plaintext_auth is false)";
        case errc::auth_unavailable: return "SMTP AUTH: the server offers no usable mechanism";
        case errc::auth_failed: return "SMTP AUTH: the server rejected the credentials";
        case errc::service_closing: return "SMTP 421: the server is closing the session";
        case errc::transient_failure: return "SMTP transient failure (4xx): retry later";
        case errc::permanent_failure: return "SMTP permanent failure (5xx)";
        case errc::message_too_large: return "SMTP message exceeds the server's SIZE limit";
        case errc::no_recipients: return "SMTP envelope has no recipient";
        case errc::invalid_address: return "SMTP address is invalid or needs SMTPUTF8 the server lacks";
        case errc::unexpected_reply: return "SMTP reply code not allowed for the command";
        case errc::reply_before_end_of_data:
            return "SMTP server replied before the end of the message data (protocol violation): not sent";
        case errc::line_too_long:
            return "SMTP message has a line longer than 998 octets (RFC 5322): encode it before sending";
        case errc::token_rejected: return "SMTP AUTH XOAUTH2: the server rejected the token";
        case errc::outcome_unknown:
            return "SMTP outcome unknown: the final dot was sent and no reply came; the message may have been delivered";
        }
        return "unknown netpool.smtp error " + std::to_string(v);
    }

    std::error_condition default_error_condition(int v) const noexcept override {
        if (is_handshake_failure(static_cast<errc>(v)))
            return netpool::make_error_condition(netpool::condition::handshake_rejected);
        return {v, *this};
    }

    bool equivalent(int v, const std::error_condition& c) const noexcept override {
        if (c == netpool::make_error_condition(netpool::condition::credentials_rejected))
            return v == static_cast<int>(errc::auth_failed);
        return default_error_condition(v) == c;
    }
};

}  // namespace

const std::error_category& smtp_category() noexcept {
    static const category_impl instance;
    return instance;
}

bool is_handshake_failure(errc e) noexcept {
    switch (e) {
    case errc::greeting_rejected:
    case errc::ehlo_rejected:
    case errc::starttls_unavailable:
    case errc::starttls_rejected:
    case errc::starttls_injection:
    case errc::plaintext_auth_refused:
    case errc::auth_unavailable:
    case errc::auth_failed:
    case errc::token_rejected: return true;
    default: return false;
    }
}

}  // namespace netpool::smtp
