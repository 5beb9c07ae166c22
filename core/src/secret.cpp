#include <netpool/secret.hpp>

#include <netpool/config.hpp>

#if NETPOOL_HAS_TLS
#include <openssl/crypto.h>
#endif

#include <cstring>

namespace netpool {

void wipe(void* p, std::size_t n) noexcept {
    if (p == nullptr || n == 0) return;
#if NETPOOL_HAS_TLS
    OPENSSL_cleanse(p, n);
#else
    volatile unsigned char* v = static_cast<volatile unsigned char*>(p);
    while (n--) *v++ = 0;
#endif
}

secret::buffer::~buffer() { wipe(data.get(), size); }

secret::secret(std::string_view bytes) {
    if (bytes.empty()) return;
    auto b = std::make_shared<buffer>();
    b->data = std::make_unique<char[]>(bytes.size());
    std::memcpy(b->data.get(), bytes.data(), bytes.size());
    b->size = bytes.size();
    buf_ = std::move(b);
}

secret::secret(std::string&& bytes) : secret(std::string_view(bytes)) {
    wipe(bytes.data(), bytes.capacity());
    bytes.clear();
}

bool operator==(const secret& a, const secret& b) noexcept {
    const std::string_view x = a.view(), y = b.view();
    if (x.size() != y.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < x.size(); ++i) diff |= static_cast<unsigned char>(x[i] ^ y[i]);
    return diff == 0;
}

}  // namespace netpool
