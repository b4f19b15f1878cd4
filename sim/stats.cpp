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

void sim_stats::count_request(std::string_view route, unsigned http_status,
                              std::string_view fus_status) {
  std::lock_guard lock(mutex_);
  ++requests_total_;
  auto& r = entry(routes_, route);
  ++r.requests;
  ++r.http[std::to_string(http_status)];
  if (!fus_status.empty()) ++r.fus[std::string(fus_status)];
}

void sim_stats::count_session() {
  std::lock_guard lock(mutex_);
  ++sessions_;
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
  requests_total_ = sessions_ = started_ = completed_ = aborted_ = 0;
  routes_.clear();
  builds_.clear();
}

boost::json::object sim_stats::to_json() const {
  std::lock_guard lock(mutex_);
  boost::json::object routes;
  for (const auto& [name, r] : routes_) {
    boost::json::object http, fus;
    for (const auto& [code, n] : r.http) http[code] = n;
    for (const auto& [code, n] : r.fus) fus[code] = n;
    routes[name] = {{"requests", r.requests}, {"http", std::move(http)}, {"fus", std::move(fus)}};
  }
  boost::json::object builds;
  for (const auto& [name, b] : builds_)
    builds[name] = {
        {"bytes_served", b.bytes}, {"downloads", b.downloads}, {"completed", b.completed}};
  boost::json::object out;
  out["requests_total"] = requests_total_;
  out["routes"] = std::move(routes);
  out["sessions_created"] = sessions_;
  out["downloads"] = {{"started", started_}, {"completed", completed_}, {"aborted", aborted_}};
  out["builds"] = std::move(builds);
  return out;
}

}  // namespace fusproxy::sim
