#include "firmware/lookup_retrier.hpp"

#include <spdlog/logger.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <variant>

#include "firmware/model/firmware_types.hpp"
#include "obs/metrics.hpp"

namespace fusproxy::server {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

lookup_retrier::lookup_retrier(net::any_io_executor executor, upstream::fus_client& client,
                               upstream::backoff backoff, steady::duration deadline,
                               std::shared_ptr<spdlog::logger> log, upstream_metrics* metrics,
                               metrics::counter& sessions_started)
    : executor_(std::move(executor)),
      client_(client),
      backoff_(backoff),
      deadline_(deadline),
      log_(std::move(log)),
      metrics_(metrics),
      sessions_started_(sessions_started),
      jitter_source_(std::random_device{}()) {}

template <class T>
net::awaitable<upstream::result<T>> lookup_retrier::run(std::string what, std::string rid,
                                                        attempt_fn<T> attempt) {
  using namespace net::experimental::awaitable_operators;
  upstream::retry_schedule schedule(backoff_, deadline_, steady::now());
  std::optional<upstream::failure> last;
  net::steady_timer deadline(executor_, schedule.deadline());
  auto outcome = co_await (attempts<T>(schedule, what, rid, attempt, last) ||
                           deadline.async_wait(net::use_awaitable));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  // The deadline cut an attempt in flight (a retry never starts a wait past it).
  auto f = upstream::make_failure(
      upstream::errc::timeout,
      "no answer within --upstream-deadline (" +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(deadline_).count()) +
          " s)" + (last ? "; the last failure: " + last->message() : std::string()));
  co_return f;
}

template <class T>
net::awaitable<upstream::result<T>> lookup_retrier::attempts(
    upstream::retry_schedule& schedule, const std::string& what, const std::string& rid,
    attempt_fn<T>& attempt, std::optional<upstream::failure>& last) {
  auto session = std::make_unique<upstream::fus_session>(client_, rid);
  bool new_session = true;
  for (;;) {
    std::string_view stage = "resolve";
    auto r = co_await attempt(*session, new_session, stage);
    if (r) co_return r;
    last = r.error();
    const double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(jitter_source_);
    const auto step = schedule.after(r.error(), steady::now(), jitter);
    if (!step.retry) co_return r;
    if (metrics_) metrics_->retry(stage).inc();
    log_->warn("[{}] upstream: {} ({}): {}; retry {} in {} ms{}", rid, what, stage,
               r.error().message(), schedule.retries(), step.delay.count(),
               step.new_session ? " in a new session" : "");
    new_session = step.new_session;
    if (new_session) {
      session = std::make_unique<upstream::fus_session>(client_, rid);
      ++sessions_started_;
    }
    net::steady_timer pause(executor_, step.delay);
    co_await pause.async_wait(net::as_tuple(net::use_awaitable));
  }
}

// The lookups of the resolver (a new one needs its line here).
template net::awaitable<upstream::result<firmware_metadata>> lookup_retrier::run(
    std::string, std::string, attempt_fn<firmware_metadata>);
template net::awaitable<upstream::result<upstream::version_list>> lookup_retrier::run(
    std::string, std::string, attempt_fn<upstream::version_list>);
template net::awaitable<upstream::result<upstream::build_info>> lookup_retrier::run(
    std::string, std::string, attempt_fn<upstream::build_info>);

}  // namespace fusproxy::server
