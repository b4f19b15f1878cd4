#pragma once
// The server's lifecycle: which connections are open and how many requests are in flight,
// and the graceful stop (server.hpp, docs/operations.md): shutdown stops accepting, lets the
// requests in flight finish for up to --shutdown-grace seconds (new requests get 503
// shutting_down), then closes every connection and runs the `stopped` callbacks once the
// last one is gone. Signals: SIGTERM/SIGINT start it, a second one closes at once, SIGHUP
// reopens the log file.
//
// Its timers and signals run on the server's control strand (shared with the acceptor).
// Thread-safe: connections open, close and count requests on their own strands.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "obs/metrics.hpp"
#include "server/connection.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

using control_strand = boost::asio::strand<boost::asio::io_context::executor_type>;

class lifecycle : public std::enable_shared_from_this<lifecycle> {
 public:
  lifecycle(boost::asio::io_context& ioc, control_strand strand, std::chrono::seconds grace,
            std::shared_ptr<spdlog::logger> log, std::shared_ptr<server_metrics> metrics);

  // What stops taking new work when shutdown begins (the acceptor, the download queue): the
  // owner's business. Set once, before start; runs on the strand.
  void when_shutdown_begins(std::function<void()> stop_new_work);

  bool shutting_down() const { return shutting_down_; }

  // A connection was accepted (on the strand): it gets its id and is closed by finish().
  void opened(const std::shared_ptr<connection>& conn);
  // Its session ended (any thread); may complete the stop.
  void closed(std::uint64_t id);

  // Counts one request in flight for as long as it lives; its end may complete the stop.
  class request_scope {
   public:
    explicit request_scope(lifecycle& life);
    ~request_scope();
    request_scope(const request_scope&) = delete;
    request_scope& operator=(const request_scope&) = delete;

   private:
    lifecycle& life_;
  };

  // Graceful stop, from any thread; `stopped` (optional) runs on the io_context once the
  // last connection is gone (or a moment past the grace: a request waiting on upstream does
  // not notice its socket close).
  void shutdown(std::function<void()> stopped);
  void handle_signals(std::function<void()> stopped);

 private:
  void add_stopped_callback(std::function<void()> f);
  void maybe_finish();
  void finish();  // on the strand: close everything that is left
  void wait_signal(std::function<void()> stopped);

  boost::asio::io_context& ioc_;
  control_strand strand_;
  std::chrono::seconds grace_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<server_metrics> metrics_;
  std::function<void()> stop_new_work_;
  boost::asio::steady_timer grace_timer_;           // on the strand
  std::optional<boost::asio::signal_set> signals_;  // on the strand
  std::uint64_t next_connection_ = 1;               // on the strand

  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> finished_{false};
  mutable std::mutex mutex_;  // guards the two below
  std::unordered_map<std::uint64_t, std::weak_ptr<connection>> connections_;
  std::vector<std::function<void()>> on_stopped_;
};

}  // namespace fusproxy::server
