// What `netpool imap-fetch` and `netpool imap-bench` share: the server and login options,
// the password from a file or the environment (never from the command line), and the
// redactor every line of their output passes through.
#pragma once

#include "hints.hpp"
#include "login_options.hpp"

#include <netpool/redact.hpp>
#include <netpool/config.hpp>
#include <netpool/netpool.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <string_view>

namespace netpool::cli::imap_common {

inline constexpr std::string_view server_usage =
    "server:\n"
    "  --host HOST              server (default 127.0.0.1)\n"
    "  --port N                 port (default 143; 993 with --tls implicit)\n"
    "  --tls MODE               none | starttls | implicit (default none)\n"
    "  --ca-file FILE           PEM CAs to trust for the server's certificate (default: the\n"
    "                           system's); the certificate is always verified\n"
    "  --server-name NAME       name the certificate must carry, and SNI (default: HOST)\n"
    "  --timeout T              connect, TLS, each command, a checkout: seconds, or e.g.\n"
    "                           500ms (default 30)\n"
    "login:\n"
    "  --user USER              log in as USER (required)\n"
    "  --password-file FILE     the password is the first line of FILE\n"
    "  --password-env VAR       the password is in the environment variable VAR\n"
    "                           (there is no --password: a command line is visible to\n"
    "                           every user of the machine and kept in shell history)\n"
    "  --allow-plaintext-login  allow LOGIN over --tls none (the password crosses in clear)\n"
    "mailbox:\n"
    "  --mailbox NAME           mailbox (default INBOX)\n";

/// --help: the command's own text around the options both commands take.
inline void print_usage(std::string_view head, std::string_view tail) {
    std::cout << head << server_usage << tail;
    if (!NETPOOL_HAS_TLS) std::cout << "\nTLS is not available in this build: " << NETPOOL_NO_TLS_REASON << ".\n";
}

/// Everything about the server and the login.
struct server_config {
    endpoint ep;
    std::string user;
    netpool::secret password;  // held once, wiped at exit
    bool allow_plaintext_login = false;
    std::string mailbox = "INBOX";
    std::size_t top = 0;  // set by the command's default, then --top
    std::chrono::milliseconds timeout{30000};
    bool json = false;
    bool redact = false;
};

/// Replaces every form of the password these commands could have sent (netpool::redactor:
/// raw, as LOGIN's quoted string, as AUTHENTICATE PLAIN's base64) with "[redacted]"; with
/// --redact also the user name and the host, with "[user]" and "[host]". Applied to text
/// before it is escaped for JSON or the terminal.
class redactor {
public:
    explicit redactor(const server_config& cfg) {
        // A very short password would match ordinary words of the output; it is never
        // printed by these commands anyway, so its raw forms only from 4 bytes on.
        r_.add_credential(cfg.user, cfg.password, 4);
        if (cfg.redact) {
            // Short names would hit ordinary words; the commands print neither when --redact
            // is given, so this catches only what a server echoes.
            if (cfg.user.size() >= 3) r_.add(cfg.user, "[user]");
            if (cfg.ep.host.size() >= 3) r_.add(cfg.ep.host, "[host]");
            if (cfg.ep.tls_opts.server_name.size() >= 3) r_.add(cfg.ep.tls_opts.server_name, "[host]");
        }
    }
    std::string operator()(std::string s) const { return r_(std::move(s)); }

private:
    netpool::redactor r_;
};

/// The server as printed: "host:port+tls", or "[host]:port+tls" with --redact.
inline std::string shown_server(const server_config& cfg) {
    if (!cfg.redact) return cfg.ep.to_string();
    endpoint e = cfg.ep;
    e.host = "[host]";
    return e.to_string();
}
inline std::string shown_user(const server_config& cfg) { return cfg.redact ? "[user]" : cfg.user; }

/// Declares the server and login options both commands take (each adds its own).
inline void declare_server_options(tools::command_line& cl, option_values& v, server_config& cfg) {
    refuse_password_options(cl);
    text_options(cl, v, {"host", "port", "tls", "ca-file", "server-name", "user", "password-file", "password-env",
                         "mailbox", "top"});
    cl.duration("timeout", cfg.timeout);
    cl.flag("allow-plaintext-login", cfg.allow_plaintext_login);
    cl.flag("json", cfg.json);
    cl.flag("redact", cfg.redact);
}

/// Checks the server and login options after parsing and completes `cfg`. Throws
/// tools::usage_error naming the option; the message never contains the password.
inline void read_server_options(const tools::command_line& cl, const option_values& v, server_config& cfg) {
    cfg.ep.host = cl.given("host") ? v.at("host") : "127.0.0.1";
    if (cfg.ep.host.empty()) throw tools::usage_error("--host must not be empty");
    read_tls_mode(cl, v, cfg.ep);
    cfg.ep.port = cfg.ep.tls == tls_mode::implicit ? 993 : 143;
    if (cl.given("port")) {
        const auto p = tools::parse_unsigned(v.at("port"), 1, 65535);
        if (!p) throw tools::command_line::bad_value("port", "a port number (1-65535)", v.at("port"));
        cfg.ep.port = static_cast<std::uint16_t>(*p);
    }
    read_tls_files(cl, v, cfg.ep);
    cfg.ep.tls_opts.verify = true;  // always: there is no option to turn it off

    if (!cl.given("user") || v.at("user").empty()) throw tools::usage_error("--user is required (the IMAP login name)");
    cfg.user = v.at("user");
    auto password = read_password(cl, v, "netpool");
    if (!password) throw tools::usage_error("--user needs a password: --password-file FILE or --password-env VAR");
    cfg.password = std::move(*password);
    if (cfg.ep.tls == tls_mode::none && !cfg.allow_plaintext_login)
        throw tools::usage_error(
            "--tls none would send the password in clear text: use --tls starttls or --tls implicit, "
            "or add --allow-plaintext-login");
    if (cl.given("mailbox")) {
        cfg.mailbox = v.at("mailbox");
        if (cfg.mailbox.empty()) throw tools::usage_error("--mailbox must not be empty");
    }
    if (cl.given("top")) {
        const auto n = tools::parse_unsigned(v.at("top"), 1, 10'000);
        if (!n) throw tools::command_line::bad_value("top", "a number of messages (1-10000)", v.at("top"));
        cfg.top = static_cast<std::size_t>(*n);
    }
}

/// What a hint (hints.hpp) may say about this command line.
inline hint_context hints(const server_config& cfg) {
    hint_context h = hint_context::for_endpoint(cfg.ep);
    h.starttls_port = "143";
    h.implicit_port = "993";
    h.plaintext_flag = "--allow-plaintext-login";
    h.mailbox = cfg.mailbox;
    return h;
}

}  // namespace netpool::cli::imap_common
