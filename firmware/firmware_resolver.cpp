#include "firmware/firmware_resolver.hpp"

#include <spdlog/logger.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "crypto/auth.hpp"
#include "firmware/download_manager.hpp"
#include "firmware/firmware_metrics.hpp"
#include "firmware/resolver_mapping.hpp"
#include "firmware/upstream_config.hpp"
#include "net/task_group.hpp"
#include "obs/metrics.hpp"
#include "protocol/http_date.hpp"
#include "protocol/versions.hpp"
#include "upstream/core/upstream_retry.hpp"
#include "upstream/fus_client.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

// A bounded map that forgets the least recently used entry first.
template <class V>
class lru_map {
 public:
  explicit lru_map(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

  V* find(const std::string& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }
  void put(const std::string& key, V value) {
    if (auto* v = find(key)) {
      *v = std::move(value);
      return;
    }
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }
  void erase(const std::string& key) {
    const auto it = index_.find(key);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }
  std::size_t size() const { return order_.size(); }
  // Most recent first.
  const std::list<std::pair<std::string, V>>& entries() const { return order_; }

 private:
  std::size_t capacity_;
  std::list<std::pair<std::string, V>> order_;
  std::unordered_map<std::string, typename std::list<std::pair<std::string, V>>::iterator> index_;
};

template <class T>
struct timed {
  T value;
  steady::time_point fetched;
};

struct remembered_error {
  service_error error;
  steady::time_point expires;
};

// One upstream lookup in progress. Whoever asks while it runs awaits `done` (a timer that
// never expires and is cancelled when the result is in): one thread, so no lock.
template <class T>
struct flight {
  explicit flight(const net::any_io_executor& ex) : done(ex, steady::time_point::max()) {}
  net::steady_timer done;
  std::optional<service_result<T>> result;

  void finish(service_result<T> r) {
    result = std::move(r);
    done.cancel();
  }
};

std::uint64_t seconds_since(steady::time_point t, steady::time_point now) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now - t).count());
}

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

std::string pair_key(const std::string& model, const std::string& region) {
  return model + "|" + region;
}

// The cache key of a metadata lookup, and whether its answer is immutable (a full version).
std::pair<std::string, bool> metadata_key(const std::string& model, const std::string& region,
                                          const version_ref& ref) {
  const auto base = pair_key(model, region) + "|";
  switch (ref.kind) {
    case version_ref::latest:
      return {base + "latest", false};
    case version_ref::pda:
      return {base + "pda:" + ref.text, false};
    case version_ref::full:
      break;
  }
  // The normalised 4-part form, so that "A/B/C/" and "A/B/C/A"-style spellings meet; a
  // version upstream would refuse keeps its text (and fails upstream, uncached).
  auto normal = protocol::normalize_version(ref.text);
  return {base + (normal ? *normal : ref.text), true};
}

}  // namespace

struct firmware_resolver::impl : std::enable_shared_from_this<impl> {
  impl(net::any_io_executor ex, const config::settings& s, std::shared_ptr<spdlog::logger> l,
       resolver_limits lim, upstream_metrics* metrics)
      : executor(ex),
        client(ex, fus_config_from(s), http_options_from(s), exchange_observer_for(metrics)),
        log(std::move(l)),
        ttl(std::chrono::seconds(s.metadata_ttl)),
        error_ttl(std::min<steady::duration>(ttl, std::chrono::seconds(30))),
        builds(lim.immutable_entries),
        moving(lim.ttl_entries),
        lists(lim.ttl_entries),
        errors(lim.error_entries),
        details(lim.immutable_entries),
        downloads(ex, client, download_settings_from(s), log, metrics),
        tasks(ex, log, "resolver"),
        configured_mirrors(s.mirrors),
        metrics(metrics),
        own_registry(metrics ? nullptr : std::make_unique<metrics::registry>()),
        count(metrics ? metrics->registry() : *own_registry),
        upstream_deadline(std::chrono::seconds(s.upstream_deadline)),
        retry_backoff(metadata_backoff_from(s)),
        jitter_source(std::random_device{}()) {}

  net::any_io_executor executor;
  upstream::fus_client client;
  std::shared_ptr<spdlog::logger> log;
  steady::duration ttl;
  steady::duration error_ttl;

  lru_map<timed<firmware_metadata>> builds;  // full version -> metadata, immutable
  lru_map<timed<firmware_metadata>> moving;  // latest / PDA -> metadata, TTL
  lru_map<timed<version_list>> lists;        // model|region -> versions, TTL
  lru_map<remembered_error> errors;          // definitive errors, briefly
  // BINARY_NAME -> how to download it (key, path, InitForMass): what open_download needs
  // besides the metadata; filled with every resolved build.
  lru_map<upstream::build_info> details;
  download_manager downloads;
  std::unordered_map<std::string, std::shared_ptr<flight<firmware_metadata>>> metadata_flights;
  std::unordered_map<std::string, std::shared_ptr<flight<version_list>>> list_flights;
  // The lookups and mirror loops: owned, cancelled by stop(), drained with the executor.
  task_group tasks;

  // Mirrored model/regions: the newest build kept fetched (docs/cache.md).
  struct mirror_entry {
    std::string model, region;
    std::uint64_t generation = 0;   // a loop whose generation is not current ends
    std::string version;            // the newest build seen
    std::string state = "pending";  // pending, fetching, verified, failed
    std::string error;
    std::time_t last_checked = 0;
  };
  std::map<std::string, mirror_entry> mirrors;  // model|region
  std::uint64_t mirror_generation = 0;
  std::vector<std::pair<std::string, std::string>> configured_mirrors;
  std::function<void(const mirror_event&)> mirror_events;  // --notify-url
  void emit(mirror_event::kind_t kind, const firmware_metadata& build, std::string previous = {}) {
    if (mirror_events) mirror_events(mirror_event{kind, build, std::move(previous)});
  }

  upstream_metrics* metrics;  // may be null (tests)
  // Retries of transient upstream failures (docs/resolver.md, "Retries").
  steady::duration upstream_deadline;
  upstream::backoff retry_backoff;
  std::minstd_rand jitter_source;

  // Tests construct the resolver without a registry: it then keeps one of its own.
  std::unique_ptr<metrics::registry> own_registry;
  resolver_metrics count;

  // --- waiting for a flight ---------------------------------------------------------------

  template <class T>
  static net::awaitable<service_result<T>> await_flight(std::shared_ptr<flight<T>> f) {
    while (!f->result) {
      auto [ec] = co_await f->done.async_wait(net::as_tuple(net::use_awaitable));
      if (f->result) break;
      // Only a cancellation of this waiter (not the flight's completion) gets here.
      auto cs = co_await net::this_coro::cancellation_state;
      if (ec && cs.cancelled() != net::cancellation_type::none)
        co_return service_error{firmware_errc::internal_error, "request cancelled", {}};
    }
    co_return *f->result;
  }

  // Runs `work` apart from any client request (a client that goes away does not cancel
  // the lookup others wait for; stop() does); an escaping exception still completes the
  // flight.
  template <class T>
  void launch(std::shared_ptr<flight<T>> f, net::awaitable<void> work) {
    tasks.spawn(std::move(work), "lookup", [f, self = shared_from_this()](std::exception_ptr e) {
      if (f->result) return;
      std::string what = "unexpected failure";
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        what = x.what();
      } catch (...) {
      }
      self->log->error("resolver: lookup failed with an exception: {}", what);
      f->finish(service_error{firmware_errc::internal_error, "internal error", {}});
    });
  }

  void note_failure(const service_error& e) { count.count_failure(errc_name(e.kind)); }

  // --- retries (docs/resolver.md, "Retries") ----------------------------------------------

  // One attempt of a lookup in `session`; `new_session` says the session is fresh (forget
  // what an earlier session did); `stage` names the step that failed (logs, metrics).
  template <class T>
  using attempt_fn = std::function<net::awaitable<upstream::result<T>>(
      upstream::fus_session& session, bool new_session, std::string_view& stage)>;

  // Runs `attempt` until it succeeds, fails for good, or the next retry would not start
  // before the deadline (upstream::retry_schedule); the whole lookup, attempts included, is
  // cut at --upstream-deadline. Runs inside a flight: whoever waits for it shares it.
  template <class T>
  net::awaitable<upstream::result<T>> with_retries(std::string what, std::string rid,
                                                   attempt_fn<T> attempt) {
    using namespace net::experimental::awaitable_operators;
    upstream::retry_schedule schedule(retry_backoff, upstream_deadline, steady::now());
    std::optional<upstream::failure> last;
    net::steady_timer deadline(executor, schedule.deadline());
    auto outcome = co_await (retry_loop<T>(schedule, what, rid, attempt, last) ||
                             deadline.async_wait(net::use_awaitable));
    if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
    // The deadline cut an attempt in flight (a retry never starts a wait past it).
    auto f = upstream::make_failure(
        upstream::errc::timeout,
        "no answer within --upstream-deadline (" +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(upstream_deadline).count()) +
            " s)" + (last ? "; the last failure: " + last->message() : std::string()));
    co_return f;
  }

  template <class T>
  net::awaitable<upstream::result<T>> retry_loop(upstream::retry_schedule& schedule,
                                                 const std::string& what, const std::string& rid,
                                                 attempt_fn<T>& attempt,
                                                 std::optional<upstream::failure>& last) {
    auto session = std::make_unique<upstream::fus_session>(client, rid);
    bool new_session = true;
    for (;;) {
      std::string_view stage = "resolve";
      auto r = co_await attempt(*session, new_session, stage);
      if (r) co_return r;
      last = r.error();
      const double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(jitter_source);
      const auto step = schedule.after(r.error(), steady::now(), jitter);
      if (!step.retry) co_return r;
      if (metrics) metrics->retry(stage).inc();
      log->warn("[{}] upstream: {} ({}): {}; retry {} in {} ms{}", rid, what, stage,
                r.error().message(), schedule.retries(), step.delay.count(),
                step.new_session ? " in a new session" : "");
      new_session = step.new_session;
      if (new_session) {
        session = std::make_unique<upstream::fus_session>(client, rid);
        ++count.upstream_sessions;
      }
      net::steady_timer pause(executor, step.delay);
      co_await pause.async_wait(net::as_tuple(net::use_awaitable));
    }
  }

  // --- metadata ---------------------------------------------------------------------------

  net::awaitable<service_result<firmware_metadata>> metadata(std::string model, std::string region,
                                                             version_ref ref, std::string rid) {
    const auto [key, immutable] = metadata_key(model, region, ref);
    const auto now = steady::now();
    if (immutable) {
      if (auto* hit = builds.find(key)) {
        ++count.cache_hits;
        co_return hit->value;
      }
      // A verified build on disk: its persisted metadata is the answer (immutable; offline
      // too).
      if (auto normal = protocol::normalize_version(ref.text)) {
        if (const auto* e = downloads.cache().find_version(model, region, *normal)) {
          ++count.cache_hits;
          ++count.disk_hits;
          builds.put(key, {e->record.meta, now});
          details.put(e->record.meta.filename, e->record.build);
          co_return e->record.meta;
        }
      }
    } else if (auto* hit = moving.find(key); hit && now - hit->fetched < ttl) {
      ++count.cache_hits;
      auto answer = hit->value;
      answer.fresh = {seconds_since(hit->fetched, now), false};
      co_return answer;
    }
    if (auto* err = errors.find(key); err && now < err->expires) {
      ++count.error_hits;
      co_return err->error;
    }
    ++count.cache_misses;

    std::shared_ptr<flight<firmware_metadata>> f;
    if (auto it = metadata_flights.find(key); it != metadata_flights.end()) {
      ++count.singleflight_joins;
      f = it->second;
    } else {
      f = std::make_shared<flight<firmware_metadata>>(executor);
      metadata_flights.emplace(key, f);
      std::string spec = ref.kind == version_ref::latest ? std::string("latest") : ref.text;
      launch(f, run_metadata(shared_from_this(), f, key, immutable, model, region, spec, rid));
    }
    co_return co_await await_flight(f);
  }

  static net::awaitable<void> run_metadata(std::shared_ptr<impl> self,
                                           std::shared_ptr<flight<firmware_metadata>> f,
                                           std::string key, bool immutable, std::string model,
                                           std::string region, std::string spec, std::string rid) {
    ++self->count.upstream_sessions;
    // BinaryInform's answer is kept while the session lasts: a failed size probe is retried
    // alone in the same session; a new session starts again from BinaryInform (the session
    // that authorises a file must be one whose BinaryInform answered it).
    std::optional<upstream::build_info> build;
    attempt_fn<firmware_metadata> attempt =
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
    auto fetched = co_await self->with_retries<firmware_metadata>(what, rid, std::move(attempt));
    self->metadata_flights.erase(key);
    f->finish(self->settle_metadata(key, immutable, model, region, spec, rid, std::move(fetched)));
  }

  service_result<firmware_metadata> settle_metadata(const std::string& key, bool immutable,
                                                    const std::string& model,
                                                    const std::string& region,
                                                    const std::string& spec, const std::string& rid,
                                                    upstream::result<firmware_metadata> fetched) {
    const auto now = steady::now();
    if (fetched) {
      // The served build is immutable whichever way it was asked for.
      version_ref served{version_ref::full, fetched->version};
      builds.put(metadata_key(model, region, served).first, {*fetched, now});
      if (!immutable) moving.put(key, {*fetched, now});
      errors.erase(key);
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
      errors.put(key, {err, now + error_ttl});
      return err;
    }
    if (!immutable) {
      if (auto* stale = moving.find(key)) {
        ++count.stale_served;
        auto answer = stale->value;
        answer.fresh = {seconds_since(stale->fetched, now), true};
        log->warn("[{}] serving a stale answer for {}/{}/{} (age {} s)", rid, model, region, spec,
                  answer.fresh.age_seconds);
        return answer;
      }
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
    if (auto* hit = lists.find(key); hit && now - hit->fetched < ttl) {
      ++count.cache_hits;
      auto answer = hit->value;
      answer.fresh = {seconds_since(hit->fetched, now), false};
      co_return answer;
    }
    const auto error_key = "versions|" + key;
    if (auto* err = errors.find(error_key); err && now < err->expires) {
      ++count.error_hits;
      co_return err->error;
    }
    ++count.cache_misses;

    std::shared_ptr<flight<version_list>> f;
    if (auto it = list_flights.find(key); it != list_flights.end()) {
      ++count.singleflight_joins;
      f = it->second;
    } else {
      f = std::make_shared<flight<version_list>>(executor);
      list_flights.emplace(key, f);
      launch(f, run_versions(shared_from_this(), f, key, model, region, rid));
    }
    co_return co_await await_flight(f);
  }

  static net::awaitable<void> run_versions(std::shared_ptr<impl> self,
                                           std::shared_ptr<flight<version_list>> f, std::string key,
                                           std::string model, std::string region, std::string rid) {
    ++self->count.upstream_sessions;
    attempt_fn<upstream::version_list> attempt =
        [&](upstream::fus_session& session, bool,
            std::string_view& stage) -> net::awaitable<upstream::result<upstream::version_list>> {
      stage = "versions";
      co_return co_await session.versions(model, region);
    };
    const auto what = "versions of " + model + "/" + region;
    auto fetched =
        co_await self->with_retries<upstream::version_list>(what, rid, std::move(attempt));
    self->list_flights.erase(key);
    f->finish(self->settle_versions(key, model, region, rid, std::move(fetched)));
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
      lists.put(key, {out, now});
      return out;
    }
    const auto& failure = fetched.error();
    auto err = to_service_error(failure);
    note_failure(err);
    log->warn("[{}] upstream: versions of {}/{}: {} -> {}", rid, model, region, failure.message(),
              errc_name(err.kind));
    if (is_definitive(failure)) {
      errors.put("versions|" + key, {err, now + error_ttl});
      return err;
    }
    if (auto* stale = lists.find(key)) {
      ++count.stale_served;
      auto answer = stale->value;
      answer.fresh = {seconds_since(stale->fetched, now), true};
      return answer;
    }
    return err;
  }

  net::awaitable<service_result<build_source>> source_for(std::string model, std::string region,
                                                          version_ref version, std::string rid);

  // --- mirrors ----------------------------------------------------------------------------

  void add_mirror(const std::string& model, const std::string& region) {
    const auto key = pair_key(model, region);
    auto& m = mirrors[key];
    m.model = model;
    m.region = region;
    m.generation = ++mirror_generation;
    log->info("mirror: keeping {}/{} fetched (checked every {} s)", model, region,
              std::chrono::duration_cast<std::chrono::seconds>(ttl).count());
    tasks.spawn(run_mirror(shared_from_this(), key, m.generation), "mirror " + key);
  }

  // Every --metadata-ttl: resolve latest, fetch it to the end (no follower: full speed).
  static net::awaitable<void> run_mirror(std::shared_ptr<impl> self, std::string key,
                                         std::uint64_t generation) {
    const auto current = [&]() -> mirror_entry* {
      const auto it = self->mirrors.find(key);
      return it != self->mirrors.end() && it->second.generation == generation ? &it->second
                                                                              : nullptr;
    };
    for (;;) {
      auto* m = current();
      if (!m) co_return;
      const auto model = m->model, region = m->region;
      // Named locals: GCC 12 mishandles temporaries passed straight into co_await f(...).
      version_ref latest{};
      std::string rid = "mirror";
      auto source = co_await self->source_for(model, region, latest, rid);
      m = current();
      if (!m) co_return;
      m->last_checked = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      bool ok = false;
      if (!source) {
        m->state = "failed";
        m->error = source.error().message;
      } else {
        // A new build: only against one seen before (the first check after a start is the
        // baseline; docs/operations.md, Notifications).
        if (!m->version.empty() && m->version != source->meta.version)
          self->emit(mirror_event::new_build, source->meta, m->version);
        m->version = source->meta.version;
        m->error.clear();
        auto job = self->downloads.job_for(*source);
        if (!job) {
          m->state = "failed";
          m->error = job.error().message();
        } else {
          auto j = *job;
          const bool was_verified = j->state() == job_state::verified;
          m->state = was_verified ? "verified" : "fetching";
          auto ec = co_await j->wait_done();
          m = current();
          if (!m) co_return;
          m->state = ec ? "failed" : "verified";
          if (ec) m->error = ec.message();
          ok = !ec;
          if (ok && !was_verified) self->emit(mirror_event::build_verified, source->meta);
          if (ok) self->downloads.cache().touch(source->meta.filename);
        }
      }
      // Failures are retried sooner than the TTL.
      const auto wait =
          ok ? self->ttl : std::min<steady::duration>(self->ttl, std::chrono::seconds(30));
      net::steady_timer t(self->executor, wait);
      auto [ec] = co_await t.async_wait(net::as_tuple(net::use_awaitable));
      if (ec == net::error::operation_aborted) co_return;  // stop()
    }
  }

  service_result<boost::json::value> manage(const management_request& rq) {
    namespace json = boost::json;
    switch (rq.op) {
      case management_request::list_mirrors: {
        json::array a;
        for (const auto& [k, m] : mirrors) a.push_back(mirror_object(m));
        return json::object{{"mirrors", std::move(a)}};
      }
      case management_request::add_mirror:
        if (rq.model.empty() || rq.region.empty())
          return service_error{
              firmware_errc::bad_request, "a mirror needs a model and a region", {}};
        if (!mirrors.count(pair_key(rq.model, rq.region))) add_mirror(rq.model, rq.region);
        return mirror_object(mirrors.at(pair_key(rq.model, rq.region)));
      case management_request::remove_mirror:
        if (!mirrors.erase(pair_key(rq.model, rq.region)))
          return service_error{
              firmware_errc::not_found, rq.model + "/" + rq.region + " is not mirrored", {}};
        log->info("mirror: {}/{} removed (its cached builds stay until evicted)", rq.model,
                  rq.region);
        return json::object{{"removed", true}};
      case management_request::remove_cached: {
        std::string name = rq.file_name;
        for (const auto& [n, e] : downloads.cache().entries())
          if (e.record.meta.plain_filename == rq.file_name) name = n;
        auto r = downloads.remove_build(name);
        if (!r) return r.error();
        return json::object{{"removed", name}};
      }
    }
    return service_error{firmware_errc::internal_error, "unknown management request", {}};
  }

  boost::json::object mirror_object(const mirror_entry& m) const {
    boost::json::object o{
        {"model", m.model},
        {"region", m.region},
        {"version", m.version},
        {"state", m.state},
        {"last_checked", m.last_checked ? http_date::iso8601_utc(m.last_checked) : ""}};
    if (!m.error.empty()) o["error"] = m.error;
    return o;
  }

  // --- observability ----------------------------------------------------------------------

  // Scrape time: the gauges that describe state rather than events.
  void refresh_metrics() {
    count.cache_entries("builds").set(static_cast<std::int64_t>(builds.size()));
    count.cache_entries("latest").set(static_cast<std::int64_t>(moving.size()));
    count.cache_entries("versions").set(static_cast<std::int64_t>(lists.size()));
    count.cache_entries("errors").set(static_cast<std::int64_t>(errors.size()));
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
    for (const auto& [key, entry] : builds.entries()) {
      if (known.size() == 100) break;
      const auto& m = entry.value;
      known.push_back(json::object{{"model", m.model},
                                   {"region", m.region},
                                   {"version", m.version},
                                   {"filename", m.filename},
                                   {"size", m.size},
                                   {"plain_size", m.plain_size}});
    }
    json::object out;
    out["resolver"] = std::move(counters);
    out["known_builds"] = std::move(known);
    out["downloads"] = downloads.status_json();
    out["cache"] = downloads.cache_status_json();
    json::array mirrored;
    for (const auto& [k, m] : mirrors) mirrored.push_back(mirror_object(m));
    out["mirrors"] = std::move(mirrored);
    return out;
  }
};

firmware_resolver::firmware_resolver(boost::asio::any_io_executor executor,
                                     const config::settings& settings,
                                     std::shared_ptr<spdlog::logger> log, resolver_limits limits,
                                     upstream_metrics* metrics)
    : impl_(
          std::make_shared<impl>(std::move(executor), settings, std::move(log), limits, metrics)) {}

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
  attempt_fn<upstream::build_info> attempt =
      [&](upstream::fus_session& session, bool,
          std::string_view& stage) -> net::awaitable<upstream::result<upstream::build_info>> {
    stage = "resolve";
    co_return co_await session.resolve(meta->model, meta->region, meta->version);
  };
  ++self->count.upstream_sessions;
  const auto what = "the build of " + meta->filename;
  auto build = co_await self->with_retries<upstream::build_info>(what, rid, std::move(attempt));
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
  co_return impl_->status_json();
}

net::awaitable<service_result<boost::json::value>> firmware_resolver::manage(
    management_request request) {
  co_return impl_->manage(request);
}

void firmware_resolver::stop() {
  impl_->tasks.cancel_all();
  impl_->downloads.stop_all();
}

void firmware_resolver::on_mirror_event(std::function<void(const mirror_event&)> sink) {
  impl_->mirror_events = std::move(sink);
}

void firmware_resolver::start_mirrors() {
  for (const auto& [model, region] : impl_->configured_mirrors)
    if (!impl_->mirrors.count(pair_key(model, region))) impl_->add_mirror(model, region);
}

}  // namespace fusproxy::server
