#pragma once
// One client connection as every part of the edge sees it: the TCP stream, the TLS stream
// over it when the client opened with a ClientHello (same port as plain HTTP), the peer's
// address and the server's id for it; and the request type read from it.
//
// The session owns it (shared: the lifecycle's registry keeps a weak reference to close it
// at shutdown, a client_watch a strong one while it waits for the socket).
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace fusproxy::server {

// A request as read from a client (no route takes a large body: server.hpp's limits).
using client_request = boost::beast::http::request<boost::beast::http::string_body>;

struct connection : std::enable_shared_from_this<connection> {
  using tls_stream = boost::asio::ssl::stream<boost::beast::tcp_stream&>;

  explicit connection(boost::asio::ip::tcp::socket s) : stream(std::move(s)) {
    boost::beast::error_code ec;
    const auto ep = stream.socket().remote_endpoint(ec);
    client_ip = ec ? "unknown" : ep.address().to_string();
  }

  boost::beast::tcp_stream stream;  // the TCP layer, whether or not TLS runs over it
  std::unique_ptr<tls_stream> tls;  // set once the session did the TLS handshake
  std::string client_ip;
  std::uint64_t id = 0;  // the lifecycle's registry key

  // Runs `op(stream)` on the stream the client speaks HTTP on (TLS or plain TCP); both
  // branches return the same awaitable type.
  template <class Op>
  auto with_stream(Op&& op) {
    if (tls) return op(*tls);
    return op(stream);
  }

  // Ends the connection now, both ways: a response that cannot be completed honestly (its
  // header is gone) is cut, so the client sees an incomplete answer, never a wrong one.
  void cut() {
    boost::beast::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    stream.close();
  }

  // Closes from any thread, on the connection's own strand (shutdown past the grace).
  void close_soon() {
    boost::asio::post(stream.get_executor(), [self = shared_from_this()] { self->cut(); });
  }
};

}  // namespace fusproxy::server
