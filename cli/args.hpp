// Command-line options for the subcommands: "--name value", "--name=value" and "--flag".
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace netpool::cli {

/// Exit codes shared by every subcommand.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

struct option_spec {
    std::string_view name;  ///< without the leading "--"
    bool takes_value;
};

/// Options as given; a flag maps to an empty value.
using parsed_options = std::map<std::string_view, std::string_view, std::less<>>;

/// Parses `args` against `specs`. On a mistake (unknown option, missing value, a value given
/// to a flag, a positional argument, an option given twice) returns nullopt with `error` set.
inline std::optional<parsed_options> parse_options(std::span<const std::string_view> args,
                                                   std::span<const option_spec> specs, std::string& error) {
    parsed_options out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (!arg.starts_with("--") || arg.size() == 2) {
            error = "unexpected argument '" + std::string(arg) + "'";
            return std::nullopt;
        }
        arg.remove_prefix(2);
        std::optional<std::string_view> inline_value;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            inline_value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        }
        const option_spec* spec = nullptr;
        for (const auto& s : specs)
            if (s.name == arg) spec = &s;
        if (spec == nullptr) {
            error = "unknown option '--" + std::string(arg) + "'";
            return std::nullopt;
        }
        std::string_view value;
        if (spec->takes_value) {
            if (inline_value) {
                value = *inline_value;
            } else if (i + 1 < args.size()) {
                value = args[++i];
            } else {
                error = "option '--" + std::string(arg) + "' needs a value";
                return std::nullopt;
            }
        } else if (inline_value) {
            error = "option '--" + std::string(arg) + "' takes no value";
            return std::nullopt;
        }
        if (!out.emplace(spec->name, value).second) {
            error = "option '--" + std::string(arg) + "' given twice";
            return std::nullopt;
        }
    }
    return out;
}

/// An unsigned integer in [min, max], or nullopt.
template <class T = std::uint64_t>
std::optional<T> parse_unsigned(std::string_view s, T min = 0, T max = std::numeric_limits<T>::max()) {
    T v{};
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || s.empty() || v < min || v > max) return std::nullopt;
    return v;
}

}  // namespace netpool::cli
