// SHA-256 as specified in FIPS 180-4: constants (4.2.2), initial hash value (5.3.3),
// padding (5.1.1), message schedule and compression (6.2.2); HMAC-SHA256 on top of it
// (RFC 2104 / FIPS 198-1).
#include <netpool/detail/sha256.hpp>

#include <algorithm>
#include <bit>
#include <cstring>

namespace netpool::detail {

namespace {

// K: the first 32 bits of the fractional parts of the cube roots of the first 64 primes.
constexpr std::array<std::uint32_t, 64> k = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// H(0): the first 32 bits of the fractional parts of the square roots of the first 8 primes.
constexpr std::array<std::uint32_t, 8> initial_hash = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

// The six logical functions of section 4.1.2.
constexpr std::uint32_t ch(std::uint32_t x, std::uint32_t y, std::uint32_t z) noexcept { return (x & y) ^ (~x & z); }
constexpr std::uint32_t maj(std::uint32_t x, std::uint32_t y, std::uint32_t z) noexcept {
    return (x & y) ^ (x & z) ^ (y & z);
}
constexpr std::uint32_t big_sigma0(std::uint32_t x) noexcept {
    return std::rotr(x, 2) ^ std::rotr(x, 13) ^ std::rotr(x, 22);
}
constexpr std::uint32_t big_sigma1(std::uint32_t x) noexcept {
    return std::rotr(x, 6) ^ std::rotr(x, 11) ^ std::rotr(x, 25);
}
constexpr std::uint32_t small_sigma0(std::uint32_t x) noexcept { return std::rotr(x, 7) ^ std::rotr(x, 18) ^ (x >> 3); }
constexpr std::uint32_t small_sigma1(std::uint32_t x) noexcept {
    return std::rotr(x, 17) ^ std::rotr(x, 19) ^ (x >> 10);
}

// The standard's words are big-endian whatever the host's byte order.
std::uint32_t load_be32(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

void store_be32(std::uint8_t* p, std::uint32_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

}  // namespace

sha256::sha256() noexcept : h_(initial_hash) {}

sha256::~sha256() {
    secure_zero(h_.data(), sizeof h_);
    secure_zero(buffer_.data(), buffer_.size());
}

void sha256::compress(const std::uint8_t* block) noexcept {
    // 1. The message schedule W0..W63.
    std::array<std::uint32_t, 64> w;
    for (std::size_t t = 0; t < 16; ++t) w[t] = load_be32(block + 4 * t);
    for (std::size_t t = 16; t < 64; ++t)
        w[t] = small_sigma1(w[t - 2]) + w[t - 7] + small_sigma0(w[t - 15]) + w[t - 16];

    // 2. The working variables from the previous hash value.
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];

    // 3. Sixty-four rounds.
    for (std::size_t t = 0; t < 64; ++t) {
        const std::uint32_t t1 = h + big_sigma1(e) + ch(e, f, g) + k[t] + w[t];
        const std::uint32_t t2 = big_sigma0(a) + maj(a, b, c);
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }

    // 4. The next intermediate hash value.
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
    secure_zero(w.data(), sizeof w);
}

void sha256::update(const void* data, std::size_t size) noexcept {
    if (size == 0) return;  // `data` may then be null, which memcpy must never see
    const auto* in = static_cast<const std::uint8_t*>(data);
    total_bytes_ += size;
    if (buffered_ > 0) {
        const std::size_t take = std::min(size, block_size - buffered_);
        std::memcpy(buffer_.data() + buffered_, in, take);
        buffered_ += take;
        in += take;
        size -= take;
        if (buffered_ < block_size) return;
        compress(buffer_.data());
        buffered_ = 0;
    }
    for (; size >= block_size; in += block_size, size -= block_size) compress(in);
    if (size > 0) {
        std::memcpy(buffer_.data(), in, size);
        buffered_ = size;
    }
}

sha256::digest_type sha256::finish() noexcept {
    // Padding (5.1.1): a single 1 bit, zeros up to 56 bytes into a block, then the message
    // length in bits as a 64-bit big-endian integer.
    const std::uint64_t bit_length = total_bytes_ * 8;
    buffer_[buffered_++] = 0x80;
    if (buffered_ > block_size - 8) {
        std::memset(buffer_.data() + buffered_, 0, block_size - buffered_);
        compress(buffer_.data());
        buffered_ = 0;
    }
    std::memset(buffer_.data() + buffered_, 0, block_size - 8 - buffered_);
    for (std::size_t i = 0; i < 8; ++i)
        buffer_[block_size - 1 - i] = static_cast<std::uint8_t>(bit_length >> (8 * i));
    compress(buffer_.data());

    digest_type out;
    for (std::size_t i = 0; i < 8; ++i) store_be32(out.data() + 4 * i, h_[i]);
    secure_zero(h_.data(), sizeof h_);
    secure_zero(buffer_.data(), buffer_.size());
    buffered_ = 0;
    return out;
}

sha256::digest_type sha256::hash(std::string_view s) noexcept {
    sha256 ctx;
    ctx.update(s);
    return ctx.finish();
}

hmac_sha256::hmac_sha256(const void* key, std::size_t key_size) noexcept {
    // K0 (FIPS 198-1, 4): the key itself when it fits a block, its hash when longer; zeros after.
    std::array<std::uint8_t, sha256::block_size> k0{};
    if (key_size > sha256::block_size) {
        sha256 kh;
        kh.update(key, key_size);
        auto d = kh.finish();
        std::memcpy(k0.data(), d.data(), d.size());
        secure_zero(d.data(), d.size());
    } else if (key_size > 0) {
        std::memcpy(k0.data(), key, key_size);
    }
    std::array<std::uint8_t, sha256::block_size> inner_pad;
    for (std::size_t i = 0; i < k0.size(); ++i) {
        inner_pad[i] = static_cast<std::uint8_t>(k0[i] ^ 0x36);
        outer_pad_[i] = static_cast<std::uint8_t>(k0[i] ^ 0x5c);
    }
    inner_.update(inner_pad.data(), inner_pad.size());
    secure_zero(inner_pad.data(), inner_pad.size());
    secure_zero(k0.data(), k0.size());
}

hmac_sha256::~hmac_sha256() { secure_zero(outer_pad_.data(), outer_pad_.size()); }

hmac_sha256::digest_type hmac_sha256::finish() noexcept {
    // HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m))
    auto inner_digest = inner_.finish();
    sha256 outer;
    outer.update(outer_pad_.data(), outer_pad_.size());
    outer.update(inner_digest.data(), inner_digest.size());
    secure_zero(inner_digest.data(), inner_digest.size());
    secure_zero(outer_pad_.data(), outer_pad_.size());
    return outer.finish();
}

hmac_sha256::digest_type hmac_sha256::mac(std::string_view key, std::string_view message) noexcept {
    hmac_sha256 h(key.data(), key.size());
    h.update(message);
    return h.finish();
}

std::string to_hex(const std::uint8_t* bytes, std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * size);
    for (std::size_t i = 0; i < size; ++i) {
        out += digits[bytes[i] >> 4];
        out += digits[bytes[i] & 0x0f];
    }
    return out;
}

void secure_zero(void* p, std::size_t size) noexcept {
    // Stores through a volatile pointer are observable behaviour: they cannot be elided
    // even though the memory is about to be freed or go out of scope.
    auto* v = static_cast<volatile std::uint8_t*>(p);
    for (std::size_t i = 0; i < size; ++i) v[i] = 0;
}

}  // namespace netpool::detail
