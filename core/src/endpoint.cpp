// Endpoint and identity formatting, credential fingerprints and pool keys.
#include <netpool/endpoint.hpp>

#include <netpool/detail/sha256.hpp>

namespace netpool {
namespace {

// IPv6 literals contain ':', so "host:port" would be ambiguous without brackets.
void append_host_port(std::string& out, const std::string& host, std::uint16_t port) {
    const bool v6 = host.find(':') != std::string::npos;
    if (v6) out += '[';
    out += host;
    if (v6) out += ']';
    out += ':';
    out += std::to_string(port);
}

void append_tls_suffix(std::string& out, tls_mode m) {
    switch (m) {
    case tls_mode::none: break;
    case tls_mode::implicit: out += "+tls"; break;
    case tls_mode::starttls: out += "+starttls"; break;
    }
}

std::size_t mix(std::size_t seed, std::size_t v) noexcept {
    // Golden-ratio constant plus shifts spreads the bits of each field over the whole word,
    // so keys differing only in port or TLS mode do not collide in the same bucket.
    return seed ^ (v + static_cast<std::size_t>(0x9e3779b97f4a7c15ULL) + (seed << 6) + (seed >> 2));
}

}  // namespace

const char* to_string(tls_mode m) noexcept {
    switch (m) {
    case tls_mode::none: return "none";
    case tls_mode::implicit: return "implicit";
    case tls_mode::starttls: return "starttls";
    }
    return "unknown";
}

std::string endpoint::to_string() const {
    std::string out;
    append_host_port(out, host, port);
    append_tls_suffix(out, tls);
    return out;
}

std::string credentials::fingerprint() const {
    if (user.empty() && secret.empty()) return {};

    // Hashed in pieces, so the secret is never copied outside the hash's own buffer (which
    // it wipes). The '\0' separator keeps ("ab", "c") and ("a", "bc") apart.
    detail::sha256 h;
    h.update(user);
    h.update(std::string_view("\0", 1));
    h.update(secret);
    auto digest = h.finish();
    std::string out = detail::to_hex(digest.data(), 8);
    detail::secure_zero(digest.data(), digest.size());
    return out;
}

pool_key pool_key::make(const endpoint& ep, const credentials& cred) {
    pool_key k;
    k.host = ep.host;
    k.port = ep.port;
    k.tls = ep.tls;
    k.user = cred.user;
    k.credential_fingerprint = cred.fingerprint();
    if (ep.tls != tls_mode::none) {
        k.tls_profile = std::string(ep.tls_opts.verify ? "verify" : "noverify") + '\0' + ep.tls_opts.ca_file + '\0' +
                        ep.tls_opts.server_name;
    }
    return k;
}

std::string pool_key::to_string() const {
    std::string out;
    if (!user.empty()) {
        out += user;
        out += '@';
    }
    append_host_port(out, host, port);
    append_tls_suffix(out, tls);
    if (!credential_fingerprint.empty()) {
        out += '#';
        out += credential_fingerprint;
    }
    return out;
}

}  // namespace netpool

std::size_t std::hash<netpool::pool_key>::operator()(const netpool::pool_key& k) const noexcept {
    std::size_t h = std::hash<std::string>{}(k.host);
    h = netpool::mix(h, std::hash<std::uint16_t>{}(k.port));
    h = netpool::mix(h, static_cast<std::size_t>(k.tls));
    h = netpool::mix(h, std::hash<std::string>{}(k.user));
    h = netpool::mix(h, std::hash<std::string>{}(k.credential_fingerprint));
    h = netpool::mix(h, std::hash<std::string>{}(k.tls_profile));
    return h;
}
