// A password or token: held once, however often the credentials holding it are copied, and
// overwritten before its memory is freed.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace netpool {

/// Overwrites `n` bytes at `p` in a way the compiler may not remove (OPENSSL_cleanse in a
/// TLS build; volatile stores otherwise).
void wipe(void* p, std::size_t n) noexcept;

/// The bytes of a secret. Copies of a `secret` share one immutable buffer (a copy of the
/// credentials, of an account or of an adapter's options never duplicates the bytes); the
/// buffer is wiped when the last copy goes. Built from a string, it copies the bytes once;
/// built from an rvalue std::string, it also wipes that string.
/// Converts to std::string_view for the code that sends it (AUTH, LOGIN, SASL); what that
/// code builds from it (base64, SASL messages, command lines) goes in a wiped_string.
/// Thread safety: immutable; copies may be used from any thread.
class secret {
public:
    secret() noexcept = default;
    secret(std::string_view bytes);              // NOLINT: implicit, as the std::string it replaces
    secret(const char* bytes) : secret(std::string_view(bytes ? bytes : "")) {}  // NOLINT
    secret(std::string&& bytes);                 // NOLINT: wipes `bytes`
    secret(const std::string& bytes) : secret(std::string_view(bytes)) {}  // NOLINT

    std::string_view view() const noexcept { return buf_ ? std::string_view(buf_->data.get(), buf_->size) : ""; }
    operator std::string_view() const noexcept { return view(); }  // NOLINT
    bool empty() const noexcept { return !buf_ || buf_->size == 0; }
    std::size_t size() const noexcept { return buf_ ? buf_->size : 0; }
    std::size_t find(char c, std::size_t pos = 0) const noexcept { return view().find(c, pos); }
    /// Compares in time that depends on the lengths only.
    friend bool operator==(const secret& a, const secret& b) noexcept;

private:
    struct buffer {
        std::unique_ptr<char[]> data;
        std::size_t size = 0;
        ~buffer();
    };
    std::shared_ptr<const buffer> buf_;
};

/// A std::string wiped when destroyed, for what is built from a secret (an AUTH PLAIN
/// response, a LOGIN command line, a Redis AUTH command). Move-only; s() is the string.
/// Growing it may leave an unwiped copy behind in freed memory: reserve() first when the
/// final size is known (the builders in netpool do).
class wiped_string {
public:
    wiped_string() = default;
    explicit wiped_string(std::string s) noexcept : s_(std::move(s)) {}
    wiped_string(wiped_string&& o) noexcept : s_(std::move(o.s_)) { o.clear(); }
    wiped_string& operator=(wiped_string&& o) noexcept {
        if (this != &o) {
            clear();
            s_ = std::move(o.s_);
            o.clear();
        }
        return *this;
    }
    wiped_string(const wiped_string&) = delete;
    wiped_string& operator=(const wiped_string&) = delete;
    ~wiped_string() { clear(); }

    std::string& s() noexcept { return s_; }
    const std::string& s() const noexcept { return s_; }
    operator std::string_view() const noexcept { return s_; }  // NOLINT
    /// Wipes the whole buffer (capacity, not only size), then empties it.
    void clear() noexcept {
        wipe(s_.data(), s_.capacity());
        s_.clear();
    }

private:
    std::string s_;
};

/// The parts joined into one wiped_string, allocated once (no copy left behind by growth).
inline wiped_string wiped_concat(std::initializer_list<std::string_view> parts) {
    std::size_t n = 0;
    for (const auto p : parts) n += p.size();
    std::string s;
    s.reserve(n);
    for (const auto p : parts) s.append(p);
    return wiped_string(std::move(s));
}

}  // namespace netpool
