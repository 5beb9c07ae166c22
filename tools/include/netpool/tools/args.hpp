// Command-line options of the `netpool` subcommands, parsed by CLI11: "--name value",
// "--name=value" and "--flag". Each option is declared with what it fills and how its value
// is checked, so that every mistake is reported the same way, naming the option.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace netpool::tools {

/// Exit codes shared by every subcommand.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

/// A mistake in the options. what() names the option ("--port expects a port number
/// (1-65535), got '70000'"). Exit status exit_usage.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The options of one subcommand. Declare them, parse() once, then read given().
///
/// Errors: parse() throws usage_error for an unknown option ("unknown option '--bogus'"), a
/// positional argument ("unexpected argument 'x'"), a missing value ("option '--port' needs
/// a value"), a value given to a flag ("option '--json' takes no value"), an option given
/// twice unless declared repeatable ("option '--port' given twice"), a refused option (see
/// refuse()), and whatever an option's check throws. Checks run after the whole line is
/// read, in the order the options were declared. Thread safety: none.
class command_line {
public:
    command_line();
    ~command_line();
    command_line(const command_line&) = delete;
    command_line& operator=(const command_line&) = delete;

    /// A flag: `target` becomes true when given.
    void flag(const std::string& name, bool& target);
    /// An option with a value: `apply(value)` runs when it is given; it throws usage_error
    /// (use bad_value()) for a value it does not take.
    void option(const std::string& name, std::function<void(const std::string&)> apply);
    /// A repeatable option: each value is appended to `target`.
    void repeated(const std::string& name, std::vector<std::string>& target);
    /// Refused whatever else is on the line, before anything is parsed (so the refusal is
    /// what the user sees): parse() throws usage_error("--NAME " + why).
    void refuse(const std::string& name, const std::string& why);

    /// Helpers for option():
    /// any text
    void text(const std::string& name, std::string& target);
    /// an integer in [min, max]: "--NAME expects a positive integer, got 'x'" (non-negative
    /// when min is 0)
    void count(const std::string& name, std::size_t& target, std::size_t min, std::size_t max);
    /// a TCP port: "--NAME expects a port number (1-65535), got 'x'"
    void port(const std::string& name, std::uint16_t& target);
    /// seconds ("30", "30s") or milliseconds ("500ms"), 1 ms to one day
    void duration(const std::string& name, std::chrono::milliseconds& target);

    /// Parses `args` (the arguments after the subcommand's name). Throws usage_error.
    void parse(std::span<const std::string_view> args);
    /// Whether the option was on the line (after parse()).
    bool given(const std::string& name) const;

    /// The usage_error "--NAME expects WHAT, got 'VALUE'".
    static usage_error bad_value(const std::string& name, const std::string& what, const std::string& value);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Whether `args` hold "--json": known before parsing, so that an option mistake is reported
/// as JSON too.
bool json_requested(std::span<const std::string_view> args);

/// An unsigned integer in [min, max] made of digits only, or nullopt.
std::optional<std::uint64_t> parse_unsigned(std::string_view s, std::uint64_t min, std::uint64_t max);

}  // namespace netpool::tools
