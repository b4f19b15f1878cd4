#pragma once
// The listener: binds --listen, writes --port-file, loads the TLS context (--tls-cert and
// --tls-key: HTTPS on the same port) and runs the accept loop, which starts one session per
// connection (server/session.hpp) unless the server stops or is at --max-connections.
//
// The accept loop is owned by the listener (its frame holds it) and joined by the HTTP
// io_context, which runs until the loop has returned (stop_accepting() closes the
// acceptor); an exception ending it is logged, never dropped. Each session holds the
// listener to its end.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>

#include "config/settings.hpp"
#include "obs/metrics.hpp"
#include "server/lifecycle.hpp"
#include "server/session.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

class listener : public std::enable_shared_from_this<listener> {
 public:
  // `setup` is what every session gets; its TLS context is loaded by start().
  listener(boost::asio::io_context& ioc, control_strand strand,
           std::shared_ptr<const config::settings> settings, std::shared_ptr<lifecycle> life,
           session_setup setup);

  // Binds and listens, writes --port-file, starts accepting; the bound port. Throws
  // startup_error (server.hpp).
  std::uint16_t start();
  std::uint16_t port() const { return bound_port_; }
  // On the control strand (or once the io_context stopped running): no new connections.
  void stop_accepting();

 private:
  std::shared_ptr<boost::asio::ssl::context> load_tls() const;
  void write_port_file() const;
  static boost::asio::awaitable<void> accept_loop(std::shared_ptr<listener> self);

  boost::asio::io_context& ioc_;
  control_strand strand_;
  std::shared_ptr<const config::settings> cfg_;
  std::shared_ptr<lifecycle> life_;
  std::shared_ptr<session_setup> setup_;     // its TLS context set by start(), before any session
  boost::asio::ip::tcp::acceptor acceptor_;  // on the strand
  std::uint16_t bound_port_ = 0;
};

}  // namespace fusproxy::server
