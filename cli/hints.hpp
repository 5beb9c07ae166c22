// One way to put a failure into words for every mail command (imap-fetch, imap-bench,
// smtp-send): what failed, where, the server's own words, and a hint that matches the real
// cause (a TLS mode that does not match the port, the certificate, a refused or disabled
// login, a missing mailbox...).
#pragma once

#include <netpool/endpoint.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace netpool::cli {

/// What a hint may mention about the command line it came from.
struct hint_context {
    tls_mode tls = tls_mode::none;
    bool ca_file = false;         ///< --ca-file was given
    std::string cert_name;        ///< the name the certificate must carry (--server-name, else the host)
    std::string starttls_port;    ///< the protocol's STARTTLS port ("143", "587")
    std::string implicit_port;    ///< the protocol's implicit-TLS port ("993", "465")
    std::string plaintext_flag;   ///< the option that allows a login in clear text
    std::string mailbox;          ///< IMAP: the mailbox asked for ("" elsewhere)
    std::string login_name = "login";  ///< "login" (IMAP) or "AUTH" (SMTP)
    static hint_context for_endpoint(const endpoint& ep);
};

/// "STAGE: message (detail)": the error's message, and the server's words or the failure's
/// detail when there are any (not repeated when the detail already ends with the message).
std::string describe_failure(std::string_view stage, const std::error_code& ec, std::string_view detail = {});

/// A hint for the cause, or "" when there is nothing useful to add. `detail` is searched too:
/// a checkout that failed with endpoint_down_* names its last cause only there.
std::string hint_for(const hint_context& h, const std::error_code& ec, std::string_view detail = {});

}  // namespace netpool::cli
