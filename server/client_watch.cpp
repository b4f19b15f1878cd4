#include "server/client_watch.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <cerrno>

#include <chrono>

namespace fusproxy::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

peer_state peek_peer(int fd) {
  char byte;
  const auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return peer_state::gone;  // FIN
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? peer_state::quiet
                                                                     : peer_state::gone;
  // Bytes wait (a pipelined request, a TLS close_notify): the FIN may be behind them.
  pollfd p{fd, POLLRDHUP, 0};
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
    return peer_state::gone;
  return peer_state::has_data;
}

client_watch::client_watch(std::shared_ptr<connection> conn)
    : conn_(std::move(conn)), recheck_(conn_->stream.get_executor()) {}

void client_watch::end() {
  over_ = true;
  recheck_.cancel();
  if (waiting_ && conn_->stream.socket().is_open()) {
    boost::system::error_code ec;
    conn_->stream.socket().cancel(ec);
  }
}

void client_watch::wait_readable() {
  waiting_ = true;
  conn_->stream.socket().async_wait(
      tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
        self->waiting_ = false;
        if (self->over_) return;
        if (!ec) {
          switch (peek_peer(self->conn_->stream.socket().native_handle())) {
            case peer_state::quiet:
              self->wait_readable();
              return;
            case peer_state::has_data:
              self->recheck_later();
              return;
            case peer_state::gone:
              break;
          }
        }
        self->gone_.emit(net::cancellation_type::terminal);  // closed, reset, or shut down
      });
}

void client_watch::recheck_later() {
  recheck_.expires_after(250ms);
  recheck_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->over_) return;
    if (!self->conn_->stream.socket().is_open() ||
        peek_peer(self->conn_->stream.socket().native_handle()) == peer_state::gone) {
      self->gone_.emit(net::cancellation_type::terminal);
      return;
    }
    self->recheck_later();
  });
}

}  // namespace fusproxy::server
