#include <netpool/tools/report.hpp>
#include <netpool/tools/terminal.hpp>

#include <netpool/stats.hpp>

#include <cmath>
#include <iostream>

namespace netpool::tools {

std::string dump(const json& doc) { return doc.dump(-1, ' ', false, json::error_handler_t::replace); }

double rounded(double v, int decimals) {
    const double scale = std::pow(10.0, decimals);
    return std::round(v * scale) / scale;
}

json stats_json(const pool_stats& s) { return json::parse(to_json(s)); }

command_report::command_report(std::string command, bool json, std::function<std::string(std::string)> scrub)
    : command_(std::move(command)), json_(json), scrub_(std::move(scrub)) {}

int command_report::usage(const std::string& message) const {
    std::cerr << "netpool " << command_ << ": " << terminal_safe(scrub(message)) << " (see netpool " << command_
              << " --help)\n";
    if (json_) error_json(exit_usage, "options", message, {});
    return exit_usage;
}

int command_report::failure(const std::string& where, const std::string& what, const std::string& hint) const {
    std::string text = "netpool " + command_ + ": " + terminal_safe(scrub(what));
    if (!hint.empty()) text += "\n  hint: " + terminal_safe(scrub(hint));
    std::cerr << text << "\n";
    if (json_) error_json(exit_failure, where, what, hint);
    return exit_failure;
}

namespace {
/// Every string in `j` through `f`: before escaping, so a password with a `"` or `\\` in it
/// (escaped in the dump) is still found.
void scrub_strings(tools::json& j, const std::function<std::string(std::string)>& f) {
    if (j.is_string()) j = f(j.get<std::string>());
    else if (j.is_structured())
        for (auto& item : j) scrub_strings(item, f);
}
}  // namespace

void command_report::result(const tools::json& doc) const {
    if (!scrub_) {
        std::cout << dump(doc) << "\n" << std::flush;
        return;
    }
    tools::json copy = doc;
    scrub_strings(copy, scrub_);
    std::cout << scrub(dump(copy)) << "\n" << std::flush;
}

void command_report::error_json(int status, const std::string& where, const std::string& what,
                                const std::string& hint) const {
    tools::json doc;
    doc["command"] = command_;
    doc["exit_status"] = status;
    tools::json err;
    err["where"] = where;
    err["what"] = scrub(what);
    if (!hint.empty()) err["hint"] = scrub(hint);
    doc["error"] = std::move(err);
    for (const auto& [k, v] : context_.items()) doc[k] = v;
    result(doc);
}

}  // namespace netpool::tools
