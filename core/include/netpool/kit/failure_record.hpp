// Where an adapter keeps the last handshake failure for operators: shared by the copies of
// one adapter (the pool holds one, a client another), thread-safe, redacted on the way in.
#pragma once

#include <netpool/redact.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace netpool::kit {

/// The last failure of any connection of an adapter and its copies: a line of text
/// ("AUTH PLAIN: 535 5.7.8 ...") and, optionally, a structured detail (a parsed reply).
/// record() takes a redactor: what a server says may echo a credential back, and nothing
/// secret may reach the record. Copies share one record. Thread-safe.
template <class Detail = std::monostate>
class failure_record {
public:
    failure_record() : s_(std::make_shared<shared>()) {}

    /// Records "stage: what" with every form of the secrets `redact` knows replaced.
    /// `detail` is stored as given: redact its text fields before.
    /// const: copies share the record, and an adapter's hooks (const) record into it.
    void record(const redactor& redact, std::string_view stage, std::string_view what, Detail detail = {}) const {
        // Some messages already start with their stage ("LOGIN: a2 NO ..."): say it once.
        const std::string prefix = std::string(stage) + ": ";
        std::string text(what);
        if (!stage.empty() && what.substr(0, prefix.size()) != prefix) text = prefix + text;
        text = redact(std::move(text));
        std::lock_guard lk(s_->mu);
        s_->text = std::move(text);
        s_->detail = std::move(detail);
    }
    /// The last text recorded, or "" if nothing failed.
    std::string text() const {
        std::lock_guard lk(s_->mu);
        return s_->text;
    }
    Detail detail() const {
        std::lock_guard lk(s_->mu);
        return s_->detail;
    }

private:
    struct shared {
        mutable std::mutex mu;
        std::string text;
        Detail detail{};
    };
    std::shared_ptr<shared> s_;
};

}  // namespace netpool::kit
