// libFuzzer target: pool options from JSON (netpool::parse_pool_options).
//
// The input is a configuration file's text. A config_error is an expected outcome (and
// must name a JSON pointer); any other exception, a crash or a sanitizer report is a bug.
// Options that parse must be valid and survive to_json() and back unchanged, also when
// the object sits inside a larger document.
#include "fuzz_support.hpp"

#include <netpool/options.hpp>
#include <netpool/options_json.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

using netpool_fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    netpool::pool_options o;
    try {
        o = netpool::parse_pool_options(in);
    } catch (const netpool::config_error& e) {
        check(e.field().starts_with('/'), "a config_error whose field is not a JSON pointer");
        check(std::string_view(e.what()).starts_with(e.field()), "a config_error whose message does not start with its field");
        return 0;
    }
    // Anything else thrown escapes: libFuzzer reports it as a crash.

    o.validate();  // must not throw: parse_pool_options() validated
    const nlohmann::json j = netpool::to_json(o);
    const std::string text = j.dump();
    const netpool::pool_options back = netpool::parse_pool_options(text);
    check(netpool::to_json(back) == j, "to_json() and back changed the options");

    const nlohmann::json doc = {{"pools", {{"mail/x~", j}}}};
    const netpool::pool_options nested = netpool::parse_pool_options(doc["pools"]["mail/x~"], "/pools/mail~1x~0");
    check(netpool::to_json(nested) == j, "parsing inside a larger document changed the options");
    return 0;
}
