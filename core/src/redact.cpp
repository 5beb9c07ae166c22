#include "netpool/redact.hpp"

#include <netpool/sasl.hpp>
#include <netpool/secret.hpp>

#include <algorithm>

namespace netpool {

void redactor::add(std::string_view text, std::string_view with) {
    if (text.empty()) return;
    for (const auto& [form, w] : forms_)
        if (form == text) return;
    forms_.emplace_back(std::string(text), std::string(with));
    // Longest first, so a form that contains another is replaced whole.
    std::stable_sort(forms_.begin(), forms_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void redactor::add_credential(std::string_view user, std::string_view secret, std::size_t min_plain) {
    if (secret.empty()) return;
    if (secret.size() >= min_plain) {
        add(secret);
        wiped_string quoted;  // the body of an IMAP quoted string (RFC 9051 4.3)
        quoted.s().reserve(secret.size() * 2);  // never grows: no unwiped copy left behind
        for (char ch : secret) {
            if (ch == '"' || ch == '\\') quoted.s() += '\\';
            quoted.s() += ch;
        }
        add(quoted);
    }
    // What is built from the secret is wiped once added (add() keeps its own copy).
    add(wiped_string(base64_encode(secret)));
    add(wiped_string(sasl::plain_response(user, secret)));
    const wiped_string with_authzid(sasl::plain_message(user, user, secret));  // user as authzid too
    add(wiped_string(base64_encode(with_authzid)));
    add(wiped_string(sasl::xoauth2_response(user, secret)));
}

redactor::~redactor() {
    for (auto& [form, with] : forms_) wipe(form.data(), form.capacity());
}

std::string redactor::operator()(std::string text) const {
    for (const auto& [form, with] : forms_)
        for (auto at = text.find(form); at != std::string::npos; at = text.find(form, at + with.size()))
            text.replace(at, form.size(), with);
    return text;
}

}  // namespace netpool
