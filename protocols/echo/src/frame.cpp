#include <netpool/echo/frame.hpp>

#include <netpool/error.hpp>

#include <cassert>

namespace netpool::echo {

std::array<char, frame_header_size> encode_header(std::size_t size) noexcept {
    assert(size <= max_declarable_frame);
    const auto n = static_cast<std::uint32_t>(size);
    return {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
            static_cast<char>(n)};
}

std::uint32_t decode_header(const char* p) noexcept {
    // Through unsigned char: a plain char may be signed and would sign-extend.
    const auto byte = [p](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])); };
    return byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
}

std::uint32_t decode_header(const std::array<char, frame_header_size>& header) noexcept {
    return decode_header(header.data());
}

void encode_frame(std::string_view payload, std::string& out) {
    const auto header = encode_header(payload.size());
    out.reserve(out.size() + header.size() + payload.size());
    out.append(header.data(), header.size());
    out.append(payload);
}

std::string encode_frame(std::string_view payload) {
    std::string out;
    encode_frame(payload, out);
    return out;
}

decode_result decode_frame(std::string_view input, std::size_t max_frame) noexcept {
    decode_result r;
    if (input.size() < frame_header_size) {
        r.needed = frame_header_size;
        return r;
    }
    const std::size_t length = decode_header(input.data());
    if (length > max_frame) {
        r.status = decode_status::error;
        r.error = errc::frame_too_large;
        return r;
    }
    const std::size_t total = frame_header_size + length;
    if (input.size() < total) {
        r.needed = total;
        return r;
    }
    r.status = decode_status::frame;
    r.consumed = total;
    r.payload = input.substr(frame_header_size, length);
    return r;
}

void frame_decoder::feed(std::string_view bytes) {
    if (failed_) return;  // nothing after a framing error can be trusted; don't store it
    compact();
    buffer_.append(bytes);
}

decode_result frame_decoder::next() {
    if (failed_) {
        decode_result r;
        r.status = decode_status::error;
        r.error = errc::frame_too_large;
        return r;
    }
    // No compaction here: many frames from one feed() are taken out without moving bytes.
    auto r = decode_frame(std::string_view(buffer_).substr(start_), max_frame_);
    if (r.status == decode_status::frame) start_ += r.consumed;
    if (r.status == decode_status::error) failed_ = true;
    return r;
}

void frame_decoder::reset() noexcept {
    buffer_.clear();
    start_ = 0;
    failed_ = false;
}

void frame_decoder::compact() {
    // Called before new bytes are appended, when no payload view may still be in use.
    // Dropping the consumed prefix keeps the buffer no larger than the bytes actually
    // waiting; what moves is at most the frames the caller has not taken out yet.
    if (start_ == 0) return;
    buffer_.erase(0, start_);
    start_ = 0;
}

}  // namespace netpool::echo
