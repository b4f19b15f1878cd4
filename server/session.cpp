#include "server/session.hpp"

#include <spdlog/logger.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <optional>

#include "http/handler.hpp"
#include "server/server.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Same port for HTTP and HTTPS: a TLS record starts with 0x16 (handshake), which no HTTP
// method does. Plain clients keep the peeked bytes in `buffer`. The handshake runs under the
// header timeout already set.
net::awaitable<bool> start_tls(connection& conn, beast::flat_buffer& buffer,
                               const session_setup& setup) {
  auto [ec, is_tls] = co_await beast::async_detect_ssl(conn.stream, buffer, use_tuple);
  if (ec) {
    if (ec == beast::error::timeout) ++setup.metrics->header_timeouts;
    co_return false;
  }
  if (!is_tls) co_return true;
  conn.tls = std::make_unique<connection::tls_stream>(conn.stream, *setup.tls);
  auto [hec, used] =
      co_await conn.tls->async_handshake(net::ssl::stream_base::server, buffer.data(), use_tuple);
  if (hec) {
    ++setup.metrics->tls_handshake_failures;
    setup.log->debug("{}: TLS handshake failed: {}", conn.client_ip, hec.message());
    co_return false;
  }
  buffer.consume(used);
  ++setup.metrics->tls_connections;
  co_return true;
}

// What to answer a request that could not be read: only what can be told apart.
std::optional<reply> answer_to_unreadable(const beast::error_code& ec) {
  if (ec == bhttp::error::header_limit)
    return error_reply(api_error::header_too_large, "request header too large");
  if (ec == bhttp::error::body_limit)
    return error_reply(api_error::payload_too_large, "request body too large");
  if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
    return error_reply(api_error::bad_request, "malformed HTTP request");
  return std::nullopt;  // a vanished peer
}

}  // namespace

net::awaitable<void> run_session(std::shared_ptr<connection> conn,
                                 std::shared_ptr<const session_setup> setup) {
  auto& stream = conn->stream;
  beast::flat_buffer buffer;
  bool first = true;
  // The first request's header must arrive whole within --header-timeout of the connection;
  // later ones may idle for --idle-timeout, then get --header-timeout from their first byte:
  // a slow-header client is cut without affecting anyone else.
  stream.expires_after(setup->header_timeout);
  if (setup->tls) {
    // Not inside && or ?: (GCC 12 mishandles co_await in conditional expressions).
    const bool ok = co_await start_tls(*conn, buffer, *setup);
    if (!ok) co_return;
  }
  for (;;) {
    if (!first && buffer.size() == 0) {
      stream.expires_after(setup->idle_timeout);
      const auto space = buffer.prepare(4096);
      auto [ec, n] =
          co_await conn->with_stream([&](auto& s) { return s.async_read_some(space, use_tuple); });
      if (ec) co_return;  // idle timeout, close by peer or by shutdown
      buffer.commit(n);
      stream.expires_after(setup->header_timeout);
    } else if (!first) {
      stream.expires_after(setup->header_timeout);
    }
    first = false;

    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(max_header_bytes);
    parser.body_limit(max_body_bytes);
    auto [ec, n] = co_await conn->with_stream(
        [&](auto& s) { return bhttp::async_read(s, buffer, parser, use_tuple); });
    if (ec) {
      if (ec == beast::error::timeout) {
        ++setup->metrics->header_timeouts;
        setup->log->debug("{}: request header timeout", conn->client_ip);
        co_return;
      }
      if (auto answer = answer_to_unreadable(ec))
        co_await setup->respond->send_bare(*conn, std::move(*answer));
      co_return;
    }
    auto req = parser.release();
    const bool keep = co_await setup->handler->handle(*conn, req);
    if (!keep) {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

}  // namespace fusproxy::server
