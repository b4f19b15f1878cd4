#include "sim/stats.hpp"

#include <boost/json.hpp>

namespace fusproxy::sim {

namespace {
template <class Map>
auto& entry(Map& m, std::string_view key) {
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(std::string(key), typename Map::mapped_type{}).first;
  return it->second;
}
}  // namespace

void sim_stats::count_request(std::string_view route, std::string_view kind, unsigned http_status,
                              std::string_view fus_status) {
  const std::string code = http_status == 0 ? "reset" : std::to_string(http_status);
  std::lock_guard lock(mutex_);
  ++requests_total_;
  auto& r = entry(routes_, route);
  ++r.requests;
  ++r.http[code];
  if (!fus_status.empty()) ++r.fus[std::string(fus_status)];
  auto& k = entry(kinds_, kind.empty() ? std::string_view("other") : kind);
  ++k.requests;
  ++k.http[code];
  if (!fus_status.empty()) ++k.fus[std::string(fus_status)];
}

void sim_stats::count_session(bool reused) {
  std::lock_guard lock(mutex_);
  ++(reused ? sessions_reused_ : sessions_);
}

void sim_stats::count_strict_refusal(std::string_view rule) {
  std::lock_guard lock(mutex_);
  ++entry(strict_refusals_, rule);
}

void sim_stats::download_started(std::string_view binary_name) {
  std::lock_guard lock(mutex_);
  ++started_;
  ++entry(builds_, binary_name).downloads;
}

void sim_stats::download_bytes(std::string_view binary_name, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  entry(builds_, binary_name).bytes += bytes;
}

void sim_stats::download_finished(std::string_view binary_name, bool complete) {
  std::lock_guard lock(mutex_);
  if (complete) {
    ++completed_;
    ++entry(builds_, binary_name).completed;
  } else {
    ++aborted_;
  }
}

void sim_stats::reset() {
  std::lock_guard lock(mutex_);
  requests_total_ = sessions_ = sessions_reused_ = started_ = completed_ = aborted_ = 0;
  routes_.clear();
  kinds_.clear();
  strict_refusals_.clear();
  builds_.clear();
}

boost::json::object sim_stats::to_json() const {
  std::lock_guard lock(mutex_);
  const auto counts = [](const auto& table) {
    boost::json::object out;
    for (const auto& [name, r] : table) {
      boost::json::object http, fus;
      for (const auto& [code, n] : r.http) http[code] = n;
      for (const auto& [code, n] : r.fus) fus[code] = n;
      out[name] = {{"requests", r.requests}, {"http", std::move(http)}, {"fus", std::move(fus)}};
    }
    return out;
  };
  boost::json::object refusals;
  for (const auto& rule : {"init_not_informed", "history_without_session", "fota_user_agent"})
    refusals[rule] = 0;
  for (const auto& [rule, n] : strict_refusals_) refusals[rule] = n;
  boost::json::object builds;
  for (const auto& [name, b] : builds_)
    builds[name] = {
        {"bytes_served", b.bytes}, {"downloads", b.downloads}, {"completed", b.completed}};
  boost::json::object out;
  out["requests_total"] = requests_total_;
  out["routes"] = counts(routes_);
  out["kinds"] = counts(kinds_);
  out["sessions_created"] = sessions_;
  out["sessions_reused"] = sessions_reused_;
  out["strict_refusals"] = std::move(refusals);
  out["downloads"] = {{"started", started_}, {"completed", completed_}, {"aborted", aborted_}};
  out["builds"] = std::move(builds);
  return out;
}

}  // namespace fusproxy::sim
