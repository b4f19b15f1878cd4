#pragma once
// lookup_retrier: runs one upstream lookup's attempts until one succeeds, a failure is for
// good, or the next retry would not start before --upstream-deadline (docs/resolver.md,
// "Retries"). Which failures are retried, in which session and after how long is the
// pure policy upstream::retry_schedule (protocol/upstream_retry.hpp); this is its thin
// coroutine driver: it runs attempts, sleeps, swaps sessions, and cuts the whole lookup,
// attempts included, at the deadline.
//
// Threading: the resolver's thread (its jitter source and counters have no locks).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "upstream/core/upstream_retry.hpp"
#include "upstream/fus_client.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::metrics {
class counter;
}

namespace fusproxy::server {

struct upstream_metrics;

class lookup_retrier {
 public:
  // One attempt of a lookup in `session`; `new_session` says the session is fresh (forget
  // what an earlier session did); `stage` names the step that failed (logs, metrics).
  template <class T>
  using attempt_fn = std::function<boost::asio::awaitable<upstream::result<T>>(
      upstream::fus_session& session, bool new_session, std::string_view& stage)>;

  // `sessions_started` counts the new sessions a retry opens (the first session of a
  // lookup is the caller's to count); `metrics` (optional) counts retries by stage.
  lookup_retrier(boost::asio::any_io_executor executor, upstream::fus_client& client,
                 upstream::backoff backoff, std::chrono::steady_clock::duration deadline,
                 std::shared_ptr<spdlog::logger> log, upstream_metrics* metrics,
                 metrics::counter& sessions_started);

  // The lookup's answer, or its last failure; upstream::errc::timeout naming the last
  // failure when the deadline cut an attempt. `what` and `rid` (the request id of the
  // lookup's first request) name it in log lines. Defined for the T the resolver looks up
  // (lookup_retrier.cpp instantiates them: firmware_metadata, upstream::version_list,
  // upstream::build_info).
  template <class T>
  boost::asio::awaitable<upstream::result<T>> run(std::string what, std::string rid,
                                                  attempt_fn<T> attempt);

 private:
  template <class T>
  boost::asio::awaitable<upstream::result<T>> attempts(upstream::retry_schedule& schedule,
                                                       const std::string& what,
                                                       const std::string& rid,
                                                       attempt_fn<T>& attempt,
                                                       std::optional<upstream::failure>& last);

  boost::asio::any_io_executor executor_;
  upstream::fus_client& client_;
  upstream::backoff backoff_;
  std::chrono::steady_clock::duration deadline_;
  std::shared_ptr<spdlog::logger> log_;
  upstream_metrics* metrics_;
  metrics::counter& sessions_started_;
  std::minstd_rand jitter_source_;
};

}  // namespace fusproxy::server
