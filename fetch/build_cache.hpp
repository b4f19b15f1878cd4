#pragma once
// The build cache: owns --cache-dir. An index of the builds on disk (verified files in
// builds/, partial files in partial/), their metadata persisted beside them, sizes, last
// use, pins (client streams reading, the fetch job writing), eviction above
// --cache-max-bytes, and the start-up scan that removes leftovers. The download_manager
// asks it where to write a build and publishes into it; the resolver asks it for a
// build's metadata when upstream cannot answer (offline).
//
// Layout (docs/cache.md):
//   builds/<plain name>         verified plain zip (renamed there only after the CRC matched)
//   builds/<plain name>.json    its metadata (firmware_metadata + the upstream build_info),
//                               written to .json.tmp and renamed BEFORE the data is renamed
//   builds/<plain name>.lz4index   what decodes of its LZ4 entries learnt (optional)
//   partial/<plain name>.part   sparse plain bytes of a fetch in progress
//   partial/<plain name>.part.map  the present runs + their cipher CRCs
//   partial/<plain name>.part.json  the partial build's record (the same format): the scan
//                               indexes the partial with it, counting the bytes present
//   partial/<plain name>.part.lz4index  as in builds/, moved there on publication
//
// Threading: one executor (thread), like the resolver; no locks.
#include <boost/json/array.hpp>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "firmware/model/firmware_types.hpp"
#include "upstream/fus_client.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

struct upstream_metrics;

// --- pure parts (unit-tested) -----------------------------------------------------------------

// The persisted metadata of a build: what serving it (plain and ?encrypted=1) from disk needs
// without upstream. The AES key is stored: the cache directory is private to the service.
struct cached_build_record {
  firmware_metadata meta;
  upstream::build_info build;
};
std::string serialize_record(const cached_build_record& r);
// nullopt when the text is not a complete record (torn write, hand edit, older format).
std::optional<cached_build_record> parse_record(std::string_view text);

// One file found by the start-up scan.
struct scanned_file {
  std::string name;  // file name inside its directory
  std::uint64_t size = 0;
  bool in_builds = false;  // builds/ (else partial/)
};

enum class scan_action { keep_verified, keep_partial, remove };

struct scan_decision {
  std::string name;
  bool in_builds = false;
  scan_action action = scan_action::remove;
  std::string reason;  // for remove: why (logged)
};

// What the scan does with each file, given the listing of builds/ and partial/ and three
// probes: the parsed record of a builds/<x>.json or of a partial/<x>.part.json (nullopt:
// missing or unparsable) and the cipher total a partial/<x>.part.map declares (nullopt:
// unparsable). Rules:
// - *.tmp anywhere: remove (an interrupted write);
// - builds/<x> with a record whose plain_size == its size: keep (verified), with its .json
//   and its .lz4index; otherwise they all go (unverifiable: wrong size, metadata missing or
//   torn);
// - builds/<x>.json or builds/<x>.lz4index without its data file: remove;
// - partial/<x>.part with a map whose total fits (plain size within 16 bytes below it) and a
//   record naming it with that size: keep, with its map, record and .lz4index; otherwise
//   they all go (the fetch restarts; a part without a record cannot be counted against
//   --cache-max-bytes nor evicted);
// - partial/<x>.part.map, .part.json, .part.lz4index without a part: remove; anything
//   else: remove.
using record_probe =
    std::function<std::optional<cached_build_record>(const std::string& json_name)>;
std::vector<scan_decision> decide_scan(
    const std::vector<scanned_file>& files, const record_probe& record,
    const std::function<std::optional<std::uint64_t>(const std::string& map_name)>& map_total,
    const record_probe& partial_record);

// An entry as eviction sees it.
struct lru_candidate {
  std::string name;
  std::uint64_t bytes = 0;
  std::uint64_t last_used = 0;  // a logical clock: larger is more recent
  bool busy = false;            // pinned (read) or being written: never evicted
};
// The entries to remove, least recently used first, so that total + incoming <= limit
// (limit 0: none). Verified and partial builds alike: a partial build nobody reads or
// fetches now is evicted by its last use (its present bytes are what it frees). When busy
// entries alone keep it above the limit, evicts every idle entry it can and returns them
// (the caller then decides whether incoming fits).
std::vector<std::string> choose_victims(const std::vector<lru_candidate>& entries,
                                        std::uint64_t limit, std::uint64_t incoming);

// --- the cache ------------------------------------------------------------------------------

struct cache_paths {
  std::filesystem::path part, map, final, meta;
  std::filesystem::path partial_meta;  // partial/<plain>.part.json
  std::filesystem::path lz4_index, partial_lz4_index;
};

struct cache_entry {
  cached_build_record record;
  bool verified = false;
  // Counted against --cache-max-bytes: verified: plain size; partial: its plain size while
  // a complete fetch reserves it, else the bytes present (from its map at the scan).
  std::uint64_t bytes = 0;
  std::uint64_t last_used = 0;   // logical clock
  std::time_t last_used_at = 0;  // wall clock, for status
  std::time_t stored_at = 0;     // wall clock: when it was verified (its record's mtime)
  unsigned pins = 0;             // client streams reading it
};

class build_cache {
 public:
  build_cache(std::filesystem::path dir, std::uint64_t max_bytes,
              std::shared_ptr<spdlog::logger> log, upstream_metrics* metrics = nullptr);

  // Start-up: creates the directories, applies decide_scan, indexes what stays, logs what
  // it removed. Never throws on a bad entry (it is removed); throws std::runtime_error when
  // the directory cannot be created.
  void scan();

  const std::filesystem::path& dir() const { return dir_; }
  // /readyz asks (through the firmware service): can a new file be created in the directory
  // now? It is created again if it vanished, and a probe file is made and removed. nullopt:
  // writable; else why not, naming the directory.
  std::optional<std::string> why_not_writable() const;
  std::uint64_t max_bytes() const { return max_bytes_; }
  std::uint64_t used_bytes() const;
  cache_paths paths_for(const firmware_metadata& meta) const;

  // The entry of a build (by BINARY_NAME), or nullptr.
  const cache_entry* find(const std::string& name) const;
  // A verified build of model/region/version (4-part, '/').
  const cache_entry* find_version(const std::string& model, const std::string& region,
                                  const std::string& version) const;
  // The newest verified build of model/region (largest LAST_MODIFIED, then version text).
  const cache_entry* newest(const std::string& model, const std::string& region) const;

  // A fetch starts (or resumes): the build is indexed as partial, its record written to
  // partial/<plain>.part.json when new (bytes: 0 until set_partial_bytes; an entry the scan
  // indexed keeps its bytes).
  void track_partial(const cached_build_record& record);
  // A partial build's bytes as they count against --cache-max-bytes: its plain size while a
  // complete fetch reserves it, the bytes present while it is fetched sparsely (issue 14).
  void set_partial_bytes(const std::string& name, std::uint64_t bytes);
  // Writes builds/<plain>.json (to .tmp, renamed). Called after the CRC matched and before
  // the data file is renamed; an error leaves no .json behind.
  std::error_code write_record(const cached_build_record& record);
  // The data file is in builds/: the entry is verified (its .lz4index moves to builds/, its
  // partial record goes).
  void published(const std::string& name);
  // A fetch could not open its file: forget the partial entry (and its partial record).
  void forget(const std::string& name);

  // What decodes of the build's LZ4 entries learnt (a text the firmware domain writes and
  // parses: firmware/lz4_index_store), kept beside the build's record and removed with it.
  // Read: nullopt when none (or the build is not in the cache). Write: temp + rename;
  // an error when the build is not in the cache (evicted meanwhile) or the disk refuses.
  std::optional<std::string> read_lz4_index(const std::string& name) const;
  std::error_code write_lz4_index(const std::string& name, const std::string& text);
  // Removes it (the build's bytes were refetched after a CRC mismatch: what was learnt from
  // them is not trusted).
  void remove_lz4_index(const std::string& name);
  // Marks a use (a download started).
  void touch(const std::string& name);

  // RAII pin: a client stream reading the build (never evicted while held).
  class pin {
   public:
    pin() = default;
    pin(build_cache* cache, std::string name);
    pin(pin&& o) noexcept;
    pin& operator=(pin&& o) noexcept;
    ~pin();

   private:
    build_cache* cache_ = nullptr;
    std::string name_;
  };
  pin acquire(const std::string& name);

  // Removes least recently used idle builds (verified or partial) until used + incoming fits
  // the limit. `busy(name)`: also in use elsewhere (its fetch job is writing). Returns the
  // removed names (the caller drops its jobs for them). Whether incoming fits then: fits().
  std::vector<std::string> evict(std::uint64_t incoming,
                                 const std::function<bool(const std::string&)>& busy);
  bool fits(std::uint64_t incoming) const;
  // What evict() could free now (idle builds), without evicting anything: a HEAD
  // or a 304 answers whether a build would fit, and only a body that starts evicts.
  std::uint64_t evictable_bytes(const std::function<bool(const std::string&)>& busy) const;

  // Operator removal: false (and why) when in use.
  enum class remove_result { removed, not_found, in_use };
  remove_result remove(const std::string& name,
                       const std::function<bool(const std::string&)>& busy);

  // JSON array of entries: model, region, version, filename, plain_filename, size,
  // plain_size, bytes (counted against the limit), verified, last_used (ISO 8601), readers,
  // path.
  boost::json::array status_json() const;
  const std::map<std::string, cache_entry>& entries() const { return entries_; }

 private:
  void remove_files(const cache_entry& e);
  std::uint64_t tick() { return ++clock_; }
  // Sets the cache size and build count gauges from the verified entries (when recording).
  void update_gauges();

  std::filesystem::path dir_;
  std::uint64_t max_bytes_;
  std::shared_ptr<spdlog::logger> log_;
  std::map<std::string, cache_entry> entries_;  // BINARY_NAME -> entry
  std::uint64_t clock_ = 0;
  upstream_metrics* metrics_ = nullptr;  // optional: unit tests build caches without one
};

}  // namespace fusproxy::server
