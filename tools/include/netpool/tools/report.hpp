// What a subcommand prints when it ends: its result, or why there is none. With --json,
// every exit prints exactly one JSON object on stdout, a mistake in the options, a failed
// preflight or a refused login included, so a script can always tell what happened; the
// words for a person go to stderr either way.
#pragma once

#include <netpool/tools/args.hpp>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace netpool {
struct pool_stats;
}

namespace netpool::tools {

/// Keys keep the order they were written in, as the hand-written JSON had them.
using json = nlohmann::ordered_json;

/// `doc` on one line. Text that is not valid UTF-8 (a server's reply) is written with
/// U+FFFD in place of the bad bytes instead of failing.
std::string dump(const json& doc);
/// `v` rounded to `decimals` places: the precision the output has always had.
double rounded(double v, int decimals);
/// to_json(pool_stats) as a JSON value.
json stats_json(const pool_stats& s);

/// One run of a subcommand ("smtp-send"), with or without --json. Every text it prints
/// passes through `scrub` first (a command's redactor: the password in no output).
/// Thread safety: none.
class command_report {
public:
    command_report(std::string command, bool json, std::function<std::string(std::string)> scrub = {});

    bool json_mode() const noexcept { return json_; }
    void set_json_mode(bool on) noexcept { json_ = on; }
    /// Replaces the scrub (once the password is known).
    void set_scrub(std::function<std::string(std::string)> scrub) { scrub_ = std::move(scrub); }
    /// Context for an error object (e.g. "server"), added next to "error".
    void set_context(const std::string& key, tools::json value) { context_[key] = std::move(value); }

    /// A mistake in the options: "netpool CMD: MESSAGE (see netpool CMD --help)" on stderr;
    /// with --json, {"command", "exit_status": 2, "error": {"where": "options", "what"}} on
    /// stdout. Returns exit_usage.
    int usage(const std::string& message) const;
    /// A failure that leaves no result (the server could not be used, a login refused):
    /// "netpool CMD: WHAT" and "  hint: HINT" on stderr (control characters escaped); with
    /// --json, {"command", "exit_status": 1, "error": {"where", "what", "hint"}, context...}
    /// on stdout. Returns exit_failure.
    int failure(const std::string& where, const std::string& what, const std::string& hint = {}) const;
    /// The result document, on stdout (scrubbed).
    void result(const tools::json& doc) const;

private:
    std::string scrub(std::string s) const { return scrub_ ? scrub_(std::move(s)) : s; }
    void error_json(int status, const std::string& where, const std::string& what, const std::string& hint) const;

    std::string command_;
    bool json_;
    std::function<std::string(std::string)> scrub_;
    tools::json context_ = tools::json::object();
};

}  // namespace netpool::tools
