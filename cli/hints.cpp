// See hints.hpp.
#include "hints.hpp"

#include <netpool/error.hpp>
#include <netpool/imap/error.hpp>
#include <netpool/smtp/error.hpp>

#include <asio/error.hpp>

namespace netpool::cli {

namespace {

bool mentions(std::string_view text, const std::error_code& ec) {
    const std::string m = ec.message();
    return !m.empty() && text.find(m) != std::string_view::npos;
}

bool is(const std::error_code& ec, std::string_view text, errc e) {
    return ec == e || mentions(text, make_error_code(e));
}

}  // namespace

hint_context hint_context::for_endpoint(const endpoint& ep) {
    hint_context h;
    h.tls = ep.tls;
    h.ca_file = !ep.tls_opts.ca_file.empty();
    h.cert_name = ep.tls_opts.server_name.empty() ? ep.host : ep.tls_opts.server_name;
    return h;
}

std::string describe_failure(std::string_view stage, const std::error_code& ec, std::string_view detail) {
    std::string s = stage.empty() ? std::string() : std::string(stage) + ": ";
    const std::string message = ec.message();
    s += message;
    const bool repeats = detail == message ||
                         (detail.size() > message.size() && detail.substr(detail.size() - message.size()) == message &&
                          detail[detail.size() - message.size() - 1] == ' ');
    if (!detail.empty() && !repeats) s += " (" + std::string(detail) + ")";
    return s;
}

std::string hint_for(const hint_context& h, const std::error_code& ec, std::string_view detail) {
    const std::string starttls = h.starttls_port.empty() ? "" : " (port " + h.starttls_port + ")";
    const std::string implicit = h.implicit_port.empty() ? "" : " (port " + h.implicit_port + ")";

    // A TLS mode that does not match the port's, on either side.
    if (is(ec, detail, errc::tls_not_offered))
        return "the port answered in clear text: it does not speak TLS at once; use --tls starttls" + starttls +
               " or the implicit-TLS port" + implicit;
    if (is(ec, detail, errc::no_greeting)) {
        if (h.tls == tls_mode::implicit) return "the server said nothing after the TLS handshake: check --port";
        return "the server said nothing: a port that speaks TLS at once" + implicit +
               " waits for the client's handshake; use --tls implicit, or check --port";
    }
    // The certificate, and TLS failures before it was judged.
    const bool verify = is(ec, detail, errc::tls_verify_failed);
    if (!verify && h.tls != tls_mode::none && is(ec, detail, errc::tls_handshake_failed))
        return "the TLS handshake failed before the certificate was judged: the server may offer only a TLS version "
               "below 1.2 (netpool's floor, which cannot be lowered) or no cipher in common";
    if (verify || ec == errc::endpoint_down_tls) {
        if (!h.ca_file)
            return "the certificate did not verify against the system's CAs: give --ca-file with the CA that signed "
                   "it (and --server-name if it names another host)";
        return "the certificate did not verify against --ca-file, or does not name '" + h.cert_name +
               "' (see --server-name)";
    }
    // Reaching the server at all.
    if (ec == asio::error::connection_refused || ec == errc::endpoint_down_refused ||
        detail.find("Connection refused") != std::string_view::npos)
        return "nothing listens there";
    if (ec == errc::connect_timeout || ec == errc::endpoint_down_timeout)
        return "nothing answered in time: check the host and --port, or give a longer --timeout";
    // The login.
    if (ec == imap::errc::login_disabled)
        return "the server takes no login without TLS (LOGINDISABLED): use --tls starttls" + starttls +
               " or --tls implicit" + implicit;
    if (ec == smtp::errc::token_rejected) return "the server refused the OAuth token";
    if (ec == condition::credentials_rejected) return "the server refused the user name or password";
    if (ec == imap::errc::plaintext_login_refused)
        return "no password is sent without TLS: use --tls starttls or --tls implicit, or add " + h.plaintext_flag;
    if (ec == imap::errc::starttls_unavailable || ec == smtp::errc::starttls_unavailable)
        return "the server does not offer STARTTLS: try --tls implicit" + implicit;
    // What was asked for.
    if (ec == imap::errc::mailbox_not_found && !h.mailbox.empty())
        return "there is no mailbox '" + h.mailbox + "' (names are case-sensitive, except INBOX)";
    return {};
}

}  // namespace netpool::cli
