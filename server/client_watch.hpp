#pragma once
// Cancellation when a client leaves while the service works for it (a lookup, a body
// waiting for bytes): `unless_client_leaves(conn, call)` awaits a firmware_service call
// with a cancellation slot that a `client_watch` emits into once the peer is gone (FIN,
// reset) or the server closed the connection (shutdown past the grace). service_thread
// carries the cancellation to the service's thread (docs/architecture.md, "Cancellation
// crosses the hop").
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <utility>

#include "server/connection.hpp"

namespace fusproxy::server {

// Whether the peer is still there, asked of a socket that turned readable: a FIN or an
// error (gone), nothing after all (quiet), or bytes waiting (has_data: a pipelined request,
// a TLS close_notify; a FIN behind them counts as gone). Never blocks, consumes nothing.
enum class peer_state { gone, quiet, has_data };
peer_state peek_peer(int fd);

// Watches a connection while the service works on one of its requests and emits a terminal
// cancellation on slot() when the client goes, on the connection's executor (where the call
// is awaited). A socket with bytes waiting cannot signal a FIN by readability: it is polled
// every 250 ms instead.
class client_watch : public std::enable_shared_from_this<client_watch> {
 public:
  explicit client_watch(std::shared_ptr<connection> conn);

  boost::asio::cancellation_slot slot() { return gone_.slot(); }
  void start() { wait_readable(); }
  // The call is over: no more emissions; the pending wait (if any) is cancelled. Only the
  // watch waits on the socket then (the call and its writes are done).
  void end();

 private:
  void wait_readable();
  void recheck_later();

  std::shared_ptr<connection> conn_;
  boost::asio::steady_timer recheck_;
  boost::asio::cancellation_signal gone_;
  bool waiting_ = false;
  bool over_ = false;
};

// Awaits `call` (a call into the firmware service), cancelled when the client goes away. It
// runs as a coroutine of its own on the connection's executor, so that the cancellation
// reaches the call and not the session, which then answers or closes.
template <class T>
boost::asio::awaitable<T> unless_client_leaves(connection& conn, boost::asio::awaitable<T> call) {
  namespace net = boost::asio;
  auto watch = std::make_shared<client_watch>(conn.shared_from_this());
  watch->start();
  struct end_watch {
    client_watch& w;
    ~end_watch() { w.end(); }
  } ender{*watch};
  const auto here = co_await net::this_coro::executor;
  co_return co_await net::co_spawn(here, std::move(call),
                                   net::bind_cancellation_slot(watch->slot(), net::use_awaitable));
}

}  // namespace fusproxy::server
