// What `netpool imap-fetch` and `netpool imap-bench` share: the server and login options,
// the password from a file or the environment (never from the command line), and the
// redactor every line of their output passes through.
#pragma once

#include "args.hpp"

#include "password_file.hpp"
#include <netpool/redact.hpp>
#include <netpool/config.hpp>
#include <netpool/netpool.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace netpool::cli::imap_common {

/// The options both commands take (each adds its own to this list).
inline constexpr std::array<option_spec, 14> server_specs{{
    {"host", true},
    {"port", true},
    {"tls", true},
    {"ca-file", true},
    {"server-name", true},
    {"user", true},
    {"password-file", true},
    {"password-env", true},
    {"allow-plaintext-login", false},
    {"mailbox", true},
    {"top", true},
    {"timeout", true},
    {"json", false},
    {"redact", false},
}};

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

inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
    std::uint64_t scale = 1000;
    if (s.ends_with("ms")) {
        scale = 1;
        s.remove_suffix(2);
    } else if (s.ends_with("s")) {
        s.remove_suffix(1);
    }
    const auto v = parse_unsigned<std::uint64_t>(s, 1, 86'400'000);
    if (!v || *v * scale > 86'400'000) return std::nullopt;
    return std::chrono::milliseconds(*v * scale);
}

/// Finds --password / --pass anywhere among the arguments (before any parsing, so that the
/// refusal is what the user sees, whatever else is wrong). Returns the option's name.
inline std::optional<std::string_view> password_on_command_line(std::span<const std::string_view> args) {
    for (std::string_view a : args) {
        if (!a.starts_with("--")) continue;
        const std::string_view name = a.substr(2, a.find('=') == std::string_view::npos ? a.npos : a.find('=') - 2);
        if (name == "password" || name == "pass") return name;
    }
    return std::nullopt;
}

inline std::string password_refusal(std::string_view name) {
    return "--" + std::string(name) +
           " is refused: a password given on the command line can be read by every user of this machine "
           "(ps, /proc) and stays in shell history; use --password-file FILE or --password-env VAR";
}

/// Reads the server and login options of `o` into `cfg`. Returns an error message (naming
/// the option) on a mistake; the message never contains the password.
inline std::optional<std::string> read_server_options(const parsed_options& o, server_config& cfg) {
    const auto has = [&](std::string_view n) { return o.count(n) > 0; };
    const auto get = [&](std::string_view n) { return std::string(o.find(n)->second); };

    cfg.ep.host = has("host") ? get("host") : "127.0.0.1";
    if (cfg.ep.host.empty()) return "--host must not be empty";
    if (has("tls")) {
        const std::string m = get("tls");
        if (m == "none") cfg.ep.tls = tls_mode::none;
        else if (m == "starttls") cfg.ep.tls = tls_mode::starttls;
        else if (m == "implicit") cfg.ep.tls = tls_mode::implicit;
        else return "--tls expects none, starttls or implicit, got '" + m + "'";
    }
    if (cfg.ep.tls != tls_mode::none && !NETPOOL_HAS_TLS)
        return std::string("--tls ") + to_string(cfg.ep.tls) + ": " + NETPOOL_NO_TLS_REASON;
    cfg.ep.port = cfg.ep.tls == tls_mode::implicit ? 993 : 143;
    if (has("port")) {
        auto v = parse_unsigned<std::uint16_t>(o.find("port")->second, 1, 65535);
        if (!v) return "--port expects a port number (1-65535), got '" + get("port") + "'";
        cfg.ep.port = *v;
    }
    for (const char* tls_only : {"ca-file", "server-name"})
        if (has(tls_only) && cfg.ep.tls == tls_mode::none)
            return std::string("--") + tls_only + " needs --tls starttls or --tls implicit";
    if (has("ca-file")) {
        cfg.ep.tls_opts.ca_file = get("ca-file");
        if (std::ifstream f(cfg.ep.tls_opts.ca_file); !f)
            return "--ca-file: cannot read '" + cfg.ep.tls_opts.ca_file + "': " + std::strerror(errno);
    }
    if (has("server-name")) {
        cfg.ep.tls_opts.server_name = get("server-name");
        if (cfg.ep.tls_opts.server_name.empty()) return "--server-name must not be empty";
    }
    cfg.ep.tls_opts.verify = true;  // always: there is no option to turn it off
    if (has("timeout")) {
        auto d = parse_duration(o.find("timeout")->second);
        if (!d) return "--timeout expects seconds (e.g. 30) or milliseconds (e.g. 500ms), got '" + get("timeout") + "'";
        cfg.timeout = *d;
    }

    if (!has("user") || get("user").empty()) return "--user is required (the IMAP login name)";
    cfg.user = get("user");
    if (has("password-file") && has("password-env"))
        return "--password-file and --password-env: give one of them, not both";
    if (has("password-file")) {
        const std::string path = get("password-file");
        std::ifstream f(path, std::ios::binary);
        if (!f) return "--password-file: cannot read '" + path + "': " + std::strerror(errno);
        std::string line;
        std::getline(f, line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) return "--password-file: the first line of '" + path + "' is empty";
        if (auto w = password_file_warning("netpool", path); !w.empty()) std::cerr << w << "\n";
        cfg.password = std::move(line);
    } else if (has("password-env")) {
        const std::string var = get("password-env");
        const char* v = std::getenv(var.c_str());
        if (!v || !*v) return "--password-env: the environment variable '" + var + "' is not set or empty";
        cfg.password = v;
    } else {
        return "--user needs a password: --password-file FILE or --password-env VAR";
    }
    cfg.allow_plaintext_login = has("allow-plaintext-login");
    if (cfg.ep.tls == tls_mode::none && !cfg.allow_plaintext_login)
        return "--tls none would send the password in clear text: use --tls starttls or --tls implicit, "
               "or add --allow-plaintext-login";
    if (has("mailbox")) {
        cfg.mailbox = get("mailbox");
        if (cfg.mailbox.empty()) return "--mailbox must not be empty";
    }
    if (has("top")) {
        auto v = parse_unsigned<std::size_t>(o.find("top")->second, 1, 10'000);
        if (!v) return "--top expects a number of messages (1-10000), got '" + get("top") + "'";
        cfg.top = *v;
    }
    cfg.json = has("json");
    cfg.redact = has("redact");
    return std::nullopt;
}

inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20 || u == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + '"';
}

/// A hint for the common causes of a failed first contact, or "". `detail`: the failure's
/// text; a handshake that failed without a verification failure (errc::tls_handshake_failed's
/// message, and not tls_verify_failed's) is not blamed on the certificate.
inline std::string hint_for(const server_config& cfg, const std::error_code& ec, std::string_view detail = {}) {
    const std::string handshake = make_error_code(errc::tls_handshake_failed).message();
    const std::string verify = make_error_code(errc::tls_verify_failed).message();
    if (cfg.ep.tls != tls_mode::none && ec != errc::tls_verify_failed &&
        (ec == errc::tls_handshake_failed || detail.find(handshake) != std::string_view::npos) &&
        detail.find(verify) == std::string_view::npos)
        return "the TLS handshake failed before the certificate was judged: the server may offer only a TLS "
               "version below 1.2 (netpool's floor, which cannot be lowered) or no cipher in common";
    if (ec == errc::tls_verify_failed || ec == errc::endpoint_down_tls) {
        if (cfg.ep.tls_opts.ca_file.empty())
            return "the certificate did not verify against the system's CAs: give --ca-file with the CA that "
                   "signed it (and --server-name if it names another host)";
        return "the certificate did not verify against --ca-file, or does not name the host (see --server-name)";
    }
    if (ec == asio::error::connection_refused) return "nothing listens there";
    return {};
}

}  // namespace netpool::cli::imap_common
