// What is not inline in types.hpp: the options check, fetch_parts names and the one-line
// summary of a fetch.
#include <netpool/imap/types.hpp>

#include <netpool/options.hpp>

#include <string>

namespace netpool::imap {

void client_options::validate() const {
    if (cred.user.find('\0') != std::string::npos) throw config_error("cred.user", "must not contain NUL");
    if (cred.secret.find('\0') != std::string::npos) throw config_error("cred.secret", "must not contain NUL");
    if (command_timeout.count() <= 0) throw config_error("command_timeout", "must be > 0");
    if (greeting_timeout.count() <= 0) throw config_error("greeting_timeout", "must be > 0");
    if (limits.max_line < 1024) throw config_error("limits.max_line", "must be at least 1024 bytes");
    if (limits.max_literal < 1) throw config_error("limits.max_literal", "must be at least 1 byte");
    if (limits.max_depth < 4 || limits.max_depth > 1000) throw config_error("limits.max_depth", "must be in [4, 1000]");
    if (limits.max_response < limits.max_line) throw config_error("limits.max_response", "must be at least max_line");
    if (limits.max_values < 256) throw config_error("limits.max_values", "must be at least 256");
    if (max_search_results < 1) throw config_error("max_search_results", "must be at least 1");
    if (max_unsolicited < 100) throw config_error("max_unsolicited", "must be at least 100");
}

const char* to_string(fetch_parts p) noexcept {
    switch (p) {
    case fetch_parts::summary: return "summary";
    case fetch_parts::header: return "header";
    case fetch_parts::full: return "full";
    }
    return "?";
}

std::optional<fetch_parts> parse_fetch_parts(std::string_view s) noexcept {
    for (const auto p : {fetch_parts::summary, fetch_parts::header, fetch_parts::full})
        if (s == to_string(p)) return p;
    return std::nullopt;
}

std::string fetch_result::to_string() const {
    if (!ec) {
        std::string s = "fetched " + std::to_string(messages.size()) + " message" + (messages.size() == 1 ? "" : "s") +
                        " from " + mailbox.name + " (" + std::to_string(mailbox.exists) + " in the mailbox)";
        if (mailbox.uidvalidity_changed) s += "; UIDVALIDITY changed";
        return s;
    }
    const std::string what = ec.message();
    std::string s = "failed at " + (stage.empty() ? std::string("?") : stage) + ": " + what;
    // A handshake failure's detail is "STAGE: response" or "STAGE: message": the message
    // need not be said twice.
    std::string extra = detail;
    const std::string repeated = ": " + what;
    if (extra.size() > repeated.size() && extra.compare(extra.size() - repeated.size(), repeated.size(), repeated) == 0)
        extra = "during " + extra.substr(0, extra.size() - repeated.size());
    if (!extra.empty()) s += " (" + extra + ")";
    return s;
}

}  // namespace netpool::imap
