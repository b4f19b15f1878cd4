#include "firmware/metadata_cache.hpp"

#include <algorithm>

#include "protocol/versions.hpp"

namespace fusproxy::server {

namespace {

using clock = metadata_cache::clock;

std::uint64_t seconds_since(clock::time_point t, clock::time_point now) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now - t).count());
}

// A definitive error says something about the resource, which can change upstream (a build
// gets published): remembered long enough to spare upstream a burst of identical misses,
// never longer than the TTL of an answer.
constexpr clock::duration longest_error_memory = std::chrono::seconds(30);

// A copy of a cached answer that says how old it is, and whether it is served stale.
template <class Timed>
auto aged(const Timed& entry, clock::time_point now, bool stale) {
  auto answer = entry.value;
  answer.fresh = {seconds_since(entry.fetched, now), stale};
  return answer;
}

}  // namespace

std::string pair_key(const std::string& model, const std::string& region) {
  return model + "|" + region;
}

metadata_key metadata_key_of(const std::string& model, const std::string& region,
                             const version_ref& version) {
  const auto base = pair_key(model, region) + "|";
  switch (version.kind) {
    case version_ref::latest:
      return {base + "latest", false};
    case version_ref::pda:
      return {base + "pda:" + version.text, false};
    case version_ref::full:
      break;
  }
  auto normal = protocol::normalize_version(version.text);
  return {base + (normal ? *normal : version.text), true};
}

metadata_cache::metadata_cache(clock::duration ttl, metadata_cache_limits limits)
    : ttl_(ttl),
      error_ttl_(std::min<clock::duration>(ttl, longest_error_memory)),
      builds_(limits.immutable_entries),
      moving_(limits.ttl_entries),
      lists_(limits.ttl_entries),
      errors_(limits.error_entries) {}

const firmware_metadata* metadata_cache::build(const std::string& key) {
  auto* hit = builds_.find(key);
  return hit ? &hit->value : nullptr;
}

std::optional<firmware_metadata> metadata_cache::fresh_metadata(const std::string& key,
                                                                clock::time_point now) {
  const auto* hit = moving_.find(key);
  if (!hit || now - hit->fetched >= ttl_) return std::nullopt;
  return aged(*hit, now, false);
}

std::optional<version_list> metadata_cache::fresh_versions(const std::string& pair,
                                                           clock::time_point now) {
  const auto* hit = lists_.find(pair);
  if (!hit || now - hit->fetched >= ttl_) return std::nullopt;
  return aged(*hit, now, false);
}

// Metadata errors are keyed by the lookup's key, version-list errors by "versions|" and
// the pair: the two never meet ("versions" is no model).
std::optional<service_error> metadata_cache::metadata_error(const std::string& key,
                                                            clock::time_point now) {
  return remembered(key, now);
}

std::optional<service_error> metadata_cache::versions_error(const std::string& pair,
                                                            clock::time_point now) {
  return remembered("versions|" + pair, now);
}

std::optional<service_error> metadata_cache::remembered(const std::string& key,
                                                        clock::time_point now) {
  // An expired error stays until the LRU drops it or the lookup succeeds: harmless, it is
  // never answered again.
  auto* err = errors_.find(key);
  if (!err || now >= err->expires) return std::nullopt;
  return err->error;
}

void metadata_cache::keep_build(const std::string& key, const firmware_metadata& meta,
                                clock::time_point now) {
  builds_.put(key, {meta, now});
}

void metadata_cache::keep_metadata(const std::string& model, const std::string& region,
                                   const metadata_key& asked, const firmware_metadata& meta,
                                   clock::time_point now) {
  const version_ref served{version_ref::full, meta.version};
  keep_build(metadata_key_of(model, region, served).text, meta, now);
  if (!asked.immutable) moving_.put(asked.text, {meta, now});
  errors_.erase(asked.text);
}

void metadata_cache::keep_versions(const std::string& pair, const version_list& list,
                                   clock::time_point now) {
  lists_.put(pair, {list, now});
}

void metadata_cache::remember_metadata_error(const std::string& key, const service_error& error,
                                             clock::time_point now) {
  errors_.put(key, {error, now + error_ttl_});
}

void metadata_cache::remember_versions_error(const std::string& pair, const service_error& error,
                                             clock::time_point now) {
  errors_.put("versions|" + pair, {error, now + error_ttl_});
}

std::optional<firmware_metadata> metadata_cache::stale_metadata(const metadata_key& key,
                                                                clock::time_point now) {
  if (key.immutable) return std::nullopt;
  const auto* last = moving_.find(key.text);
  if (!last) return std::nullopt;
  return aged(*last, now, true);
}

std::optional<version_list> metadata_cache::stale_versions(const std::string& pair,
                                                           clock::time_point now) {
  const auto* last = lists_.find(pair);
  if (!last) return std::nullopt;
  return aged(*last, now, true);
}

metadata_cache::entry_counts metadata_cache::counts() const {
  return {builds_.size(), moving_.size(), lists_.size(), errors_.size()};
}

std::vector<firmware_metadata> metadata_cache::known_builds(std::size_t limit) const {
  std::vector<firmware_metadata> out;
  for (const auto& [key, entry] : builds_.entries()) {
    if (out.size() == limit) break;
    out.push_back(entry.value);
  }
  return out;
}

}  // namespace fusproxy::server
