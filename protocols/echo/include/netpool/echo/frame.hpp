// Echo protocol framing: a 4-byte big-endian payload length, then the payload.
// Plain functions over bytes (no sockets), so they can be tested with strings and fuzzed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace netpool::echo {

inline constexpr std::size_t frame_header_size = 4;
/// Default cap on a payload, for clients and servers alike.
inline constexpr std::size_t default_max_frame = std::size_t{1} << 20;
/// The largest payload a header can declare.
inline constexpr std::size_t max_declarable_frame = 0xFFFF'FFFFu;

/// The server's first line on every connection.
inline constexpr std::string_view greeting = "NETPOOL-ECHO 1\r\n";

/// Header for a payload of `size` bytes. Precondition: size <= max_declarable_frame.
std::array<char, frame_header_size> encode_header(std::size_t size) noexcept;
/// Payload length declared by a header.
std::uint32_t decode_header(const std::array<char, frame_header_size>& header) noexcept;
/// Same, reading the first four bytes at `p`. Precondition: four readable bytes.
std::uint32_t decode_header(const char* p) noexcept;

/// Appends header and payload to `out` (reusing its capacity).
/// Precondition: payload.size() <= max_declarable_frame.
void encode_frame(std::string_view payload, std::string& out);
/// Header and payload as a new string.
std::string encode_frame(std::string_view payload);

enum class decode_status {
    need_more,  ///< the input does not yet hold a whole frame
    frame,      ///< one frame at the start of the input
    error,      ///< the input can never become a valid frame (see decode_result::error)
};

struct decode_result {
    decode_status status = decode_status::need_more;
    /// frame: bytes the frame occupies at the start of the input (header + payload).
    std::size_t consumed = 0;
    /// need_more: bytes the input must hold (from its start) before the next call can make
    /// progress: the header size, or the whole frame once the header is known.
    std::size_t needed = 0;
    /// frame: the payload, a view into the input.
    std::string_view payload;
    /// error: errc::frame_too_large when the declared length exceeds the maximum.
    std::error_code error;
};

/// Decodes the frame at the start of `input`, if it is complete. Never allocates and never
/// reads past the input; a declared length above `max_frame` is an error as soon as the
/// header is there, before any of the payload.
decode_result decode_frame(std::string_view input, std::size_t max_frame) noexcept;

/// Incremental decoder: feed bytes as they arrive (in any pieces), take whole frames out.
/// It stores only bytes it was fed, never a declared length, so a hostile header cannot
/// make it allocate. After an error it stays failed: the byte stream has lost its framing.
/// Thread safety: none (one reader).
class frame_decoder {
public:
    explicit frame_decoder(std::size_t max_frame = default_max_frame) noexcept : max_frame_(max_frame) {}

    /// Appends bytes. Payload views from earlier next() calls become invalid.
    void feed(std::string_view bytes);
    /// The next frame, need_more, or the (sticky) error. A frame's payload stays valid until
    /// the next feed(), next() or reset().
    decode_result next();

    /// Bytes fed and not yet taken out as frames.
    std::size_t buffered() const noexcept { return buffer_.size() - start_; }
    /// Memory held for buffered bytes (tests use it to check nothing was over-allocated).
    std::size_t capacity() const noexcept { return buffer_.capacity(); }
    std::size_t max_frame() const noexcept { return max_frame_; }
    bool failed() const noexcept { return failed_; }
    /// Drops buffered bytes and the error; keeps the allocated capacity.
    void reset() noexcept;

private:
    void compact();

    std::string buffer_;
    std::size_t start_ = 0;  // first byte not yet taken out as a frame
    std::size_t max_frame_;
    bool failed_ = false;
};

}  // namespace netpool::echo
