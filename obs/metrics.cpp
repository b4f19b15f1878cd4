#include "obs/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace fusproxy::metrics {
namespace {

enum family_type { type_counter, type_gauge, type_histogram };

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Shortest form that round-trips is nicer to read; %.17g is exact but noisy.
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[40];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

std::string label_text(const label_list& labels, std::string_view extra_name = {},
                       std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) s += ',';
    first = false;
    s += k + "=\"" + escape_label_value(v) + '"';
  }
  if (!extra_name.empty()) {
    if (!first) s += ',';
    s.append(extra_name).append("=\"").append(extra_value).append("\"");
  }
  s += '}';
  return s;
}

std::string escape_help(std::string_view h) {
  std::string out;
  for (char c : h) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void histogram::observe(double value) {
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
}

histogram::snapshot histogram::read() const {
  snapshot s;
  std::lock_guard lock(mutex_);
  std::uint64_t running = 0;
  for (auto c : counts_) s.cumulative.push_back(running += c);
  s.sum = sum_;
  return s;
}

struct registry::family {
  std::string name;
  std::string help;
  int type = type_counter;
  std::vector<double> bounds;
  // Keyed by the rendered label text, so the output is sorted and stable.
  std::map<std::string, std::unique_ptr<metrics::counter>> counters;
  std::map<std::string, std::unique_ptr<metrics::gauge>> gauges;
  std::map<std::string, std::unique_ptr<metrics::histogram>> histograms;
  std::map<std::string, label_list> labels_of;
};

registry::registry() = default;
registry::~registry() = default;

registry::family& registry::family_for(std::string_view name, std::string_view help, int type,
                                       std::span<const double> bounds) {
  auto it = families_.find(name);
  if (it != families_.end()) {
    if (it->second->type != type)
      throw std::logic_error("metric " + std::string(name) + " registered with two types");
    return *it->second;
  }
  if (!valid_name(name)) throw std::logic_error("bad metric name: " + std::string(name));
  auto f = std::make_unique<family>();
  f->name = name;
  f->help = help;
  f->type = type;
  f->bounds.assign(bounds.begin(), bounds.end());
  auto& ref = *f;
  families_.emplace(std::string(name), std::move(f));
  return ref;
}

metrics::counter& registry::counter(std::string_view name, std::string_view help,
                                    const label_list& labels) {
  std::lock_guard lock(mutex_);
  auto& f = family_for(name, help, type_counter, {});
  auto key = label_text(labels);
  auto& slot = f.counters[key];
  if (!slot) {
    slot = std::make_unique<metrics::counter>();
    f.labels_of[key] = labels;
  }
  return *slot;
}

metrics::gauge& registry::gauge(std::string_view name, std::string_view help,
                                const label_list& labels) {
  std::lock_guard lock(mutex_);
  auto& f = family_for(name, help, type_gauge, {});
  auto key = label_text(labels);
  auto& slot = f.gauges[key];
  if (!slot) {
    slot = std::make_unique<metrics::gauge>();
    f.labels_of[key] = labels;
  }
  return *slot;
}

metrics::histogram& registry::histogram(std::string_view name, std::string_view help,
                                        std::span<const double> upper_bounds,
                                        const label_list& labels) {
  std::lock_guard lock(mutex_);
  auto& f = family_for(name, help, type_histogram, upper_bounds);
  auto key = label_text(labels);
  auto& slot = f.histograms[key];
  if (!slot) {
    slot = std::make_unique<metrics::histogram>(f.bounds);
    f.labels_of[key] = labels;
  }
  return *slot;
}

void registry::declare_counter(std::string_view name, std::string_view help) {
  std::lock_guard lock(mutex_);
  family_for(name, help, type_counter, {});
}

void registry::declare_histogram(std::string_view name, std::string_view help,
                                 std::span<const double> upper_bounds) {
  std::lock_guard lock(mutex_);
  family_for(name, help, type_histogram, upper_bounds);
}

std::string registry::render() const {
  std::string out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, f] : families_) {
      static constexpr const char* type_names[] = {"counter", "gauge", "histogram"};
      out += "# HELP " + name + ' ' + escape_help(f->help) + '\n';
      out += "# TYPE " + name + ' ' + type_names[f->type] + '\n';
      for (const auto& [labels, c] : f->counters)
        out += name + labels + ' ' + std::to_string(c->value()) + '\n';
      for (const auto& [labels, g] : f->gauges)
        out += name + labels + ' ' + std::to_string(g->value()) + '\n';
      for (const auto& [key, h] : f->histograms) {
        const auto& labels = f->labels_of.at(key);
        const auto snap = h->read();
        const auto& bounds = h->upper_bounds();
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          const auto le = i < bounds.size() ? format_number(bounds[i]) : std::string("+Inf");
          out += name + "_bucket" + label_text(labels, "le", le) + ' ' +
                 std::to_string(snap.cumulative[i]) + '\n';
        }
        out += name + "_sum" + key + ' ' + format_number(snap.sum) + '\n';
        out += name + "_count" + key + ' ' + std::to_string(snap.cumulative.back()) + '\n';
      }
    }
  }
  return out;
}

}  // namespace fusproxy::metrics

namespace fusproxy::server {

server_metrics::server_metrics(metrics::registry& r)
    : registry(r),
      connections_active(r.gauge("fusproxy_connections_active", "Open client connections.")),
      connections_total(r.counter("fusproxy_connections_total", "Client connections accepted.")),
      connections_refused(r.counter("fusproxy_connections_refused_total",
                                    "Connections closed at once: --max-connections.")),
      tls_connections(r.counter("fusproxy_tls_connections_total",
                                "Client connections that completed a TLS handshake.")),
      tls_handshake_failures(
          r.counter("fusproxy_tls_handshake_failures_total", "Client TLS handshakes that failed.")),
      requests_in_flight(r.gauge("fusproxy_requests_in_flight", "Requests being answered.")),
      downloads_active(
          r.gauge("fusproxy_downloads_active", "Download responses being streamed to clients.")),
      responses_cut(r.counter("fusproxy_responses_cut_total",
                              "Responses ended before their body was complete.")),
      header_timeouts(r.counter("fusproxy_header_timeouts_total",
                                "Connections cut for sending a request header too slowly.")),
      bytes_served(r.counter("fusproxy_response_body_bytes_total",
                             "Response body bytes written to clients.")),
      rate_limited(r.counter("fusproxy_rate_limited_total",
                             "Requests refused (429) by the per-client request rate limit.")),
      download_refused(r.counter("fusproxy_downloads_refused_total",
                                 "Downloads refused (429): no slot free within --queue-timeout.")),
      downloads_queued(r.gauge("fusproxy_downloads_queued",
                               "Downloads waiting for a slot (--max-downloads, per client).")),
      downloads_queued_total(
          r.counter("fusproxy_downloads_queued_total", "Downloads that had to wait for a slot.")),
      queue_wait(r.histogram("fusproxy_download_queue_wait_seconds",
                             "Time a queued download waited (granted, timed out or gone).",
                             metrics::latency_buckets)) {
  r.declare_counter("fusproxy_http_requests_total", "HTTP requests answered, by route and status.");
  r.declare_histogram("fusproxy_http_request_duration_seconds",
                      "Time to answer a request (whole body), by route.", metrics::latency_buckets);
}

void server_metrics::count_request(std::string_view route, unsigned status, std::uint64_t bytes,
                                   double seconds) {
  const std::string route_label(route);
  registry
      .counter("fusproxy_http_requests_total", "",
               {{"route", route_label}, {"status", std::to_string(status)}})
      .inc();
  registry
      .histogram("fusproxy_http_request_duration_seconds", "", metrics::latency_buckets,
                 {{"route", route_label}})
      .observe(seconds);
  bytes_served.inc(bytes);
}

upstream_metrics::upstream_metrics(metrics::registry& r)
    : bytes(r.counter("fusproxy_upstream_bytes_total", "Body bytes received from upstream.")),
      retries(r.counter("fusproxy_upstream_retries_total",
                        "Upstream requests or ranges retried after a failure, by kind (download: "
                        "a fetch job's ranges; versions, resolve, size_probe: metadata lookups).",
                        {{"kind", "download"}})),
      cache_hits(r.counter("fusproxy_cache_hits_total", "Downloads served from the cache.")),
      cache_misses(
          r.counter("fusproxy_cache_misses_total", "Downloads that needed upstream bytes.")),
      cache_evictions(r.counter("fusproxy_cache_evictions_total",
                                "Builds evicted from the cache (--cache-max-bytes).")),
      cache_size_bytes(r.gauge("fusproxy_cache_size_bytes", "Bytes held in the cache.")),
      cache_builds(r.gauge("fusproxy_cache_builds", "Builds held in the cache.")),
      hedges(r.counter("fusproxy_fetch_hedges_total",
                       "Slow or stalled upstream connections whose range a second connection "
                       "fetched too (the loser is cut).")),
      splits(r.counter("fusproxy_fetch_splits_total",
                       "Ranges split in the end game so that connections finish together.")),
      registry_(r) {
  r.declare_counter(
      "fusproxy_upstream_requests_total",
      "Upstream requests by kind (nonce, inform, init, history, fota, range, download) "
      "and outcome (ok or the error code).");
  r.declare_histogram("fusproxy_upstream_request_duration_seconds",
                      "Upstream request latency (whole exchange), by kind.",
                      metrics::latency_buckets);
  r.declare_histogram("fusproxy_upstream_time_to_first_byte_seconds",
                      "Upstream time to the first byte of the answer, by kind.",
                      metrics::latency_buckets);
}

metrics::counter& upstream_metrics::requests(std::string_view kind, std::string_view outcome) {
  return registry_.counter("fusproxy_upstream_requests_total", "",
                           {{"kind", std::string(kind)}, {"outcome", std::string(outcome)}});
}

metrics::counter& upstream_metrics::retry(std::string_view kind) {
  return registry_.counter("fusproxy_upstream_retries_total", "", {{"kind", std::string(kind)}});
}

metrics::histogram& upstream_metrics::latency(std::string_view kind) {
  return registry_.histogram("fusproxy_upstream_request_duration_seconds", "",
                             metrics::latency_buckets, {{"kind", std::string(kind)}});
}

metrics::histogram& upstream_metrics::time_to_first_byte(std::string_view kind) {
  return registry_.histogram("fusproxy_upstream_time_to_first_byte_seconds", "",
                             metrics::latency_buckets, {{"kind", std::string(kind)}});
}

}  // namespace fusproxy::server
