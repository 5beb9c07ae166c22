#include <netpool/base64.hpp>

#include <netpool/config.hpp>

#if NETPOOL_HAS_TLS
#include <openssl/evp.h>
#endif

#include <algorithm>

namespace netpool {

namespace {

bool in_alphabet(char ch) noexcept {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

/// The text without its padding, if the rest is all alphabet and the padding is 0-2 '='
/// at the end only.
std::optional<std::string_view> unpadded(std::string_view text) {
    std::size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    const std::string_view body = text.substr(0, text.size() - pad);
    if (!std::all_of(body.begin(), body.end(), in_alphabet)) return std::nullopt;
    if (pad > 0 && text.size() % 4 != 0) return std::nullopt;  // padding only completes a quantum
    if (body.size() % 4 == 1) return std::nullopt;             // 6 bits cannot end a byte
    return body;
}

#if !NETPOOL_HAS_TLS
constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

unsigned value_of(char ch) noexcept {
    if (ch >= 'A' && ch <= 'Z') return static_cast<unsigned>(ch - 'A');
    if (ch >= 'a' && ch <= 'z') return static_cast<unsigned>(ch - 'a' + 26);
    if (ch >= '0' && ch <= '9') return static_cast<unsigned>(ch - '0' + 52);
    return ch == '+' ? 62U : 63U;
}
#endif

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out((bytes.size() + 2) / 3 * 4, '\0');
    if (bytes.empty()) return out;
#if NETPOOL_HAS_TLS
    // EVP_EncodeBlock writes a NUL after the text: room for it, then drop it.
    out.resize(out.size() + 1);
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
#else
    std::size_t o = 0;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::size_t rest = std::min<std::size_t>(3, bytes.size() - i);
        unsigned v = 0;
        for (std::size_t k = 0; k < 3; ++k)
            v = v << 8 | (k < rest ? static_cast<unsigned char>(bytes[i + k]) : 0U);
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
        out[o++] = rest > 1 ? digits[v >> 6 & 63] : '=';
        out[o++] = rest > 2 ? digits[v & 63] : '=';
    }
#endif
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    const auto body = unpadded(text);
    if (!body) return std::nullopt;
    const std::size_t tail = body->size() % 4;  // 0, 2 or 3 characters of a last quantum
    const std::size_t size = body->size() / 4 * 3 + (tail == 0 ? 0 : tail - 1);
    std::string out;
#if NETPOOL_HAS_TLS
    // EVP_DecodeBlock wants whole quanta and decodes padding as zero bytes: pad, decode,
    // then cut the result to what the characters encode.
    std::string padded(*body);
    if (tail != 0) padded.append(4 - tail, '=');
    out.resize(padded.size() / 4 * 3);
    if (!padded.empty()) {
        const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(padded.data()),
                                      static_cast<int>(padded.size()));
        if (n < 0) return std::nullopt;
    }
    out.resize(size);
#else
    out.reserve(size);
    unsigned acc = 0;
    int bits = 0;
    for (const char ch : *body) {
        acc = (acc << 6 | value_of(ch)) & 0xFFFFFFU;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>(acc >> bits & 0xFF);
        }
    }
#endif
    return out;
}

}  // namespace netpool
