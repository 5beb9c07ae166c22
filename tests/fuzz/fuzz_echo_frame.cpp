// libFuzzer target: the echo protocol's frame decoder (netpool::echo::decode_frame and the
// incremental frame_decoder that the adapter and the echo server use).
//
// The input is a byte stream. decode_frame() over the whole of it and frame_decoder fed in
// small pieces must find the same frames and end in the same state; the decoder must never
// allocate for a declared length (only for bytes fed), and a frame the encoder wrote must
// decode back to its payload.
#include "fuzz_support.hpp"

#include <netpool/echo/frame.hpp>
#include <netpool/error.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace netpool::echo;
using netpool_fuzz::check;

namespace {

struct outcome {
    std::vector<std::string> frames;
    decode_status last = decode_status::need_more;
    std::size_t left = 0;    // bytes not taken out as frames
    std::size_t needed = 0;  // need_more: bytes required from the first of those
};

outcome whole(std::string_view in, std::size_t max_frame) {
    outcome o;
    for (;;) {
        const decode_result r = decode_frame(in, max_frame);
        o.last = r.status;
        if (r.status == decode_status::frame) {
            check(r.consumed == frame_header_size + r.payload.size() && r.consumed <= in.size(),
                  "a frame's size does not add up");
            check(r.payload.size() <= max_frame, "a frame larger than max_frame");
            check(r.payload.data() == in.data() + frame_header_size, "the payload is not a view of the input");
            o.frames.emplace_back(r.payload);
            in.remove_prefix(r.consumed);
            continue;
        }
        if (r.status == decode_status::error) {
            check(r.error == netpool::errc::frame_too_large, "an error other than frame_too_large");
        } else {
            check(r.needed > in.size(), "need_more although the input holds what is needed");
            o.needed = r.needed;
        }
        o.left = in.size();
        return o;
    }
}

outcome pieced(const std::vector<std::string_view>& pieces, std::size_t max_frame) {
    outcome o;
    frame_decoder d(max_frame);
    check(d.max_frame() == max_frame, "max_frame() differs from the constructor's");
    std::size_t total = 0;
    for (std::string_view piece : pieces) total += piece.size();
    std::size_t fed = 0;
    for (std::string_view piece : pieces) {
        d.feed(piece);
        fed += piece.size();
        check(d.capacity() <= 2 * fed + 64, "the decoder allocated beyond the bytes fed");
        for (;;) {
            const decode_result r = d.next();
            o.last = r.status;
            if (r.status == decode_status::frame) {
                o.frames.emplace_back(r.payload);
                continue;
            }
            if (r.status == decode_status::error) {
                check(d.failed(), "an error but failed() is false");
                d.feed(std::string_view("\0\0\0\0", 4));
                check(d.next().status == decode_status::error, "an error is not sticky");
                o.left = total;  // the decoder ignores everything after the error
                for (const auto& f : o.frames) o.left -= frame_header_size + f.size();
                return o;
            }
            check(r.needed > d.buffered(), "need_more although the buffer holds what is needed");
            o.needed = r.needed;
            break;
        }
    }
    if (pieces.empty()) {  // nothing fed: the decoder still says what it needs
        const decode_result r = d.next();
        o.last = r.status;
        o.needed = r.needed;
    }
    o.left = d.buffered();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    netpool_fuzz::cutter cut(in);

    const std::uint64_t r = cut.next();
    const std::size_t small_max[] = {0, 1, 4, 300, static_cast<std::size_t>((r >> 8) % 5000)};
    for (const std::size_t max_frame : {default_max_frame, max_declarable_frame, small_max[r % 5]}) {
        const outcome a = whole(in, max_frame);
        const outcome b = pieced(cut.pieces(in), max_frame);
        check(a.frames == b.frames, "decode_frame and frame_decoder found different frames");
        check(a.last == b.last && a.left == b.left, "decode_frame and frame_decoder ended differently");
        if (a.last == decode_status::need_more) check(a.needed == b.needed, "different need_more sizes");
    }

    // What the encoder writes decodes back, alone and after the input's own bytes were
    // dropped by reset().
    frame_decoder d(default_max_frame);
    d.feed(in);
    while (d.next().status == decode_status::frame) {
    }
    d.reset();
    check(d.buffered() == 0 && !d.failed(), "reset() left state behind");
    if (in.size() > default_max_frame) return 0;
    const std::string wire = encode_frame(in);
    for (std::string_view piece : cut.pieces(wire)) d.feed(piece);
    const decode_result back = d.next();
    check(back.status == decode_status::frame && back.payload == in, "an encoded frame does not decode back");
    check(d.buffered() == 0, "bytes left after the encoded frame");
    return 0;
}
