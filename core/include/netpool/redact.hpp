#pragma once
// One place that knows every form in which netpool ever sends a credential, so that text
// from a server (which may echo a command back) and the CLI's output can be cleaned of all
// of them. Redact before any escaping (JSON, terminal): an escaped form is not searched for.

#include <netpool/base64.hpp>  // base64_encode, which callers of the redactor use too

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netpool {

/// Replaces secrets in text. Built once per credential; copies are cheap enough for the
/// failure paths it serves.
class redactor {
public:
    static constexpr std::string_view mark = "[redacted]";

    redactor() = default;
    redactor(const redactor&) = default;
    redactor& operator=(const redactor&) = default;
    redactor(redactor&&) noexcept = default;
    redactor& operator=(redactor&&) noexcept = default;
    /// The forms it holds are secrets too: wiped (netpool::wipe) before their memory is freed.
    ~redactor();

    /// Adds `secret` in every encoding netpool sends it:
    ///  - raw (an IMAP literal, and what a server might echo decoded);
    ///  - as the body of an IMAP quoted string (`"` and `\` escaped with `\`), as LOGIN sends it;
    ///  - base64 of the secret (SMTP AUTH LOGIN);
    ///  - base64 of the SASL PLAIN message, "" NUL user NUL secret and user NUL user NUL secret
    ///    (SMTP AUTH PLAIN, IMAP AUTHENTICATE PLAIN);
    ///  - base64 of the XOAUTH2 message "user=U^Aauth=Bearer T^A^A" (the secret as the token).
    /// The raw and quoted forms shorter than `min_plain` bytes are left out (a very short
    /// password would hit ordinary words of a command's own output); the base64 forms are
    /// always added. Nothing is added for an empty secret.
    void add_credential(std::string_view user, std::string_view secret, std::size_t min_plain = 1);

    /// Adds `text` as it is, replaced with `with` (e.g. a user name with "[user]").
    void add(std::string_view text, std::string_view with = mark);

    /// `text` with every occurrence of every added form replaced, longest form first.
    std::string operator()(std::string text) const;

    bool empty() const noexcept { return forms_.empty(); }

private:
    std::vector<std::pair<std::string, std::string>> forms_;  // (form, replacement), longest first
};

}  // namespace netpool
