// `netpool imap-fetch`: the newest messages of a mailbox, through netpool's IMAP client
// (imap::client::fetch_latest over a pooled, logged-in session: connect, TLS, greeting,
// CAPABILITY, LOGIN or AUTHENTICATE PLAIN, EXAMINE/SELECT, UID SEARCH, UID FETCH).
//
// Secrets: the password comes from a file or an environment variable, never from the
// command line, and every line printed passes through a redactor (imap_common.hpp) that
// replaces the password in every form the client could have sent; --redact also hides the
// user name and the host.
#include "commands.hpp"
#include "imap_common.hpp"

#include <netpool/tools/report.hpp>
#include <netpool/tools/terminal.hpp>

#include <netpool/config.hpp>
#include <netpool/netpool.hpp>
#include <netpool/imap/client.hpp>
#include <netpool/imap/error.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace netpool::cli {

namespace {

namespace ic = imap_common;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view usage_head =
    "usage: netpool imap-fetch --user USER (--password-file FILE | --password-env VAR) [options]\n\n"
    "Logs in to an IMAP server and prints the newest messages of a mailbox, newest first:\n"
    "UID, date, size, sender and subject (with --headers, each message's header too).\n\n";
constexpr std::string_view usage_tail =
    "  --top N                  how many of the newest messages (default 10)\n"
    "output:\n"
    "  --headers                print each message's whole header under its line\n"
    "  --json                   one JSON object instead of text (and on any failure,\n"
    "                           {\"error\": {\"where\", \"what\", \"hint\"}})\n"
    "  --redact                 show neither the user name nor the host ([user], [host])\n\n"
    "Exit status: 0 fetched, 1 the server could not be used (the cause is printed), 2 a\n"
    "mistake in the options.\n";

/// Printable on a terminal: control characters (ESC included) become '?', and the text is
/// cut to `width` bytes at a UTF-8 character boundary ("..." marks the cut).
std::string printable(std::string_view s, std::size_t width) {
    std::string out;
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        out += (u < 0x20 || u == 0x7f) ? (ch == '\t' ? ' ' : '?') : ch;
    }
    if (width > 3 && out.size() > width) {
        std::size_t cut = width - 3;
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
        out = out.substr(0, cut) + "...";
    }
    return out;
}

/// Columns padded by characters, not bytes (UTF-8 continuation bytes take no column).
std::string pad(const std::string& s, std::size_t width) {
    std::size_t cols = 0;
    for (char ch : s)
        if ((static_cast<unsigned char>(ch) & 0xC0) != 0x80) ++cols;
    return cols >= width ? s : s + std::string(width - cols, ' ');
}

}  // namespace

int imap_fetch_main(std::span<const std::string_view> args) {
    tools::command_report report("imap-fetch", tools::json_requested(args));
    ic::server_config cfg;
    cfg.top = 10;
    option_values v;
    bool headers = false, help = false;
    tools::command_line cl;
    ic::declare_server_options(cl, v, cfg);
    cl.flag("headers", headers);
    cl.flag("help", help);
    try {
        cl.parse(args);
        if (help) {
            ic::print_usage(usage_head, usage_tail);
            return tools::exit_ok;
        }
        ic::read_server_options(cl, v, cfg);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }
    const ic::redactor redact(cfg);
    report.set_scrub([&redact](std::string s) { return redact(std::move(s)); });
    const std::string server = ic::shown_server(cfg);
    report.set_context("server", server);

    imap::account acct;
    acct.server = cfg.ep;
    acct.client.cred.user = cfg.user;
    acct.client.cred.secret = cfg.password;
    acct.client.allow_plaintext_login = cfg.allow_plaintext_login;
    acct.client.command_timeout = cfg.timeout;
    acct.pool.size = 1;
    acct.pool.max_overflow = 0;
    acct.pool.lazy = true;
    acct.pool.checkout_timeout = cfg.timeout;
    acct.pool.connect_timeout = cfg.timeout;
    acct.pool.handshake_timeout = cfg.timeout;
    // One fetch: a session that fails twice (connect, TLS) makes the pool endpoint down at
    // once, and the fetch fails with the cause instead of waiting out the checkout. A refused
    // login does so at the first (and is never repeated: condition::credentials_rejected).
    acct.pool.max_restarts = 1;
    try {
        acct.client.validate();
        acct.pool.validate();
    } catch (const config_error& e) {
        return report.usage(std::string("invalid setting: ") + e.what());
    }

    asio::io_context ioc;
    std::optional<registry> reg;
    reg.emplace(ioc.get_executor());
    std::optional<imap::client> client;  // destroyed before the registry it uses
    client.emplace(*reg);
    imap::fetch_result res;
    bool done = false;
    const auto t0 = clock_type::now();
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            try {
                // Only what is shown crosses the network: the header when it is printed.
                res = co_await client->fetch_latest(acct, cfg.mailbox, cfg.top,
                                                    headers ? imap::fetch_parts::header : imap::fetch_parts::summary);
            } catch (const std::exception& e) {
                res.ec = make_error_code(errc::adapter_exception);
                res.detail = e.what();
            }
            done = true;
            ioc.stop();  // the pool's workers would keep it running
        },
        asio::detached);
    ioc.run();
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
    // Log out politely: destroying the registry closes the pool (LOGOUT), which needs the
    // io_context for a moment.
    client.reset();
    reg.reset();
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(500));

    if (!done || res.ec) {
        const std::string what = "cannot fetch from " + server + ": " + describe_failure(res.stage, res.ec, res.detail);
        return report.failure(res.stage.empty() ? "fetch" : res.stage, what, hint_for(ic::hints(cfg), res.ec, res.detail));
    }

    const auto& mb = res.mailbox;
    if (cfg.json) {
        tools::json doc;
        doc["server"] = server;
        doc["user"] = ic::shown_user(cfg);
        doc["tls"] = cfg.ep.tls != tls_mode::none;
        doc["mailbox"] = {{"name", mb.name.empty() ? cfg.mailbox : mb.name},
                          {"exists", mb.exists},
                          {"uidvalidity", mb.uidvalidity},
                          {"uidnext", mb.uidnext},
                          {"read_only", mb.read_only}};
        doc["top"] = cfg.top;
        doc["elapsed_ms"] = tools::rounded(ms, 3);
        doc["messages"] = tools::json::array();
        for (const auto& m : res.messages) {
            tools::json j = {{"uid", m.uid},   {"date", m.envelope_date}, {"from", m.envelope_from},
                             {"subject", m.envelope_subject}, {"size", m.size}, {"flags", m.flags}};
            if (headers) j["header"] = m.header;
            doc["messages"].push_back(std::move(j));
        }
        report.result(doc);
        return tools::exit_ok;
    }
    std::ostringstream t;
    {
        t << "server " << server << ": logged in as " << ic::shown_user(cfg)
          << (cfg.ep.tls == tls_mode::none ? "; no TLS" : "; TLS verified") << "\n";
        t << printable(mb.name.empty() ? cfg.mailbox : mb.name, 80) << ": " << mb.exists << " message"
          << (mb.exists == 1 ? "" : "s") << " (UIDVALIDITY " << mb.uidvalidity << ", UIDNEXT " << mb.uidnext << ")";
        if (res.messages.empty()) {
            t << "; nothing to show\n";
        } else {
            t << "; the newest " << res.messages.size() << ", newest first:\n";
            t << pad("UID", 8) << pad("DATE", 33) << pad("SIZE", 10) << pad("FROM", 32) << "SUBJECT\n";
            for (const auto& m : res.messages) {
                t << pad(std::to_string(m.uid), 8) << pad(printable(m.envelope_date, 31), 33)
                  << pad(std::to_string(m.size), 10) << pad(printable(m.envelope_from, 30), 32)
                  << printable(m.envelope_subject, 70);
                std::string flags;
                for (const auto& f : m.flags) flags += (flags.empty() ? "" : " ") + f;
                if (!flags.empty()) t << "  [" << printable(flags, 40) << "]";
                t << "\n";
                if (headers) {
                    std::istringstream lines(m.header);
                    for (std::string line; std::getline(lines, line);) {
                        if (!line.empty() && line.back() == '\r') line.pop_back();
                        if (line.empty()) continue;
                        t << "    " << printable(line, 200) << "\n";
                    }
                }
            }
        }
        char buf[64];
        std::snprintf(buf, sizeof buf, "fetched in %.1f ms\n", ms);
        t << buf;
    }
    std::cout << redact(t.str());
    return tools::exit_ok;
}

}  // namespace netpool::cli
