#include "server/download_slots.hpp"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "server/client_watch.hpp"

namespace fusproxy::server {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

download_slots::download_slots(std::uint32_t per_client, std::uint32_t total,
                               std::chrono::seconds queue_timeout,
                               std::shared_ptr<server_metrics> metrics)
    : queue_(per_client, total), queue_timeout_(queue_timeout), metrics_(std::move(metrics)) {}

download_slots::held_slot::held_slot(download_slots& slots, std::string client, std::string build)
    : slots_(&slots), client_(std::move(client)), build_(std::move(build)) {
  ++slots_->metrics_->downloads_active;
  std::lock_guard lock(slots_->mutex_);
  ++slots_->streaming_by_build_[build_];
}

download_slots::held_slot::~held_slot() {
  slots_->queue_.release(client_);
  --slots_->metrics_->downloads_active;
  std::lock_guard lock(slots_->mutex_);
  if (--slots_->streaming_by_build_[build_] <= 0) slots_->streaming_by_build_.erase(build_);
}

net::awaitable<download_queue::outcome> download_slots::take(connection& conn, std::string client) {
  if (queue_.try_acquire(client)) co_return download_queue::outcome::granted;
  co_return co_await wait_in_queue(conn, client);
}

// A wait for the socket to become readable peeks at it: the peer gone cancels the wait; data
// (a pipelined request) means the client is alive and keeps its place.
net::awaitable<download_queue::outcome> download_slots::wait_in_queue(connection& conn,
                                                                      const std::string& client) {
  if (queue_timeout_.count() == 0) co_return download_queue::outcome::timed_out;
  const auto executor = co_await net::this_coro::executor;
  auto waiter = queue_.enqueue(client, executor);
  ++metrics_->downloads_queued;
  ++metrics_->downloads_queued_total;
  const auto begun = steady::now();
  auto& sock = conn.stream.socket();
  sock.async_wait(tcp::socket::wait_read, [this, waiter, &sock](boost::system::error_code ec) {
    if (ec == net::error::operation_aborted) return;
    if (ec || peek_peer(sock.native_handle()) == peer_state::gone) queue_.cancel(waiter);
  });
  if (closed_) queue_.cancel(waiter);  // the server began to stop while this one queued
  const auto result = co_await queue_.wait(waiter, queue_timeout_);
  boost::system::error_code ignored;
  sock.cancel(ignored);  // the readability wait, if still pending
  --metrics_->downloads_queued;
  metrics_->queue_wait.observe(std::chrono::duration<double>(steady::now() - begun).count());
  co_return result;
}

reply download_slots::refusal(download_queue::outcome outcome, bool shutting_down) {
  reply r;
  if (outcome == download_queue::outcome::cancelled && shutting_down) {
    r = error_reply(api_error::shutting_down, "the service is shutting down");
    r.close = true;
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  ++metrics_->download_refused;
  const auto queued = queue_.queued();
  r = error_reply(api_error::rate_limited, "no download slot became free within --queue-timeout (" +
                                               std::to_string(queue_timeout_.count()) + " s); " +
                                               std::to_string(queued) + " download(s) waiting");
  // How long a slot takes to turn over is unknown: a short, fixed hint that grows with the
  // queue.
  const auto retry_after = std::min<std::uint32_t>(60, 5 + static_cast<std::uint32_t>(queued));
  r.headers.emplace_back("Retry-After", std::to_string(retry_after));
  return r;
}

void download_slots::close() {
  closed_ = true;
  queue_.cancel_all();
}

std::map<std::string, std::int64_t> download_slots::streaming_by_build() const {
  std::lock_guard lock(mutex_);
  return streaming_by_build_;
}

}  // namespace fusproxy::server
