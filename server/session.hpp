#pragma once
// One client connection's session, as in Beast's example/http/server/awaitable: one
// coroutine that reads a request with a timeout before every read, has the request handler
// answer it, and loops while the connection is kept alive. Before the first request it
// tells TLS from plain HTTP on the same port (a ClientHello) and does the handshake. A
// request that cannot be parsed gets a bare 400/413/431 and the connection closes; a
// timeout or a vanished peer just closes it.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>

#include "obs/metrics.hpp"
#include "server/connection.hpp"
#include "server/request_handler.hpp"
#include "server/responder.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

// What every session uses, shared: a session holds it to its end.
struct session_setup {
  std::chrono::seconds header_timeout;  // the first request's header, whole, from the accept
  std::chrono::seconds idle_timeout;    // between requests (then header_timeout again)
  std::shared_ptr<boost::asio::ssl::context> tls;  // --tls-cert/--tls-key; null: plain only
  std::shared_ptr<request_handler> handler;
  std::shared_ptr<responder> respond;  // the bare answer to an unparsable request
  std::shared_ptr<server_metrics> metrics;
  std::shared_ptr<spdlog::logger> log;
};

boost::asio::awaitable<void> run_session(std::shared_ptr<connection> conn,
                                         std::shared_ptr<const session_setup> setup);

}  // namespace fusproxy::server
