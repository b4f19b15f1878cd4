#pragma once
// The download caps at the edge (docs/operations.md, "Download slots and the queue"): a
// response that moves a download's bytes holds a slot of the fair download_queue
// (--max-downloads, --max-downloads-per-client) while it streams. Over a cap it waits in the
// queue, parking no thread, up to --queue-timeout; a client that closes its connection
// meanwhile leaves the queue at once, and so does everyone queued when the server stops.
// It also counts the responses streaming per build, for /api/status. Thread-safe.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "http/handler.hpp"
#include "obs/metrics.hpp"
#include "server/connection.hpp"
#include "server/download_queue.hpp"

namespace fusproxy::server {

class download_slots {
 public:
  download_slots(std::uint32_t per_client, std::uint32_t total, std::chrono::seconds queue_timeout,
                 std::shared_ptr<server_metrics> metrics);

  // A slot held by one streaming response of `build`, once take() granted it; giving it up
  // frees the slot (the next queued download may start) and the counts.
  class held_slot {
   public:
    held_slot(download_slots& slots, std::string client, std::string build);
    held_slot(const held_slot&) = delete;
    held_slot& operator=(const held_slot&) = delete;
    ~held_slot();

   private:
    download_slots* slots_;
    std::string client_;
    std::string build_;
  };

  // A slot for `client` at once, or after waiting in the queue (granted); or none (timed out,
  // or cancelled: the client left, or the server stops). Only `granted` is then held.
  // (`client` by value: a coroutine's reference parameter may outlive its argument.)
  boost::asio::awaitable<download_queue::outcome> take(connection& conn, std::string client);
  // The answer to a download that got no slot: 503 shutting_down while the server stops,
  // else 429 with a Retry-After that grows with the queue.
  reply refusal(download_queue::outcome outcome, bool shutting_down);

  // Shutdown: the queued downloads are cancelled, and any that would queue later.
  void close();
  // Download responses streaming now, by build_key(model, region, version).
  std::map<std::string, std::int64_t> streaming_by_build() const;

 private:
  boost::asio::awaitable<download_queue::outcome> wait_in_queue(connection& conn,
                                                                const std::string& client);

  download_queue queue_;
  std::chrono::seconds queue_timeout_;
  std::shared_ptr<server_metrics> metrics_;
  std::atomic<bool> closed_{false};
  mutable std::mutex mutex_;                                // guards the one below
  std::map<std::string, std::int64_t> streaming_by_build_;  // build_key -> responses
};

}  // namespace fusproxy::server
