// SHA-256 (FIPS 180-4, section 6.2), written for netpool so that credential fingerprints
// need no crypto library and come out the same whether or not netpool is built with TLS.
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

/// Lower-case hexadecimal of `bytes`.
std::string to_hex(const std::uint8_t* bytes, std::size_t size);

/// Overwrites `size` bytes at `p` with zeros in a way the compiler may not optimise away.
void secure_zero(void* p, std::size_t size) noexcept;

}  // namespace netpool::detail
