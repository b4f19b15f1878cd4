#include "firmware/firmware_resolver.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "firmware/download_manager.hpp"
#include "firmware/firmware_metrics.hpp"
#include "firmware/lookup_retrier.hpp"
#include "firmware/lru_map.hpp"
#include "firmware/metadata_cache.hpp"
#include "firmware/mirror_scheduler.hpp"
#include "firmware/resolver_mapping.hpp"
#include "firmware/single_flight.hpp"
#include "firmware/upstream_config.hpp"
#include "net/task_group.hpp"
#include "obs/metrics.hpp"
#include "protocol/versions.hpp"
#include "upstream/fus_client.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

// Records every FUS/FOTA exchange of the resolver's sessions: by kind and outcome (the api
// error code it maps to), and its latency.
upstream::exchange_observer exchange_observer_for(upstream_metrics* m) {
  if (!m) return {};
  return [m](std::string_view kind, const upstream::failure* f, double seconds) {
    m->requests(kind, f ? outcome_label(*f) : std::string_view("ok")).inc();
    m->latency(kind).observe(seconds);
  };
}

download_settings download_settings_from(const config::settings& s) {
  download_settings d;
  d.cache_dir = s.cache_dir;
  d.cache_max_bytes = s.cache_max_bytes;
  d.fetch = fetch_options_from(s);
  d.fetch_threads = s.fetch_threads;
  return d;
}

}  // namespace

// The lookups: metadata and version lists (cache, then one single-flight upstream lookup
// with retries, then the cache's stale answer or a cached build when upstream failed), the
// build details a download needs, and the download manager they feed. The mirrors are a
// scheduler beside it (firmware_resolver::mirrors_).
struct firmware_resolver::impl : std::enable_shared_from_this<impl> {
  impl(net::any_io_executor ex, const config::settings& s, std::shared_ptr<spdlog::logger> l,
       resolver_limits lim, upstream_metrics* metrics)
      : executor(ex),
        client(ex, fus_config_from(s), http_options_from(s), exchange_observer_for(metrics)),
        log(std::move(l)),
        cache(std::chrono::seconds(s.metadata_ttl), lim),
        details(lim.immutable_entries),
        downloads(ex, client, download_settings_from(s), log, metrics),
        tasks(ex, log, "resolver"),
        metadata_flights(ex, tasks, log, "resolver: lookup"),
        list_flights(ex, tasks, log, "resolver: lookup"),
        configured_mirrors(s.mirrors),
        metrics(metrics),
        own_registry(metrics ? nullptr : std::make_unique<metrics::registry>()),
        count(metrics ? metrics->registry() : *own_registry),
        retrier(ex, client, metadata_backoff_from(s), std::chrono::seconds(s.upstream_deadline),
                log, metrics, count.upstream_sessions) {}

  net::any_io_executor executor;
  upstream::fus_client client;
  std::shared_ptr<spdlog::logger> log;

  metadata_cache cache;
  // BINARY_NAME -> how to download it (key, path, InitForMass): what open_download needs
  // besides the metadata; filled with every resolved build. (Not in metadata_cache: it is
  // upstream's session data, not an answer, and never goes stale.)
  lru_map<upstream::build_info> details;
  download_manager downloads;
  // The lookups: owned, cancelled by stop(), drained with the executor.
  task_group tasks;
  single_flight<std::string, firmware_metadata> metadata_flights;       // by metadata key
  single_flight<std::string, version_list> list_flights;                // by model|region
  std::vector<std::pair<std::string, std::string>> configured_mirrors;  // --mirror

  upstream_metrics* metrics;  // may be null (tests)
  // Tests construct the resolver without a registry: it then keeps one of its own.
  std::unique_ptr<metrics::registry> own_registry;
  resolver_metrics count;
  // Retries of transient upstream failures (docs/resolver.md, "Retries").
  lookup_retrier retrier;

  void note_failure(const service_error& e) { count.count_failure(errc_name(e.kind)); }

  // --- metadata ---------------------------------------------------------------------------

  net::awaitable<service_result<firmware_metadata>> metadata(std::string model, std::string region,
                                                             version_ref ref, std::string rid) {
    const auto key = metadata_key_of(model, region, ref);
    const auto now = steady::now();
    if (key.immutable) {
      if (const auto* hit = cache.build(key.text)) {
        ++count.cache_hits;
        co_return *hit;
      }
      // A verified build on disk: its persisted metadata is the answer (immutable; offline
      // too).
      if (auto normal = protocol::normalize_version(ref.text)) {
        if (const auto* e = downloads.cache().find_version(model, region, *normal)) {
          ++count.cache_hits;
          ++count.disk_hits;
          cache.keep_build(key.text, e->record.meta, now);
          details.put(e->record.meta.filename, e->record.build);
          co_return e->record.meta;
        }
      }
    } else if (auto hit = cache.fresh_metadata(key.text, now)) {
      ++count.cache_hits;
      co_return std::move(*hit);
    }
    if (auto err = cache.metadata_error(key.text, now)) {
      ++count.error_hits;
      co_return std::move(*err);
    }
    ++count.cache_misses;

    if (metadata_flights.running(key.text)) ++count.singleflight_joins;
    std::string spec = ref.kind == version_ref::latest ? std::string("latest") : ref.text;
    auto start = [&] { return lookup_metadata(shared_from_this(), key, model, region, spec, rid); };
    // Named locals: GCC 12 mishandles temporaries passed straight into co_await f(...).
    auto flight = metadata_flights.run(key.text, std::move(start));
    co_return co_await std::move(flight);
  }

  // One upstream lookup of metadata (in a flight: whoever asks the same meanwhile shares
  // it), settled into the cache before it returns.
  static net::awaitable<service_result<firmware_metadata>> lookup_metadata(
      std::shared_ptr<impl> self, metadata_key key, std::string model, std::string region,
      std::string spec, std::string rid) {
    ++self->count.upstream_sessions;
    // BinaryInform's answer is kept while the session lasts: a failed size probe is retried
    // alone in the same session; a new session starts again from BinaryInform (the session
    // that authorises a file must be one whose BinaryInform answered it).
    std::optional<upstream::build_info> build;
    lookup_retrier::attempt_fn<firmware_metadata> attempt =
        [&](upstream::fus_session& session, bool new_session,
            std::string_view& stage) -> net::awaitable<upstream::result<firmware_metadata>> {
      if (new_session) build.reset();
      if (!build) {
        stage = "resolve";
        auto b = co_await session.resolve(model, region, spec);
        if (!b) co_return b.error();
        build = std::move(*b);
      }
      stage = "size_probe";
      auto plain = co_await session.plain_size(*build);
      if (!plain) co_return plain.error();
      self->details.put(build->inform.binary_name, *build);
      co_return make_metadata(*build, *plain);
    };
    const auto what = "metadata of " + model + "/" + region + "/" + spec;
    auto fetched = co_await self->retrier.run<firmware_metadata>(what, rid, std::move(attempt));
    co_return self->settle_metadata(key, model, region, spec, rid, std::move(fetched));
  }

  service_result<firmware_metadata> settle_metadata(const metadata_key& key,
                                                    const std::string& model,
                                                    const std::string& region,
                                                    const std::string& spec, const std::string& rid,
                                                    upstream::result<firmware_metadata> fetched) {
    const auto now = steady::now();
    if (fetched) {
      cache.keep_metadata(model, region, key, *fetched, now);
      log->debug("[{}] resolved {}/{}/{} -> {} ({})", rid, model, region, spec, fetched->version,
                 fetched->filename);
      return *fetched;
    }
    const auto& failure = fetched.error();
    auto err = to_service_error(failure);
    note_failure(err);
    log->warn("[{}] upstream: {}/{}/{}: {} -> {}", rid, model, region, spec, failure.message(),
              errc_name(err.kind));
    if (is_definitive(failure)) {
      cache.remember_metadata_error(key.text, err, now);
      return err;
    }
    if (auto stale = cache.stale_metadata(key, now)) {
      ++count.stale_served;
      log->warn("[{}] serving a stale answer for {}/{}/{} (age {} s)", rid, model, region, spec,
                stale->fresh.age_seconds);
      return std::move(*stale);
    }
    // Offline: the newest cached build of the pair (latest), or the cached build of that PDA.
    if (const auto* e = offline_candidate(model, region, spec)) {
      ++count.offline_served;
      auto answer = e->record.meta;
      const auto wall = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      answer.fresh = {static_cast<std::uint64_t>(std::max<std::time_t>(1, wall - e->stored_at)),
                      true};
      details.put(answer.filename, e->record.build);
      log->warn("[{}] upstream failed ({}): serving the cached build {} for {}/{}/{}", rid,
                errc_name(err.kind), answer.version, model, region, spec);
      return answer;
    }
    return err;
  }

  const cache_entry* offline_candidate(const std::string& model, const std::string& region,
                                       const std::string& spec) const {
    const auto& c = downloads.cache();
    if (spec == "latest") return c.newest(model, region);
    if (auto normal = protocol::normalize_version(spec); normal && spec.find('/') != spec.npos)
      return c.find_version(model, region, *normal);
    const cache_entry* best = nullptr;  // a PDA: its newest cached build
    for (const auto& [name, e] : c.entries()) {
      const auto& m = e.record.meta;
      if (e.verified && m.model == model && m.region == region &&
          m.version.starts_with(spec + "/") &&
          (!best || m.last_modified > best->record.meta.last_modified))
        best = &e;
    }
    return best;
  }

  // --- version lists ----------------------------------------------------------------------

  net::awaitable<service_result<version_list>> versions(std::string model, std::string region,
                                                        std::string rid) {
    const auto key = pair_key(model, region);
    const auto now = steady::now();
    if (auto hit = cache.fresh_versions(key, now)) {
      ++count.cache_hits;
      co_return std::move(*hit);
    }
    if (auto err = cache.versions_error(key, now)) {
      ++count.error_hits;
      co_return std::move(*err);
    }
    ++count.cache_misses;

    if (list_flights.running(key)) ++count.singleflight_joins;
    auto start = [&] { return lookup_versions(shared_from_this(), key, model, region, rid); };
    auto flight = list_flights.run(key, std::move(start));
    co_return co_await std::move(flight);
  }

  static net::awaitable<service_result<version_list>> lookup_versions(std::shared_ptr<impl> self,
                                                                      std::string key,
                                                                      std::string model,
                                                                      std::string region,
                                                                      std::string rid) {
    ++self->count.upstream_sessions;
    lookup_retrier::attempt_fn<upstream::version_list> attempt =
        [&](upstream::fus_session& session, bool,
            std::string_view& stage) -> net::awaitable<upstream::result<upstream::version_list>> {
      stage = "versions";
      co_return co_await session.versions(model, region);
    };
    const auto what = "versions of " + model + "/" + region;
    auto fetched =
        co_await self->retrier.run<upstream::version_list>(what, rid, std::move(attempt));
    co_return self->settle_versions(key, model, region, rid, std::move(fetched));
  }

  service_result<version_list> settle_versions(const std::string& key, const std::string& model,
                                               const std::string& region, const std::string& rid,
                                               upstream::result<upstream::version_list> fetched) {
    const auto now = steady::now();
    if (fetched) {
      version_list out;
      out.model = model;
      out.region = region;
      out.latest = fetched->latest;
      out.versions.reserve(fetched->versions.size());
      for (const auto& v : fetched->versions) out.versions.push_back({v.version, v.os, v.beta});
      cache.keep_versions(key, out, now);
      return out;
    }
    const auto& failure = fetched.error();
    auto err = to_service_error(failure);
    note_failure(err);
    log->warn("[{}] upstream: versions of {}/{}: {} -> {}", rid, model, region, failure.message(),
              errc_name(err.kind));
    if (is_definitive(failure)) {
      cache.remember_versions_error(key, err, now);
      return err;
    }
    if (auto stale = cache.stale_versions(key, now)) {
      ++count.stale_served;
      return std::move(*stale);
    }
    return err;
  }

  // --- downloads --------------------------------------------------------------------------

  net::awaitable<service_result<build_source>> source_for(std::string model, std::string region,
                                                          version_ref version, std::string rid);

  // DELETE /api/cache/{file}: by BINARY_NAME or by the plain file name.
  service_result<boost::json::value> remove_cached(const std::string& file_name) {
    std::string name = file_name;
    for (const auto& [n, e] : downloads.cache().entries())
      if (e.record.meta.plain_filename == file_name) name = n;
    auto r = downloads.remove_build(name);
    if (!r) return r.error();
    return boost::json::object{{"removed", name}};
  }

  // --- observability ----------------------------------------------------------------------

  // Scrape time: the gauges that describe state rather than events.
  void refresh_metrics() {
    const auto n = cache.counts();
    count.cache_entries("builds").set(static_cast<std::int64_t>(n.builds));
    count.cache_entries("latest").set(static_cast<std::int64_t>(n.moving));
    count.cache_entries("versions").set(static_cast<std::int64_t>(n.versions));
    count.cache_entries("errors").set(static_cast<std::int64_t>(n.errors));
    count.lookups_in_flight.set(
        static_cast<std::int64_t>(metadata_flights.size() + list_flights.size()));
  }

  boost::json::object status_json() const {
    namespace json = boost::json;
    json::object counters;
    counters["upstream_sessions"] = count.upstream_sessions.value();
    counters["cache_hits"] = count.cache_hits.value();
    counters["cache_misses"] = count.cache_misses.value();
    counters["error_cache_hits"] = count.error_hits.value();
    counters["singleflight_joins"] = count.singleflight_joins.value();
    counters["stale_served"] = count.stale_served.value();
    counters["disk_metadata_hits"] = count.disk_hits.value();
    counters["offline_served"] = count.offline_served.value();
    counters["lookups_in_flight"] = metadata_flights.size() + list_flights.size();
    json::object failures;
    for (const auto& [code, n] : count.failures()) failures[code] = n;
    counters["upstream_failures"] = std::move(failures);

    // The builds whose metadata is known, most recently used first (at most 100 shown).
    json::array known;
    for (const auto& m : cache.known_builds(100))
      known.push_back(json::object{{"model", m.model},
                                   {"region", m.region},
                                   {"version", m.version},
                                   {"filename", m.filename},
                                   {"size", m.size},
                                   {"plain_size", m.plain_size}});
    json::object out;
    out["resolver"] = std::move(counters);
    out["known_builds"] = std::move(known);
    out["downloads"] = downloads.status_json();
    out["cache"] = downloads.cache_status_json();
    return out;
  }
};

firmware_resolver::firmware_resolver(boost::asio::any_io_executor executor,
                                     const config::settings& settings,
                                     std::shared_ptr<spdlog::logger> log, resolver_limits limits,
                                     upstream_metrics* metrics)
    : impl_(std::make_shared<impl>(executor, settings, log, limits, metrics)) {
  // The mirror loops share the ownership of the lookups and downloads they use.
  auto lookups = impl_;
  mirror_scheduler::latest_source latest = [lookups](std::string model, std::string region) {
    return lookups->source_for(std::move(model), std::move(region), version_ref{}, "mirror");
  };
  mirrors_ = std::make_shared<mirror_scheduler>(
      std::move(executor), std::move(latest),
      std::shared_ptr<download_manager>(impl_, &impl_->downloads), std::move(log),
      std::chrono::seconds(settings.metadata_ttl));
}

firmware_resolver::~firmware_resolver() = default;

net::awaitable<service_result<version_list>> firmware_resolver::versions(
    const std::string& model, const std::string& region, const request_context& ctx) {
  auto self = impl_;
  co_return co_await self->versions(model, region, ctx.request_id);
}

net::awaitable<service_result<firmware_metadata>> firmware_resolver::metadata(
    const std::string& model, const std::string& region, const version_ref& version,
    const request_context& ctx) {
  auto self = impl_;
  co_return co_await self->metadata(model, region, version, ctx.request_id);
}

// The metadata of a build and how to download it (BinaryInform's answer, cached with it).
net::awaitable<service_result<build_source>> firmware_resolver::impl::source_for(
    std::string model, std::string region, version_ref version, std::string rid) {
  auto self = shared_from_this();
  auto meta = co_await self->metadata(model, region, version, rid);
  if (!meta) co_return meta.error();
  build_source source{*meta, {}};
  if (auto* b = self->details.find(meta->filename)) {
    source.build = *b;
    co_return source;
  }
  if (const auto* e = self->downloads.cache().find(meta->filename); e && e->verified) {
    source.build = e->record.build;
    self->details.put(meta->filename, source.build);
    co_return source;
  }
  // Forgotten (LRU): resolve the served build again, uncached.
  lookup_retrier::attempt_fn<upstream::build_info> attempt =
      [&](upstream::fus_session& session, bool,
          std::string_view& stage) -> net::awaitable<upstream::result<upstream::build_info>> {
    stage = "resolve";
    co_return co_await session.resolve(meta->model, meta->region, meta->version);
  };
  ++self->count.upstream_sessions;
  const auto what = "the build of " + meta->filename;
  auto build = co_await self->retrier.run<upstream::build_info>(what, rid, std::move(attempt));
  if (!build) co_return to_service_error(build.error());
  if (build->inform.binary_name != meta->filename)
    co_return service_error{firmware_errc::upstream_error, "upstream now serves another file", {}};
  self->details.put(meta->filename, *build);
  source.build = *build;
  co_return source;
}

net::awaitable<service_result<std::vector<zip_member>>> firmware_resolver::files(
    const std::string& model, const std::string& region, const version_ref& version,
    const request_context& ctx) {
  auto self = impl_;
  auto source = co_await self->source_for(model, region, version, ctx.request_id);
  if (!source) co_return source.error();
  co_return co_await self->downloads.files(std::move(*source));
}

net::awaitable<service_result<std::vector<tar_entry_info>>> firmware_resolver::entries(
    const std::string& model, const std::string& region, const version_ref& version,
    const std::string& member, const request_context& ctx) {
  auto self = impl_;
  auto source = co_await self->source_for(model, region, version, ctx.request_id);
  if (!source) co_return source.error();
  co_return co_await self->downloads.entries(std::move(*source), member);
}

net::awaitable<service_result<download_representation>> firmware_resolver::open_download(
    const download_request& request, const request_context& ctx) {
  auto self = impl_;
  auto source =
      co_await self->source_for(request.model, request.region, request.version, ctx.request_id);
  if (!source) co_return source.error();
  if (request.variant == download_variant::member) {
    const auto fresh = source->meta.fresh;
    co_return co_await self->downloads.member_representation(std::move(*source), request.member,
                                                             fresh);
  }
  const auto fresh = source->meta.fresh;
  auto rep = self->downloads.representation(*source, request.variant, fresh);
  if (!rep) co_return rep.error();
  co_return std::move(*rep);
}

net::awaitable<readiness> firmware_resolver::ready() {
  if (auto why = impl_->downloads.cache().why_not_writable())
    co_return readiness{false, std::move(*why)};
  co_return readiness{};
}

net::awaitable<void> firmware_resolver::refresh_metrics() {
  impl_->refresh_metrics();
  impl_->downloads.refresh_metrics();
  co_return;
}

net::awaitable<boost::json::object> firmware_resolver::status_json() {
  auto out = impl_->status_json();
  out["mirrors"] = mirrors_->list();
  co_return out;
}

net::awaitable<service_result<boost::json::value>> firmware_resolver::manage(
    management_request request) {
  switch (request.op) {
    case management_request::list_mirrors:
      co_return boost::json::object{{"mirrors", mirrors_->list()}};
    case management_request::add_mirror:
      co_return mirrors_->add(request.model, request.region);
    case management_request::remove_mirror:
      co_return mirrors_->remove(request.model, request.region);
    case management_request::remove_cached:
      co_return impl_->remove_cached(request.file_name);
  }
  co_return service_error{firmware_errc::internal_error, "unknown management request", {}};
}

void firmware_resolver::stop() {
  impl_->tasks.cancel_all();
  mirrors_->stop();
  impl_->downloads.stop_all();
}

void firmware_resolver::on_mirror_event(std::function<void(const mirror_event&)> sink) {
  mirrors_->on_event(std::move(sink));
}

void firmware_resolver::start_mirrors() {
  mirrors_->start(impl_->configured_mirrors);
}

}  // namespace fusproxy::server
