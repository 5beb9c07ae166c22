// Base64 (RFC 4648 section 4, the standard alphabet with padding), as SASL mechanisms and
// the redactor need it. Pure functions: no Asio, no OpenSSL in this header.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace netpool {

/// Encodes `bytes` with padding. OpenSSL's encoder in a TLS build; netpool's own only in a
/// build without OpenSSL (-Dtls=disabled).
std::string base64_encode(std::string_view bytes);

/// Decodes `text`; padding is optional ("Zm9vYg" and "Zm9vYg==" both give "foob"). Returns
/// nullopt for a character outside the alphabet, whitespace included, or a length no
/// encoding can have.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace netpool
