// The adapter kit's non-template parts (netpool/kit/*.hpp).
#include <netpool/kit/io.hpp>
#include <netpool/kit/session.hpp>

#include <netpool/config.hpp>
#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/transport.hpp>

#include <asio/error.hpp>

#include <cerrno>

#include <sys/socket.h>
#if NETPOOL_HAS_TLS
#include <asio/ssl/error.hpp>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#endif

namespace netpool::kit {

std::error_code map_io_error(const std::error_code& ec) noexcept {
    if (ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
        return errc::connection_closed;
#if NETPOOL_HAS_TLS
    if (ec == asio::ssl::error::stream_truncated) return errc::connection_closed;
#endif
    return ec;
}

line_parser::status line_parser::feed(std::string_view in, std::size_t& used) {
    const auto lf = in.find('\n');
    const std::size_t take = lf == std::string_view::npos ? in.size() : lf;
    // A CR that will go with the LF may take one byte over the limit until the LF comes.
    if (line_.size() + take > max_ + 1) {
        error_ = errc::frame_too_large;
        used = 0;
        return status::error;
    }
    line_.append(in.substr(0, take));
    if (lf == std::string_view::npos) {
        used = in.size();
        return status::need_more;
    }
    used = lf + 1;
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.size() > max_) {
        error_ = errc::frame_too_large;
        return status::error;
    }
    done_ = std::move(line_);
    line_.clear();
    return status::complete;
}

bool session::bytes_waiting(connection& c) const {
    if (!in_.empty()) return true;
    std::error_code ec;
    if (c.io().socket().available(ec) > 0 || ec) return true;
#if NETPOOL_HAS_TLS
    if (c.io().is_tls()) {
        // Asio's TLS stream reads whole segments into a BIO pair and OpenSSL returns one
        // record per read: a second record that came in the same segment waits in that BIO,
        // not in the socket.
        SSL* ssl = c.io().tls().native_handle();
        if (SSL_has_pending(ssl) == 1) return true;
        if (BIO* in = SSL_get_rbio(ssl); in != nullptr && BIO_ctrl_pending(in) > 0) return true;
    }
#endif
    return false;
}

asio::awaitable<std::error_code> session::start_tls(connection& c, std::chrono::milliseconds timeout,
                                                   std::error_code on_injection) {
    if (bytes_waiting(c)) {
        in_.clear();
        broken_ = true;
        co_return on_injection;
    }
    tls_fresh_reads_ = tls_fresh_reads;
    co_return note(co_await netpool::start_tls(c, timeout));
}

bool session::peer_closed(connection& c) const {
    if (broken_ || !in_.empty()) return true;
    char byte = 0;
    const auto n = ::recv(c.io().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;  // the server's end of file
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    return !c.io().is_tls();
}

bool credentials_in_clear_refused(const connection& c, bool sends_credentials, bool allow_plaintext) {
#if !NETPOOL_HAS_TLS
    if (c.remote().tls == tls_mode::starttls)
        throw config_error("endpoint.tls", std::string("is 'starttls', but ") + NETPOOL_NO_TLS_REASON);
#endif
    return sends_credentials && c.remote().tls == tls_mode::none && !allow_plaintext;
}

}  // namespace netpool::kit
