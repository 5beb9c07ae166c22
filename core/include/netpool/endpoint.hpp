// Where a pool connects to, and as whom.
#pragma once

#include <netpool/secret.hpp>

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace netpool {

enum class tls_mode {
    none,      ///< plain TCP
    implicit,  ///< TLS from the first byte (SMTPS 465, IMAPS 993, echo over TLS)
    starttls,  ///< plain first, upgraded by the adapter (SMTP STARTTLS, IMAP STARTTLS)
};

const char* to_string(tls_mode m) noexcept;

/// TLS settings. Verification is on by default; turning it off is explicit.
struct tls_options {
    bool verify = true;        ///< verify the chain and the host name
    std::string ca_file;       ///< PEM file of trusted CAs; empty = system default paths
    std::string server_name;   ///< SNI and name to verify; empty = endpoint host
    /// Resume TLS sessions on reconnect (TLS 1.3 tickets, TLS 1.2 session IDs or tickets):
    /// a pool's context keeps the last sessions of its endpoint and offers one only to the
    /// same host, port, server name and trust settings. false: a full handshake every time.
    bool resume_sessions = true;
};

struct endpoint {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    tls_mode tls = tls_mode::none;
    tls_options tls_opts;

    /// "host:port" (plus "+tls"/"+starttls"); never contains credentials.
    std::string to_string() const;
};

/// An identity. The secret is never printed; fingerprint() identifies it without revealing it.
struct credentials {
    std::string user;
    /// Held once however often the credentials are copied, and wiped when the last copy
    /// goes (netpool::secret). Assign it from a string as before.
    netpool::secret secret;

    /// Hex of HMAC-SHA256(k, user '\0' secret) under a random key k made once per process
    /// (OpenSSL's RAND_bytes when built with TLS, else std::random_device); empty when both
    /// are empty. Equal credentials give equal fingerprints within one process only, and
    /// without k a fingerprint cannot be used to test password guesses. For telling
    /// identities apart in memory (the registry's pool keys); never printed by netpool.
    std::string fingerprint() const;
};

/// Pools are keyed by endpoint and identity, so a connection authenticated as one
/// identity is never handed to a checkout for another.
struct pool_key {
    std::string host;
    std::uint16_t port = 0;
    tls_mode tls = tls_mode::none;
    std::string user;
    std::string credential_fingerprint;
    /// TLS trust settings (verify flag, CA file, server name): connections verified one way
    /// are not handed to checkouts that asked for another. Not secret; not in to_string().
    std::string tls_profile;

    static pool_key make(const endpoint& ep, const credentials& cred);
    /// "host:port+tls": the endpoint part only, with no user and no credential material.
    /// The registry names a keyed pool "host:port+tls#N" (N: its sequence number in the
    /// registry), or "user@host:port+tls#N" with registry_options::label_with_user.
    std::string to_string() const;
    auto operator<=>(const pool_key&) const = default;
    bool operator==(const pool_key&) const = default;
};

}  // namespace netpool

template <> struct std::hash<netpool::pool_key> {
    std::size_t operator()(const netpool::pool_key& k) const noexcept;
};
