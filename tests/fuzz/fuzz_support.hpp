// Helpers shared by the libFuzzer targets: a deterministic way to cut an input into the
// pieces a socket might deliver, and a check that reports and aborts (libFuzzer then saves
// the input as a crash).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace netpool_fuzz {

/// Aborts with `what` when `ok` is false: an invariant of the code under test was broken.
inline void check(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
}

/// splitmix64, seeded from the input's bytes (FNV-1a): the same input always gets the same
/// cuts, so a crash reproduces from the saved file alone, and mutating the input moves them.
class cutter {
public:
    explicit cutter(std::string_view data) {
        std::uint64_t h = 0xcbf29ce484222325u;
        for (unsigned char c : data) h = (h ^ c) * 0x100000001b3u;
        state_ = h;
    }
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        return z ^ (z >> 31);
    }
    /// `data` cut into pieces of 1 to 16 bytes, with now and then a longer one (as a read
    /// of a full socket buffer would be); no empty piece unless `data` is empty.
    std::vector<std::string_view> pieces(std::string_view data) {
        std::vector<std::string_view> out;
        while (!data.empty()) {
            const std::uint64_t r = next();
            std::size_t n = (r & 7) == 0 ? 1 + (r >> 8) % 512 : 1 + (r >> 8) % 16;
            if (n > data.size()) n = data.size();
            out.push_back(data.substr(0, n));
            data.remove_prefix(n);
        }
        return out;
    }

private:
    std::uint64_t state_ = 0;
};

}  // namespace netpool_fuzz
