// Endpoint and identity formatting, credential fingerprints and pool keys.
#include <netpool/endpoint.hpp>

#include <netpool/config.hpp>
#include <netpool/detail/sha256.hpp>

#if NETPOOL_HAS_TLS
#include <openssl/rand.h>
#endif

#include <random>

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

namespace detail {

const std::array<std::uint8_t, 32>& process_key() {
    // Made once, on first use (thread-safe static initialisation), and never leaves memory.
    static const std::array<std::uint8_t, 32> key = [] {
        std::array<std::uint8_t, 32> k{};
#if NETPOOL_HAS_TLS
        if (RAND_bytes(k.data(), static_cast<int>(k.size())) == 1) return k;
#endif
        std::random_device rd;  // a non-deterministic source on the platforms netpool supports
        for (std::size_t i = 0; i < k.size(); i += 4) {
            const auto v = rd();
            for (std::size_t j = 0; j < 4; ++j) k[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
        }
        return k;
    }();
    return key;
}

}  // namespace detail

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

    // Keyed, so that nobody without this process's key can check a password guess against
    // a fingerprint. Fed in pieces, so the secret is never copied outside the MAC's own
    // buffers (which it wipes). The '\0' separator keeps ("ab", "c") and ("a", "bc") apart.
    const auto& key = detail::process_key();
    detail::hmac_sha256 h(key.data(), key.size());
    h.update(user);
    h.update(std::string_view("\0", 1));
    h.update(secret);
    auto digest = h.finish();
    std::string out = detail::to_hex(digest.data(), digest.size());
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
    // No user and no fingerprint: names end up in metrics and events, which are read by
    // more people than the credentials are.
    std::string out;
    append_host_port(out, host, port);
    append_tls_suffix(out, tls);
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
