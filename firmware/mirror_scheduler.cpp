#include "firmware/mirror_scheduler.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "firmware/download_manager.hpp"
#include "protocol/http_date.hpp"

namespace fusproxy::server {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

mirror_scheduler::mirror_scheduler(net::any_io_executor executor, latest_source latest,
                                   std::shared_ptr<download_manager> downloads,
                                   std::shared_ptr<spdlog::logger> log, steady::duration period)
    : executor_(executor),
      latest_(std::move(latest)),
      downloads_(std::move(downloads)),
      log_(log),
      period_(period),
      tasks_(std::move(executor), std::move(log), "resolver") {}

std::string mirror_scheduler::key_of(const std::string& model, const std::string& region) {
  return model + "|" + region;
}

void mirror_scheduler::start(const std::vector<std::pair<std::string, std::string>>& pairs) {
  for (const auto& [model, region] : pairs)
    if (!entries_.count(key_of(model, region))) add_entry(model, region);
}

service_result<boost::json::value> mirror_scheduler::add(const std::string& model,
                                                         const std::string& region) {
  if (model.empty() || region.empty())
    return service_error{firmware_errc::bad_request, "a mirror needs a model and a region", {}};
  if (!entries_.count(key_of(model, region))) add_entry(model, region);
  return to_json(entries_.at(key_of(model, region)));
}

service_result<boost::json::value> mirror_scheduler::remove(const std::string& model,
                                                            const std::string& region) {
  if (!entries_.erase(key_of(model, region)))
    return service_error{firmware_errc::not_found, model + "/" + region + " is not mirrored", {}};
  log_->info("mirror: {}/{} removed (its cached builds stay until evicted)", model, region);
  return boost::json::object{{"removed", true}};
}

boost::json::array mirror_scheduler::list() const {
  boost::json::array a;
  for (const auto& [k, e] : entries_) a.push_back(to_json(e));
  return a;
}

void mirror_scheduler::on_event(std::function<void(const mirror_event&)> sink) {
  events_ = std::move(sink);
}

void mirror_scheduler::stop() {
  tasks_.cancel_all();
}

boost::json::object mirror_scheduler::to_json(const entry& e) {
  boost::json::object o{
      {"model", e.model},
      {"region", e.region},
      {"version", e.version},
      {"state", e.state},
      {"last_checked", e.last_checked ? http_date::iso8601_utc(e.last_checked) : ""}};
  if (!e.error.empty()) o["error"] = e.error;
  return o;
}

void mirror_scheduler::add_entry(const std::string& model, const std::string& region) {
  const auto key = key_of(model, region);
  auto& e = entries_[key];
  e.model = model;
  e.region = region;
  e.generation = ++generation_;
  log_->info("mirror: keeping {}/{} fetched (checked every {} s)", model, region,
             std::chrono::duration_cast<std::chrono::seconds>(period_).count());
  tasks_.spawn(run(shared_from_this(), key, e.generation), "mirror " + key);
}

void mirror_scheduler::emit(mirror_event::kind_t kind, const firmware_metadata& build,
                            std::string previous) {
  if (events_) events_(mirror_event{kind, build, std::move(previous)});
}

// Every period: resolve latest, fetch it to the end. The entry is looked up again after
// each suspension: it may have been removed (or removed and added again: a new loop) while
// this one waited.
net::awaitable<void> mirror_scheduler::run(std::shared_ptr<mirror_scheduler> self, std::string key,
                                           std::uint64_t generation) {
  const auto current = [&]() -> entry* {
    const auto it = self->entries_.find(key);
    return it != self->entries_.end() && it->second.generation == generation ? &it->second
                                                                             : nullptr;
  };
  for (;;) {
    auto* m = current();
    if (!m) co_return;
    const auto model = m->model, region = m->region;
    // Named locals: GCC 12 mishandles temporaries passed straight into co_await f(...).
    auto lookup = self->latest_(model, region);
    auto source = co_await std::move(lookup);
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
      auto job = self->downloads_->job_for(*source);
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
        if (ok) self->downloads_->cache().touch(source->meta.filename);
      }
    }
    // Failures are retried sooner than the period.
    const auto wait =
        ok ? self->period_ : std::min<steady::duration>(self->period_, std::chrono::seconds(30));
    net::steady_timer t(self->executor_, wait);
    auto [ec] = co_await t.async_wait(net::as_tuple(net::use_awaitable));
    if (ec == net::error::operation_aborted) co_return;  // stop()
  }
}

}  // namespace fusproxy::server
