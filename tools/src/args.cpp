#include <netpool/tools/args.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <deque>

namespace netpool::tools {

struct command_line::impl {
    struct entry {
        std::string name;  // without "--"
        bool is_flag = false;
        bool repeatable = false;
        std::vector<std::string> values;  // an option's, as CLI11 collected them
        std::int64_t times = 0;           // a flag's
        bool* flag_target = nullptr;
        std::function<void(const std::string&)> apply;
    };
    CLI::App app{"netpool"};
    std::deque<entry> entries;  // CLI11 keeps pointers into them
    std::vector<std::pair<std::string, std::string>> refused;

    impl() {
        app.set_help_flag();  // each command prints its own --help
        app.allow_extras();   // reported by parse(), in our words
    }
    entry& add(const std::string& name) {
        if (std::any_of(entries.begin(), entries.end(), [&](const entry& e) { return e.name == name; }))
            throw std::logic_error("command_line: option --" + name + " declared twice");
        auto& e = entries.emplace_back();
        e.name = name;
        return e;
    }
    const entry* find(std::string_view name) const {
        for (const auto& e : entries)
            if (e.name == name) return &e;
        return nullptr;
    }
};

command_line::command_line() : impl_(std::make_unique<impl>()) {}
command_line::~command_line() = default;

void command_line::flag(const std::string& name, bool& target) {
    auto& e = impl_->add(name);
    e.is_flag = true;
    e.flag_target = &target;
    // A value for a flag ("--json=yes") is a mistake, not a way to switch it.
    impl_->app.add_flag("--" + name, e.times)->disable_flag_override();
}

void command_line::option(const std::string& name, std::function<void(const std::string&)> apply) {
    auto& e = impl_->add(name);
    e.apply = std::move(apply);
    // Every value is collected, so that "given twice" is ours to report.
    impl_->app.add_option("--" + name, e.values)->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void command_line::repeated(const std::string& name, std::vector<std::string>& target) {
    option(name, [&target](const std::string& v) { target.push_back(v); });
    impl_->entries.back().repeatable = true;
}

void command_line::refuse(const std::string& name, const std::string& why) { impl_->refused.emplace_back(name, why); }

void command_line::text(const std::string& name, std::string& target) {
    option(name, [&target](const std::string& v) { target = v; });
}

void command_line::count(const std::string& name, std::size_t& target, std::size_t min, std::size_t max) {
    option(name, [name, &target, min, max](const std::string& v) {
        const auto n = parse_unsigned(v, min, max);
        if (!n) throw bad_value(name, min == 0 ? "a non-negative integer" : "a positive integer", v);
        target = static_cast<std::size_t>(*n);
    });
}

void command_line::port(const std::string& name, std::uint16_t& target) {
    option(name, [name, &target](const std::string& v) {
        const auto n = parse_unsigned(v, 1, 65535);
        if (!n) throw bad_value(name, "a port number (1-65535)", v);
        target = static_cast<std::uint16_t>(*n);
    });
}

void command_line::duration(const std::string& name, std::chrono::milliseconds& target) {
    option(name, [name, &target](const std::string& v) {
        std::string_view s = v;
        std::uint64_t scale = 1000;
        if (s.ends_with("ms")) {
            scale = 1;
            s.remove_suffix(2);
        } else if (s.ends_with("s")) {
            s.remove_suffix(1);
        }
        constexpr std::uint64_t day_ms = 86'400'000;
        const auto n = parse_unsigned(s, 1, day_ms);
        if (!n || *n * scale > day_ms)
            throw bad_value(name, "seconds (e.g. 30) or milliseconds (e.g. 500ms)", v);
        target = std::chrono::milliseconds(*n * scale);
    });
}

void command_line::parse(std::span<const std::string_view> args) {
    for (std::string_view a : args) {
        if (!a.starts_with("--")) continue;
        const std::string_view name = a.substr(2, a.find('=') == std::string_view::npos ? a.npos : a.find('=') - 2);
        for (const auto& [refused, why] : impl_->refused)
            if (name == refused) throw usage_error("--" + refused + " " + why);
    }
    // CLI11 takes the arguments last first.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    try {
        impl_->app.parse(reversed);
    } catch (const CLI::ArgumentMismatch& e) {
        // "--port: 1 required TEXT missing" or "json was given a disallowed flag override":
        // the option's name leads either way.
        std::string what = e.what();
        const auto end = what.find_first_of(": ");
        std::string name = what.substr(0, end);
        if (name.starts_with("--")) name.erase(0, 2);
        const auto* entry = impl_->find(name);
        if (entry && entry->is_flag) throw usage_error("option '--" + name + "' takes no value");
        throw usage_error("option '--" + name + "' needs a value");
    } catch (const CLI::ParseError& e) {
        throw usage_error(e.what());
    }
    for (const auto& extra : impl_->app.remaining()) {
        if (extra.starts_with("--") && extra.size() > 2)
            throw usage_error("unknown option '" + extra.substr(0, extra.find('=')) + "'");
        throw usage_error("unexpected argument '" + extra + "'");
    }
    for (const auto& e : impl_->entries) {
        if ((e.is_flag ? static_cast<std::size_t>(e.times) : e.values.size()) > 1 && !e.repeatable)
            throw usage_error("option '--" + e.name + "' given twice");
    }
    for (const auto& e : impl_->entries) {
        if (e.is_flag) {
            if (e.times > 0) *e.flag_target = true;
            continue;
        }
        for (const auto& v : e.values) e.apply(v);
    }
}

bool command_line::given(const std::string& name) const {
    const auto* e = impl_->find(name);
    if (!e) throw std::logic_error("command_line: option --" + name + " not declared");
    return e->is_flag ? e->times > 0 : !e->values.empty();
}

usage_error command_line::bad_value(const std::string& name, const std::string& what, const std::string& value) {
    return usage_error("--" + name + " expects " + what + ", got '" + value + "'");
}

bool json_requested(std::span<const std::string_view> args) {
    return std::find(args.begin(), args.end(), std::string_view("--json")) != args.end();
}

std::optional<std::uint64_t> parse_unsigned(std::string_view s, std::uint64_t min, std::uint64_t max) {
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || v < min || v > max) return std::nullopt;
    return v;
}

}  // namespace netpool::tools
