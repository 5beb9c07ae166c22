// The "netpool.imap" error category.
#include <netpool/imap/error.hpp>

#include <netpool/error.hpp>

#include <string>

namespace netpool::imap {
namespace {

class category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "netpool.imap"; }

    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
        case errc::greeting_bye: return "IMAP greeting was BYE: the server refuses the session";
        case errc::login_failed: return "IMAP login failed: the server rejected the credentials or offers no usable mechanism";
        case errc::plaintext_login_refused:
            return "IMAP login refused over a connection without TLS (allow_plaintext_login is false)";
        case errc::starttls_unavailable: return "IMAP STARTTLS required but not offered by the server";
        case errc::starttls_injection:
            return "IMAP STARTTLS: the server sent data after its OK, before the TLS handshake (possible injection)";
        case errc::mailbox_not_found: return "IMAP mailbox does not exist";
        case errc::command_failed: return "IMAP command failed (NO)";
        case errc::command_rejected: return "IMAP command rejected (BAD)";
        case errc::server_bye: return "IMAP BYE: the server is closing the session";
        case errc::uidvalidity_changed: return "IMAP UIDVALIDITY changed: cached UIDs are void";
        case errc::unexpected_response: return "IMAP response not allowed for the command";
        case errc::login_disabled:
            return "IMAP login disabled: the server takes no login on this connection (LOGINDISABLED, no AUTH=PLAIN)";
        }
        return "unknown netpool.imap error " + std::to_string(v);
    }

    std::error_condition default_error_condition(int v) const noexcept override {
        if (is_handshake_failure(static_cast<errc>(v)))
            return netpool::make_error_condition(netpool::condition::handshake_rejected);
        return {v, *this};
    }

    bool equivalent(int v, const std::error_condition& c) const noexcept override {
        if (c == netpool::make_error_condition(netpool::condition::credentials_rejected))
            return v == static_cast<int>(errc::login_failed) || v == static_cast<int>(errc::login_disabled);
        return default_error_condition(v) == c;
    }
};

}  // namespace

const std::error_category& imap_category() noexcept {
    static const category_impl instance;
    return instance;
}

bool is_handshake_failure(errc e) noexcept {
    switch (e) {
    case errc::greeting_bye:
    case errc::login_failed:
    case errc::login_disabled:
    case errc::plaintext_login_refused:
    case errc::starttls_unavailable:
    case errc::starttls_injection: return true;
    default: return false;
    }
}

}  // namespace netpool::imap
