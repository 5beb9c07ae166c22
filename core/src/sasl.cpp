#include <netpool/sasl.hpp>

#include <netpool/base64.hpp>
#include <netpool/secret.hpp>

namespace netpool::sasl {

std::string plain_message(std::string_view authzid, std::string_view user, std::string_view secret) {
    std::string m;
    m.reserve(authzid.size() + user.size() + secret.size() + 2);
    m.append(authzid).append(1, '\0').append(user).append(1, '\0').append(secret);
    return m;
}

std::string plain_response(std::string_view user, std::string_view secret) {
    const wiped_string message(plain_message({}, user, secret));
    return base64_encode(message);
}

std::string xoauth2_message(std::string_view user, std::string_view token) {
    std::string m;
    m.reserve(user.size() + token.size() + 20);  // never grown: no unwiped copy left behind
    m.append("user=").append(user).append("\x01" "auth=Bearer ").append(token).append("\x01\x01");
    return m;
}

std::string xoauth2_response(std::string_view user, std::string_view token) {
    const wiped_string message(xoauth2_message(user, token));
    return base64_encode(message);
}

}  // namespace netpool::sasl
