// The SASL messages netpool sends (RFC 4616 PLAIN, Google/Microsoft XOAUTH2), built in one
// place: SMTP's AUTH, IMAP's AUTHENTICATE and the redactor (which must know every form a
// credential travels in) all use these. Pure functions: no Asio, no OpenSSL in this header.
#pragma once

#include <string>
#include <string_view>

namespace netpool::sasl {

/// "authzid NUL user NUL secret" (RFC 4616). The caller refuses a NUL inside the parts: it
/// would move the boundaries and change who logs in as whom.
std::string plain_message(std::string_view authzid, std::string_view user, std::string_view secret);
/// base64 of plain_message("", user, secret): AUTH PLAIN's and AUTHENTICATE PLAIN's response.
std::string plain_response(std::string_view user, std::string_view secret);
/// "user=USER ^A auth=Bearer TOKEN ^A ^A" (without the spaces).
std::string xoauth2_message(std::string_view user, std::string_view token);
/// base64 of xoauth2_message(user, token): AUTH XOAUTH2's response.
std::string xoauth2_response(std::string_view user, std::string_view token);

}  // namespace netpool::sasl
