// What is not inline in types.hpp: the options check and the one-line summary of a result.
#include <netpool/smtp/types.hpp>

#include <netpool/options.hpp>

#include <string>

namespace netpool::smtp {

void client_options::validate() const {
    if (helo_name.empty() || helo_name.find_first_of(" \t\r\n") != std::string::npos)
        throw config_error("helo_name", "must be a non-empty domain or address literal without spaces or line breaks");
    if (cred.user.find_first_of("\r\n") != std::string::npos)
        throw config_error("cred.user", "must not contain CR or LF");
    // AUTH PLAIN sends "authzid NUL authcid NUL passwd" (RFC 4616): a NUL inside either would
    // move the boundaries and change who logs in as whom. NUL is not allowed in them.
    if (cred.user.find('\0') != std::string::npos)
        throw config_error("cred.user", "must not contain a NUL byte (it would change the meaning of AUTH PLAIN)");
    if (cred.secret.find('\0') != std::string::npos)  // the message names the field, never the value
        throw config_error("cred.secret", "must not contain a NUL byte (it would change the meaning of AUTH PLAIN)");
    // XOAUTH2 separates its fields with ^A: the same for the user name there.
    if (oauth_token && cred.user.find('\x01') != std::string::npos)
        throw config_error("cred.user", "must not contain a ^A (0x01) byte with XOAUTH2 (it separates the fields)");
    for (const auto& m : mechanisms)
        if (m != "PLAIN" && m != "LOGIN" && m != "XOAUTH2")
            throw config_error("mechanisms", "unknown mechanism '" + m + "' (known: PLAIN, LOGIN, XOAUTH2)");
    if (oauth_token && cred.user.empty()) throw config_error("cred.user", "XOAUTH2 (oauth_token) needs the user name");
    if (!cred.user.empty() && !oauth_token && mechanisms.empty())
        throw config_error("mechanisms", "credentials are set but no mechanism is allowed");
    if (command_timeout.count() <= 0) throw config_error("command_timeout", "must be > 0");
    if (data_timeout.count() <= 0) throw config_error("data_timeout", "must be > 0");
    if (limits.max_line < 64) throw config_error("limits.max_line", "must be at least 64 bytes");
    if (limits.max_lines < 1) throw config_error("limits.max_lines", "must be at least 1");
}

std::string send_result::to_string() const {
    std::size_t accepted = 0;
    for (const auto& r : recipients) accepted += r.accepted() ? 1 : 0;
    std::string s;
    if (sent) {
        s = "sent to " + std::to_string(accepted) + "/" + std::to_string(recipients.size()) + " recipients";
        if (last_reply) s += " (" + last_reply->to_string() + ")";
        return s;
    }
    const std::string what = ec ? ec.message() : "unknown error";
    s = "failed at " + (stage.empty() ? std::string("?") : stage) + ": " + what;
    // The detail of a failed handshake is "STAGE: reply" or "STAGE: message": it already
    // holds the reply, and the message need not be said twice.
    std::string extra = detail;
    const std::string repeated = ": " + what;
    if (extra.size() > repeated.size() && extra.compare(extra.size() - repeated.size(), repeated.size(), repeated) == 0)
        extra = "during " + extra.substr(0, extra.size() - repeated.size());
    if (extra.empty() && last_reply) extra = last_reply->to_string();
    if (!extra.empty()) s += " (" + extra + ")";
    if (!recipients.empty())
        s += "; " + std::to_string(accepted) + "/" + std::to_string(recipients.size()) + " recipients accepted";
    if (discard) s += "; connection discarded";
    return s;
}

}  // namespace netpool::smtp
