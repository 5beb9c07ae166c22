// SHA-256 (FIPS 180-4, section 6.2) and HMAC-SHA256 (RFC 2104), written for netpool so that
// credential fingerprints need no crypto library and work whether or not netpool is built
// with TLS.
// Not constant-time and not meant for anything beyond hashing small identities.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace netpool::detail {

/// Incremental SHA-256: update() any number of times, then finish() once. The object wipes
/// its buffered input and state in finish() and in its destructor (it may hold a secret).
class sha256 {
public:
    static constexpr std::size_t digest_size = 32;
    static constexpr std::size_t block_size = 64;
    using digest_type = std::array<std::uint8_t, digest_size>;

    sha256() noexcept;
    ~sha256();
    sha256(const sha256&) = delete;
    sha256& operator=(const sha256&) = delete;

    void update(const void* data, std::size_t size) noexcept;
    void update(std::string_view s) noexcept { update(s.data(), s.size()); }
    /// Pads, returns the digest and wipes the state; the object must not be updated again.
    digest_type finish() noexcept;

    /// One-shot hash of `s`.
    static digest_type hash(std::string_view s) noexcept;

private:
    void compress(const std::uint8_t* block) noexcept;

    std::array<std::uint32_t, 8> h_;
    std::array<std::uint8_t, block_size> buffer_{};
    std::size_t buffered_ = 0;
    std::uint64_t total_bytes_ = 0;
};

/// HMAC-SHA256 (RFC 2104, FIPS 198-1) on top of sha256: incremental like it, so a secret can
/// be fed in pieces without being copied into a buffer of the caller's. Keys longer than a
/// block are hashed first. The padded key and the hash states are wiped in finish() and in
/// the destructor.
class hmac_sha256 {
public:
    static constexpr std::size_t digest_size = sha256::digest_size;
    using digest_type = sha256::digest_type;

    hmac_sha256(const void* key, std::size_t key_size) noexcept;
    ~hmac_sha256();
    hmac_sha256(const hmac_sha256&) = delete;
    hmac_sha256& operator=(const hmac_sha256&) = delete;

    void update(const void* data, std::size_t size) noexcept { inner_.update(data, size); }
    void update(std::string_view s) noexcept { inner_.update(s); }
    /// The MAC; the object must not be updated again.
    digest_type finish() noexcept;

    /// One-shot HMAC of `message` under `key`.
    static digest_type mac(std::string_view key, std::string_view message) noexcept;

private:
    std::array<std::uint8_t, sha256::block_size> outer_pad_{};
    sha256 inner_;
};

/// Lower-case hexadecimal of `bytes`.
std::string to_hex(const std::uint8_t* bytes, std::size_t size);

/// 32 random bytes made once per process, the key of credential fingerprints (defined in
/// endpoint.cpp: from OpenSSL's RAND_bytes when built with TLS, else std::random_device).
const std::array<std::uint8_t, 32>& process_key();

/// Overwrites `size` bytes at `p` with zeros in a way the compiler may not optimise away.
void secure_zero(void* p, std::size_t size) noexcept;

}  // namespace netpool::detail
