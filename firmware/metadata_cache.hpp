#pragma once
// The resolver's memory of upstream's answers (docs/resolver.md, "Caches"): which answer
// may be reused, for how long, and what to serve when upstream fails. It decides nothing
// about upstream and counts nothing; the resolver asks it before and after each lookup.
// Pure: the caller passes the time, so the TTL rules are tested without clocks or sockets.
//
// - a full version's metadata is immutable: kept until restart (LRU, bounded count);
// - `latest`, PDA lookups and version lists are fresh for the TTL; past it the last answer
//   stays (until the LRU drops it) as the stale answer when upstream fails transiently;
// - definitive errors (not_found, not_hosted) are remembered for min(TTL, 30 s); transient
//   errors never (the next request asks upstream again).
//
// Threading: one thread (the resolver's), no locks.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "firmware/lru_map.hpp"
#include "firmware/model/firmware_types.hpp"

namespace fusproxy::server {

// Entries kept by each of the caches (LRU).
struct metadata_cache_limits {
  std::size_t immutable_entries = 4096;  // full-version metadata
  std::size_t ttl_entries = 4096;        // latest/PDA metadata and version lists, each
  std::size_t error_entries = 1024;      // remembered definitive errors
};

// "model|region": the key of a version list (and the base of a metadata key).
std::string pair_key(const std::string& model, const std::string& region);

// The key of a metadata lookup, and whether its answer is immutable (a full version).
struct metadata_key {
  std::string text;
  bool immutable = false;
};
// A full version is keyed by its normalised 4-part form, so that "A/B/C/" and "A/B/C/A"
// spellings meet; a version upstream would refuse keeps its text (and fails upstream,
// uncached).
metadata_key metadata_key_of(const std::string& model, const std::string& region,
                             const version_ref& version);

class metadata_cache {
 public:
  using clock = std::chrono::steady_clock;

  metadata_cache(clock::duration ttl, metadata_cache_limits limits);

  // The TTL of `latest`/PDA answers and version lists (--metadata-ttl).
  clock::duration ttl() const { return ttl_; }

  // --- before asking upstream ---------------------------------------------------------
  // A full version's metadata (immutable: no age), or nullptr.
  const firmware_metadata* build(const std::string& key);
  // A `latest`/PDA answer younger than the TTL, with its age; nullopt past it.
  std::optional<firmware_metadata> fresh_metadata(const std::string& key, clock::time_point now);
  // A version list younger than the TTL, with its age; nullopt past it.
  std::optional<version_list> fresh_versions(const std::string& pair, clock::time_point now);
  // The definitive error remembered for the lookup, while it lasts.
  std::optional<service_error> metadata_error(const std::string& key, clock::time_point now);
  std::optional<service_error> versions_error(const std::string& pair, clock::time_point now);

  // --- upstream answered --------------------------------------------------------------
  // A full version's metadata (a build on disk, or one upstream served).
  void keep_build(const std::string& key, const firmware_metadata& meta, clock::time_point now);
  // The answer to the lookup `asked` of model/region: the served build is immutable
  // whichever way it was asked for, so it is kept under its full version too; a
  // `latest`/PDA answer also under `asked` for the TTL. An error remembered for `asked`
  // is forgotten.
  void keep_metadata(const std::string& model, const std::string& region, const metadata_key& asked,
                     const firmware_metadata& meta, clock::time_point now);
  void keep_versions(const std::string& pair, const version_list& list, clock::time_point now);

  // --- upstream failed (after its retries) --------------------------------------------
  // A definitive failure (is_definitive()), remembered for min(TTL, 30 s).
  void remember_metadata_error(const std::string& key, const service_error& error,
                               clock::time_point now);
  void remember_versions_error(const std::string& pair, const service_error& error,
                               clock::time_point now);
  // The last answer however old, marked stale with its age; nullopt when there is none
  // (an immutable key has none: its answer would have been a hit).
  std::optional<firmware_metadata> stale_metadata(const metadata_key& key, clock::time_point now);
  std::optional<version_list> stale_versions(const std::string& pair, clock::time_point now);

  // --- observability ------------------------------------------------------------------
  struct entry_counts {
    std::size_t builds = 0, moving = 0, versions = 0, errors = 0;
  };
  entry_counts counts() const;
  // The builds whose metadata is known, most recently used first, at most `limit`.
  std::vector<firmware_metadata> known_builds(std::size_t limit) const;

 private:
  template <class T>
  struct timed {
    T value;
    clock::time_point fetched;
  };
  struct remembered_error {
    service_error error;
    clock::time_point expires;
  };
  std::optional<service_error> remembered(const std::string& key, clock::time_point now);

  clock::duration ttl_;
  clock::duration error_ttl_;
  lru_map<timed<firmware_metadata>> builds_;  // full version -> metadata, immutable
  lru_map<timed<firmware_metadata>> moving_;  // latest / PDA -> metadata, TTL
  lru_map<timed<version_list>> lists_;        // model|region -> versions, TTL
  lru_map<remembered_error> errors_;          // definitive errors, briefly
};

}  // namespace fusproxy::server
