#include "server/listener.hpp"

#include <spdlog/logger.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "server/server.hpp"

namespace fusproxy::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

listener::listener(net::io_context& ioc, control_strand strand,
                   std::shared_ptr<const config::settings> settings,
                   std::shared_ptr<lifecycle> life, session_setup setup)
    : ioc_(ioc),
      strand_(std::move(strand)),
      cfg_(std::move(settings)),
      life_(std::move(life)),
      setup_(std::make_shared<session_setup>(std::move(setup))),
      acceptor_(strand_) {}

std::uint16_t listener::start() {
  // sendfile(2) cannot take MSG_NOSIGNAL: a client that hangs up must give EPIPE, not kill
  // the process.
  ::signal(SIGPIPE, SIG_IGN);
  boost::system::error_code ec;
  const auto address = net::ip::make_address(cfg_->listen.host, ec);
  if (ec) throw startup_error("--listen: bad address '" + cfg_->listen.host + "'");
  const tcp::endpoint endpoint(address, cfg_->listen.port);
  const auto where = cfg_->listen.host + ":" + std::to_string(cfg_->listen.port);
  if (!cfg_->tls_cert.empty() || !cfg_->tls_key.empty()) setup_->tls = load_tls();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw startup_error("cannot listen on " + where + ": " + ec.message());
  bound_port_ = acceptor_.local_endpoint().port();
  write_port_file();
  // Not detached: an exception ending the loop would leave a server that no longer accepts
  // without a word.
  net::co_spawn(strand_, accept_loop(shared_from_this()),
                [log = setup_->log](std::exception_ptr e) {
                  if (!e) return;
                  try {
                    std::rethrow_exception(e);
                  } catch (const std::exception& x) {
                    log->critical("the accept loop failed, no new connections: {}", x.what());
                  } catch (...) {
                    log->critical("the accept loop failed, no new connections");
                  }
                });
  setup_->log->info("listening on {}:{}", cfg_->listen.host, bound_port_);
  return bound_port_;
}

void listener::stop_accepting() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

std::shared_ptr<net::ssl::context> listener::load_tls() const {
  if (cfg_->tls_cert.empty() || cfg_->tls_key.empty())
    throw startup_error("--tls-cert and --tls-key go together");
  auto tls = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  boost::system::error_code ec;
  tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                       net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                       net::ssl::context::no_tlsv1_1,
                   ec);
  tls->use_certificate_chain_file(cfg_->tls_cert, ec);
  if (ec) throw startup_error("--tls-cert: cannot load '" + cfg_->tls_cert + "': " + ec.message());
  tls->use_private_key_file(cfg_->tls_key, net::ssl::context::pem, ec);
  if (ec) throw startup_error("--tls-key: cannot load '" + cfg_->tls_key + "': " + ec.message());
  return tls;
}

// Written whole then renamed, so a watcher never reads a partial number.
void listener::write_port_file() const {
  if (cfg_->port_file.empty()) return;
  const auto tmp = cfg_->port_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << bound_port_ << '\n';
    if (!out.flush()) throw startup_error("--port-file: cannot write '" + cfg_->port_file + "'");
  }
  std::error_code fec;
  std::filesystem::rename(tmp, cfg_->port_file, fec);
  if (fec) throw startup_error("--port-file: cannot write '" + cfg_->port_file + "'");
}

net::awaitable<void> listener::accept_loop(std::shared_ptr<listener> self) {
  auto& acc = self->acceptor_;
  const auto& log = self->setup_->log;
  auto& metrics = *self->setup_->metrics;
  while (acc.is_open()) {
    auto [ec, socket] = co_await acc.async_accept(net::make_strand(self->ioc_), use_tuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !acc.is_open()) co_return;
      // Out of descriptors and the like: log, breathe, go on.
      log->warn("accept failed: {}", ec.message());
      net::steady_timer pause(self->strand_, 100ms);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (self->life_->shutting_down()) continue;  // the socket closes as it goes out of scope
    if (metrics.connections_active.load() >= self->cfg_->max_connections) {
      ++metrics.connections_refused;
      continue;
    }
    // Nagle off: the tail of a response must not wait for the client's delayed ACK (a
    // keep-alive client asking for the next file stalled up to 40 ms per response: wrk -c1 on
    // a cached 24 MiB build went from 1.1 to 2.4 GB/s).
    boost::system::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    auto conn = std::make_shared<connection>(std::move(socket));
    self->life_->opened(conn);
    net::co_spawn(conn->stream.get_executor(), run_session(conn, self->setup_),
                  [self, conn](std::exception_ptr e) {
                    if (e) {
                      try {
                        std::rethrow_exception(e);
                      } catch (const std::exception& ex) {
                        self->setup_->log->error("connection {} failed: {}", conn->client_ip,
                                                 ex.what());
                      }
                    }
                    self->life_->closed(conn->id);
                  });
  }
}

}  // namespace fusproxy::server
