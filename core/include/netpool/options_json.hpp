// Pool options inside a larger JSON document (nlohmann_json), and back to JSON.
#pragma once

#include <netpool/options.hpp>

// The full header, not json_fwd.hpp: every caller of to_json() needs the complete type.
#include <nlohmann/json.hpp>

#include <concepts>
#include <string_view>

namespace netpool {

namespace detail {
pool_options parse_pool_options_at(const nlohmann::json& j, std::string_view path_prefix);
}

/// Reads pool options from a JSON object that may sit anywhere in a larger document.
/// `path_prefix` is the JSON pointer of that object (e.g. "/pools/mail"), so errors name
/// the full pointer ("/pools/mail/max_overflow"); with an empty prefix they name "/size" etc.
/// Missing fields keep their defaults; unknown fields are errors; validate() runs last.
///
/// Errors: throws config_error whose field() is the JSON pointer of the offending value.
/// Thread safety: none needed (pure function).
///
/// A template only so that a string literal or std::string argument picks the
/// parse_pool_options(std::string_view) overload instead of being ambiguous between it and
/// nlohmann::json's converting constructor.
template <class Json>
    requires std::same_as<Json, nlohmann::json>
pool_options parse_pool_options(const Json& j, std::string_view path_prefix = "") {
    return detail::parse_pool_options_at(j, path_prefix);
}

/// Every field of `o` (durations as integer milliseconds, order as "lifo"/"fifo");
/// parse_pool_options() of the result yields equal options.
nlohmann::json to_json(const pool_options& o);

}  // namespace netpool
