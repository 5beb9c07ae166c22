// What the commands that log in to a server share about their options (smtp-send,
// imap-fetch, imap-bench): the refused --password, the password from a file or the
// environment, the TLS mode, and the options that only mean something with TLS.
#pragma once

#include "password_file.hpp"

#include <netpool/config.hpp>
#include <netpool/endpoint.hpp>
#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/transport.hpp>
#include <netpool/tools/args.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace netpool::cli {

/// Option values as given, by name (without "--"): what the checks after parsing read.
using option_values = std::map<std::string, std::string, std::less<>>;

/// --password and --pass are refused with the reason, whatever else is on the line.
inline void refuse_password_options(tools::command_line& cl) {
    const std::string why =
        "is refused: a password given on the command line can be read by every user of this machine (ps, /proc) "
        "and stays in shell history; use --password-file FILE or --password-env VAR";
    cl.refuse("password", why);
    cl.refuse("pass", why);
}

/// Declares each of `names` as a text option whose value lands in `v`.
inline void text_options(tools::command_line& cl, option_values& v, std::initializer_list<const char*> names) {
    for (const char* n : names) cl.text(n, v[n]);
}

/// --tls none | starttls | implicit into ep.tls (none when not given), checked against what
/// this build can do. Throws tools::usage_error.
inline void read_tls_mode(const tools::command_line& cl, const option_values& v, endpoint& ep) {
    if (cl.given("tls")) {
        const std::string& m = v.at("tls");
        if (m == "none") ep.tls = tls_mode::none;
        else if (m == "starttls") ep.tls = tls_mode::starttls;
        else if (m == "implicit") ep.tls = tls_mode::implicit;
        else throw tools::command_line::bad_value("tls", "none, starttls or implicit", m);
    }
    if (ep.tls != tls_mode::none && !NETPOOL_HAS_TLS)
        throw tools::usage_error(std::string("--tls ") + to_string(ep.tls) + ": " + NETPOOL_NO_TLS_REASON);
}

/// --ca-file and --server-name (and whatever `also` names) need --tls starttls or implicit;
/// --ca-file must be readable. Throws tools::usage_error.
inline void read_tls_files(const tools::command_line& cl, const option_values& v, endpoint& ep,
                           std::initializer_list<const char*> also = {}) {
    for (const char* tls_only : {"ca-file", "server-name"})
        if (cl.given(tls_only) && ep.tls == tls_mode::none)
            throw tools::usage_error(std::string("--") + tls_only + " needs --tls starttls or --tls implicit");
    for (const char* tls_only : also)
        if (cl.given(tls_only) && ep.tls == tls_mode::none)
            throw tools::usage_error(std::string("--") + tls_only + " needs --tls starttls or --tls implicit");
    if (cl.given("ca-file")) {
        ep.tls_opts.ca_file = v.at("ca-file");
        if (std::ifstream f(ep.tls_opts.ca_file); !f)
            throw tools::usage_error("--ca-file: cannot read '" + ep.tls_opts.ca_file + "': " + std::strerror(errno));
    }
    if (cl.given("server-name")) {
        ep.tls_opts.server_name = v.at("server-name");
        if (ep.tls_opts.server_name.empty()) throw tools::usage_error("--server-name must not be empty");
    }
}

/// The password from --password-file (its first line; a warning on stderr when others can
/// read the file) or --password-env; nullopt when neither is given. Throws
/// tools::usage_error, never with the password in it.
inline std::optional<std::string> read_password(const tools::command_line& cl, const option_values& v,
                                                const std::string& command) {
    if (cl.given("password-file") && cl.given("password-env"))
        throw tools::usage_error("--password-file and --password-env: give one of them, not both");
    if (cl.given("password-file")) {
        const std::string& path = v.at("password-file");
        std::ifstream f(path, std::ios::binary);
        if (!f) throw tools::usage_error("--password-file: cannot read '" + path + "': " + std::strerror(errno));
        std::string line;
        std::getline(f, line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) throw tools::usage_error("--password-file: the first line of '" + path + "' is empty");
        if (auto w = password_file_warning(command, path); !w.empty()) std::cerr << w << "\n";
        return line;
    }
    if (cl.given("password-env")) {
        const std::string& var = v.at("password-env");
        const char* value = std::getenv(var.c_str());
        if (!value || !*value)
            throw tools::usage_error("--password-env: the environment variable '" + var + "' is not set or empty");
        return std::string(value);
    }
    return std::nullopt;
}

/// The client TLS context for `ep` (null for --tls none). Throws tools::usage_error when
/// the CA file or the options are refused.
inline std::shared_ptr<asio::ssl::context> client_tls_context(const endpoint& ep) {
    if (ep.tls == tls_mode::none) return nullptr;
    try {
        return make_client_tls_context(ep.tls_opts);
    } catch (const config_error& e) {
        throw tools::usage_error(std::string("TLS setup failed: ") + e.what());
    }
}

}  // namespace netpool::cli
