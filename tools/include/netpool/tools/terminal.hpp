#pragma once
// Text from a server (a reply, an error detail) on its way to a terminal: control characters
// are shown escaped, so a hostile server cannot move the cursor, change the title (OSC),
// colour the output or clear the screen (issue 13, item 4).

#include <cstddef>
#include <string>
#include <string_view>

namespace netpool::tools {

/// `s` with every C0 control (0x00-0x1F, newline and tab included), DEL (0x7F) and C1
/// control (U+0080-U+009F, and a stray byte 0x80-0x9F) written as "\xHH", and every byte
/// that is not part of valid UTF-8 as "\xHH" too. Valid UTF-8 text passes unchanged.
inline std::string terminal_safe(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    const auto escape = [&](unsigned char b) {
        out += "\\x";
        out += hex[b >> 4];
        out += hex[b & 15];
    };
    const auto cont = [&](std::size_t i) { return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; };
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x20 || b == 0x7F) {
            escape(b);
            ++i;
            continue;
        }
        if (b < 0x80) {
            out += static_cast<char>(b);
            ++i;
            continue;
        }
        std::size_t n = 0;
        char32_t cp = 0;
        if (b >= 0xC2 && b <= 0xDF) n = 2, cp = b & 0x1F;
        else if (b >= 0xE0 && b <= 0xEF) n = 3, cp = b & 0x0F;
        else if (b >= 0xF0 && b <= 0xF4) n = 4, cp = b & 0x07;
        bool ok = n > 0;
        for (std::size_t k = 1; ok && k < n; ++k) {
            ok = cont(i + k);
            if (ok) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3F);
        }
        // Overlong forms, surrogates and code points past U+10FFFF are not valid UTF-8.
        if (ok && ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                   (cp >= 0xD800 && cp <= 0xDFFF)))
            ok = false;
        if (!ok) {
            escape(b);
            ++i;
            continue;
        }
        if (cp >= 0x80 && cp <= 0x9F) {  // C1 (e.g. U+009B, CSI)
            escape(static_cast<unsigned char>(cp));
        } else {
            out.append(s.substr(i, n));
        }
        i += n;
    }
    return out;
}

}  // namespace netpool::tools
