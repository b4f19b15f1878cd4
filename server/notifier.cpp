#include "server/notifier.hpp"

#include <spdlog/logger.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <random>
#include <stdexcept>

#include "http/json_views.hpp"
#include "http/routes.hpp"
#include "net/task_group.hpp"
#include "obs/metrics.hpp"
#include "protocol/versions.hpp"
#include "upstream/core/upstream_wire.hpp"
#include "upstream/upstream_http.hpp"

namespace fusproxy::server {
namespace net = boost::asio;

std::string_view event_name(mirror_event::kind_t kind) {
  return kind == mirror_event::new_build ? "new_build" : "build_verified";
}

namespace {
struct target {
  std::string url;  // as configured, for logs
  upstream::base_url origin;
  std::string path;  // path and query, sent as is
};

std::string random_id() {
  std::random_device rd;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}
}  // namespace

struct notifier::impl : std::enable_shared_from_this<impl> {
  impl(net::any_io_executor ex, std::shared_ptr<spdlog::logger> l, metrics::registry& r,
       notify_options o)
      : executor(ex),
        log(std::move(l)),
        registry(r),
        options(o),
        client(ex, http_options_for(o)),
        deliveries(ex, log, "notify") {}

  static upstream::http_options http_options_for(const notify_options& o) {
    upstream::http_options h;
    h.connect_timeout = o.timeout;
    h.read_timeout = o.timeout;
    h.request_timeout = o.timeout;
    h.max_idle_per_origin = 2;
    return h;
  }

  net::any_io_executor executor;
  std::shared_ptr<spdlog::logger> log;
  metrics::registry& registry;
  notify_options options;
  upstream::http_client client;
  std::vector<target> targets;
  bool stopped = false;
  // Every delivery is a task of this group: stop() cancels them (a POST in flight or a
  // retry waiting ends at once), and the executor's thread runs until they have unwound.
  task_group deliveries;

  void count_delivery(std::string_view outcome) {
    registry
        .counter("fusproxy_notify_deliveries_total",
                 "Notification POSTs by outcome: delivered (2xx), retried (will try again), "
                 "failed (gave up).",
                 {{"outcome", std::string(outcome)}})
        .inc();
  }

  static net::awaitable<void> deliver(std::shared_ptr<impl> self, target t, std::string event,
                                      std::string id, std::string body) {
    auto delay = self->options.first_retry;
    for (unsigned attempt = 1;; ++attempt) {
      upstream::http_request req;
      req.method = upstream::http_method::post;
      req.target = t.path;
      req.body = body;
      req.headers = {{"Content-Type", "application/json"},
                     {"User-Agent", "fusproxy/" FUSPROXY_VERSION},
                     {"X-Fusproxy-Event", event},
                     {"X-Fusproxy-Delivery", id},
                     {"X-Fusproxy-Attempt", std::to_string(attempt)}};
      auto res = co_await self->client.request(t.origin, std::move(req), 64 * 1024);
      if (self->stopped) co_return;
      std::string why;
      bool permanent = false;
      if (!res) {
        why = res.error().message();
      } else if (res->status >= 200 && res->status < 300) {
        self->count_delivery("delivered");
        self->log->info("notify: {} {} delivered to {} (attempt {}, HTTP {})", event, id, t.url,
                        attempt, res->status);
        co_return;
      } else {
        why = "HTTP " + std::to_string(res->status);
        // A receiver that says the request itself is wrong will say so again.
        permanent =
            res->status >= 400 && res->status < 500 && res->status != 408 && res->status != 429;
      }
      if (permanent || attempt >= self->options.attempts) {
        self->count_delivery("failed");
        self->log->error("notify: {} {} to {} failed after {} attempt(s): {}", event, id, t.url,
                         attempt, why);
        co_return;
      }
      self->count_delivery("retried");
      self->log->warn("notify: {} {} to {}: attempt {} failed ({}); retrying in {} ms", event, id,
                      t.url, attempt, why, delay.count());
      net::steady_timer timer(self->executor, delay);
      auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      if (ec || self->stopped) co_return;
      delay = std::min(delay * 2, self->options.max_retry);
    }
  }
};

notifier::notifier(net::any_io_executor executor, const std::vector<std::string>& urls,
                   std::shared_ptr<spdlog::logger> log, metrics::registry& registry,
                   notify_options options)
    : impl_(std::make_shared<impl>(executor, std::move(log), registry, options)) {
  for (const auto& u : urls) {
    auto origin = upstream::parse_base_url(u);
    auto parsed = boost::urls::parse_absolute_uri(u);
    if (!origin || !parsed) throw std::invalid_argument("--notify-url: not an http(s) URL: " + u);
    std::string path(parsed->encoded_path());
    if (path.empty()) path = "/";
    if (parsed->has_query()) path += "?" + std::string(parsed->encoded_query());
    impl_->targets.push_back({u, *origin, path});
  }
  registry.declare_counter("fusproxy_notify_events_total",
                           "Mirror events notified (--notify-url), by event.");
  registry.declare_counter("fusproxy_notify_deliveries_total",
                           "Notification POSTs by outcome: delivered (2xx), retried (will try "
                           "again), failed (gave up).");
}

notifier::~notifier() {
  stop();
}

void notifier::stop() {
  impl_->stopped = true;
  impl_->deliveries.cancel_all();
}

std::string notifier::body(const mirror_event& e, const std::string& id) {
  namespace json = boost::json;
  const auto& m = e.build;
  json::object o;
  o["event"] = event_name(e.kind);
  o["id"] = id;
  o["time"] = iso8601_utc(std::time(nullptr));
  o["model"] = m.model;
  o["region"] = m.region;
  o["version"] = m.version;
  o["version_id"] = protocol::version_id(m.version);
  if (e.kind == mirror_event::new_build)
    o["previous_version"] =
        e.previous_version.empty() ? json::value(nullptr) : json::value(e.previous_version);
  o["os_version"] = m.os_version;
  o["filename"] = m.filename;
  o["plain_filename"] = m.plain_filename;
  o["size"] = m.size;
  o["plain_size"] = m.plain_size;
  o["crc32"] = m.crc32 ? json::value(*m.crc32) : json::value(nullptr);  // null: upstream gave none
  o["last_modified"] = m.last_modified ? iso8601_utc(m.last_modified) : "";
  o["metadata_url"] = firmware_path(m.model, m.region, m.version);
  o["download_url"] = firmware_path(m.model, m.region, m.version, "download");
  o["feed_url"] = "/firmware/" + m.model + "/" + m.region + "/feed.atom";
  return json::serialize(o);
}

void notifier::publish(const mirror_event& e) {
  auto& self = *impl_;
  if (self.stopped) return;
  const auto name = std::string(event_name(e.kind));
  self.registry
      .counter("fusproxy_notify_events_total", "Mirror events notified (--notify-url), by event.",
               {{"event", name}})
      .inc();
  const auto id = random_id();
  self.log->info("notify: {} {}/{} {}{} (event {}) -> {} URL(s)", name, e.build.model,
                 e.build.region, e.build.version,
                 e.previous_version.empty() ? "" : " after " + e.previous_version, id,
                 self.targets.size());
  const auto text = body(e, id);
  for (const auto& t : self.targets)
    self.deliveries.spawn(impl::deliver(impl_, t, name, id, text), "delivery to " + t.url);
}

}  // namespace fusproxy::server
