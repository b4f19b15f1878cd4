#pragma once
// --notify-url: JSON POSTs about mirrored model/regions (docs/operations.md, Notifications).
// The mirror scheduler (firmware/firmware_resolver.cpp) reports a mirror_event; the notifier
// sends it to every URL, each delivery on its own coroutine with retries and back-off, and
// logs and counts what happened. Runs on one executor (the firmware service's thread).
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "firmware/model/mirror_event.hpp"

namespace spdlog {
class logger;
}
namespace fusproxy::metrics {
class registry;
}

namespace fusproxy::server {

struct notify_options {
  std::chrono::milliseconds first_retry{1000};  // doubles per attempt
  std::chrono::milliseconds max_retry{60'000};
  unsigned attempts = 6;                      // in all, the first included
  std::chrono::milliseconds timeout{10'000};  // one POST, connect to answer
};

class notifier {
 public:
  // Throws std::invalid_argument on a URL that is not http(s) (settings checked it already).
  notifier(boost::asio::any_io_executor executor, const std::vector<std::string>& urls,
           std::shared_ptr<spdlog::logger> log, metrics::registry& registry,
           notify_options options = {});
  ~notifier();  // stops: deliveries waiting for a retry are dropped
  notifier(const notifier&) = delete;
  notifier& operator=(const notifier&) = delete;

  // On the executor's thread, when the process stops: deliveries in flight or waiting for a
  // retry are cancelled (they end at once) and no new delivery starts.
  void stop();
  // On the executor's thread. Logs the event, counts it, and POSTs it to every URL.
  void publish(const mirror_event& event);
  // The JSON body of an event (what every URL receives; `id` is the event's, the same in
  // every retry and every URL).
  static std::string body(const mirror_event& event, const std::string& id);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace fusproxy::server
