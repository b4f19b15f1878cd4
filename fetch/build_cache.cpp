#include "fetch/build_cache.hpp"

#include <fcntl.h>
#include <spdlog/logger.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <stdexcept>

#include "crypto/keys.hpp"
#include "fetch/fetch_plan.hpp"
#include "fetch/file_io.hpp"
#include "fetch/json_fields.hpp"
#include "obs/metrics.hpp"
#include "protocol/http_date.hpp"

namespace fusproxy::server {

namespace fs = std::filesystem;
namespace json = boost::json;

// --- records --------------------------------------------------------------------------------

std::string serialize_record(const cached_build_record& r) {
  const auto& m = r.meta;
  const auto& b = r.build;
  const auto& i = b.inform;
  json::object files{{"bl", m.files.bl},
                     {"ap", m.files.ap},
                     {"cp", m.files.cp},
                     {"csc", m.files.csc},
                     {"home_csc", m.files.home_csc}};
  json::object o{
      {"format", 1},
      {"model", m.model},
      {"region", m.region},
      {"version", m.version},
      {"os_version", m.os_version},
      {"filename", m.filename},
      {"plain_filename", m.plain_filename},
      {"encryption", m.encryption},
      {"size", m.size},
      {"plain_size", m.plain_size},
      {"crc32", m.crc32 ? json::value(static_cast<std::uint64_t>(*m.crc32)) : json::value(nullptr)},
      {"last_modified", http_date::iso8601_utc(m.last_modified)},
      {"last_modified_epoch", static_cast<std::int64_t>(m.last_modified)},
      {"changelog_url", m.changelog_url},
      {"files", files},
      {"etag", representation_etag(m, download_variant::plain)},
      {"etag_encrypted", representation_etag(m, download_variant::encrypted)},
      {"build", json::object{{"model", b.model},
                             {"region", b.region},
                             {"version", b.version},
                             {"encryption", std::string(upstream::to_string(b.enc))},
                             {"key", crypto::to_hex(b.key)},
                             {"binary_name", i.binary_name},
                             {"model_path", i.model_path},
                             {"byte_size", i.byte_size},
                             {"crc", i.crc ? json::value(static_cast<std::uint64_t>(*i.crc))
                                           : json::value(nullptr)},
                             {"served_version", i.served_version},
                             {"logic_value", i.logic_value},
                             {"status", i.status},
                             {"model_type", i.model_type},
                             {"local_code", i.local_code},
                             {"model_name", i.model_name},
                             {"os_version", i.os_version},
                             {"last_modified", i.last_modified},
                             {"description", i.description}}},
  };
  return json::serialize(o);
}

namespace {
using json_fields::get_string;
using json_fields::get_u64;
// A CRC-32 that may be null (BinaryInform without BINARY_CRC); false when neither.
bool get_crc(const json::object& o, std::string_view k, std::optional<std::uint32_t>& out) {
  std::optional<std::uint64_t> crc;
  if (!json_fields::get_optional_u64(o, k, crc) || (crc && *crc > 0xffffffffu)) return false;
  out = crc ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(*crc)) : std::nullopt;
  return true;
}
}  // namespace

std::optional<cached_build_record> parse_record(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  cached_build_record r;
  auto& m = r.meta;
  std::uint64_t format = 0, lm = 0;
  if (!get_u64(o, "format", format) || format != 1) return std::nullopt;
  if (!get_string(o, "model", m.model) || !get_string(o, "region", m.region) ||
      !get_string(o, "version", m.version) || !get_string(o, "os_version", m.os_version) ||
      !get_string(o, "filename", m.filename) ||
      !get_string(o, "plain_filename", m.plain_filename) ||
      !get_string(o, "encryption", m.encryption) || !get_u64(o, "size", m.size) ||
      !get_u64(o, "plain_size", m.plain_size) || !get_crc(o, "crc32", m.crc32) ||
      !get_u64(o, "last_modified_epoch", lm) || !get_string(o, "changelog_url", m.changelog_url))
    return std::nullopt;
  if (m.filename.empty() || m.plain_filename.empty()) return std::nullopt;
  if (m.size < 16 || m.size % 16 != 0 || m.plain_size >= m.size || m.size - m.plain_size > 16)
    return std::nullopt;
  m.last_modified = static_cast<std::time_t>(lm);
  if (const auto* f = o.if_contains("files"); f && f->is_object()) {
    const auto& fo = f->as_object();
    get_string(fo, "bl", m.files.bl);
    get_string(fo, "ap", m.files.ap);
    get_string(fo, "cp", m.files.cp);
    get_string(fo, "csc", m.files.csc);
    get_string(fo, "home_csc", m.files.home_csc);
  }
  const auto* bv = o.if_contains("build");
  if (!bv || !bv->is_object()) return std::nullopt;
  const auto& bo = bv->as_object();
  auto& b = r.build;
  auto& i = b.inform;
  std::string enc, key;
  if (!get_string(bo, "model", b.model) || !get_string(bo, "region", b.region) ||
      !get_string(bo, "version", b.version) || !get_string(bo, "encryption", enc) ||
      !get_string(bo, "key", key) || !get_string(bo, "binary_name", i.binary_name) ||
      !get_string(bo, "model_path", i.model_path) || !get_u64(bo, "byte_size", i.byte_size) ||
      !get_crc(bo, "crc", i.crc))
    return std::nullopt;
  if (enc == "enc4")
    b.enc = upstream::encryption::enc4;
  else if (enc == "enc2")
    b.enc = upstream::encryption::enc2;
  else
    return std::nullopt;
  auto k = crypto::key_from_hex(key);
  if (!k) return std::nullopt;
  b.key = *k;
  get_string(bo, "served_version", i.served_version);
  get_string(bo, "logic_value", i.logic_value);
  get_string(bo, "status", i.status);
  get_string(bo, "model_type", i.model_type);
  get_string(bo, "local_code", i.local_code);
  get_string(bo, "model_name", i.model_name);
  get_string(bo, "os_version", i.os_version);
  get_string(bo, "last_modified", i.last_modified);
  get_string(bo, "description", i.description);
  i.files = {m.files.bl, m.files.ap, m.files.cp, m.files.csc, m.files.home_csc};
  // The record must describe one build consistently.
  if (i.binary_name != m.filename || i.byte_size != m.size || i.crc != m.crc32) return std::nullopt;
  return r;
}

// --- scan decisions -------------------------------------------------------------------------

std::vector<scan_decision> decide_scan(
    const std::vector<scanned_file>& files, const record_probe& record,
    const std::function<std::optional<std::uint64_t>(const std::string&)>& map_total,
    const record_probe& partial_record) {
  std::map<std::string, const scanned_file*> builds, partial;
  for (const auto& f : files) (f.in_builds ? builds : partial)[f.name] = &f;
  std::vector<scan_decision> out;
  std::set<std::pair<bool, std::string>> decided;
  const auto decide = [&](const scanned_file& f, scan_action a, std::string why) {
    if (!decided.insert({f.in_builds, f.name}).second) return;
    out.push_back({f.name, f.in_builds, a, std::move(why)});
  };
  const auto ends = [](const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) == 0;
  };
  // The files that share a data file's fate: decided with it (kept or removed together).
  const auto decide_companions =
      [&](const std::map<std::string, const scanned_file*>& dir, const std::string& data,
          std::initializer_list<std::string_view> suffixes, scan_action a, const std::string& why) {
        for (const auto suffix : suffixes)
          if (const auto it = dir.find(data + std::string(suffix)); it != dir.end())
            decide(*it->second, a, why);
      };
  constexpr std::string_view index_suffix = ".lz4index";
  for (const auto& [name, f] : builds) {
    if (ends(name, ".tmp")) {
      decide(*f, scan_action::remove, "an interrupted write");
      continue;
    }
    if (ends(name, ".json") || ends(name, index_suffix)) {
      const auto data = name.substr(0, name.rfind('.'));
      if (!builds.count(data)) decide(*f, scan_action::remove, "metadata without its build");
      continue;  // otherwise decided with its data file
    }
    const auto meta_name = name + ".json";
    const auto meta_it = builds.find(meta_name);
    std::optional<cached_build_record> rec;
    if (meta_it != builds.end()) rec = record(meta_name);
    std::string why;
    if (meta_it == builds.end())
      why = "no metadata (unverifiable)";
    else if (!rec)
      why = "metadata does not parse (unverifiable)";
    else if (rec->meta.plain_filename != name)
      why = "metadata names another file";
    else if (rec->meta.plain_size != f->size)
      why = "size " + std::to_string(f->size) + " differs from the verified size " +
            std::to_string(rec->meta.plain_size);
    const auto action = why.empty() ? scan_action::keep_verified : scan_action::remove;
    decide(*f, action, why);
    decide_companions(builds, name, {".json", index_suffix}, action, why);
  }
  for (const auto& [name, f] : partial) {
    if (ends(name, ".tmp")) {
      decide(*f, scan_action::remove, "an interrupted write");
      continue;
    }
    if (ends(name, ".part.map") || ends(name, ".part.json") || ends(name, ".part.lz4index")) {
      const auto part = name.substr(0, name.rfind(".part.") + 5);
      if (!partial.count(part)) decide(*f, scan_action::remove, "left without its part file");
      continue;  // otherwise decided with its part
    }
    if (!ends(name, ".part")) {
      decide(*f, scan_action::remove, "not a cache file");
      continue;
    }
    const auto map_name = name + ".map";
    const auto map_it = partial.find(map_name);
    const auto rec_name = name + ".json";
    std::optional<std::uint64_t> total;
    std::optional<cached_build_record> rec;
    std::string why;
    if (map_it == partial.end()) {
      why = "part without a map (the fetch restarts)";
    } else if (total = map_total(map_name); !total) {
      why = "map does not parse (the fetch restarts)";
    } else if (f->size >= *total || *total - f->size > 16) {
      why = "part size " + std::to_string(f->size) + " does not fit the map's total " +
            std::to_string(*total) + " (the fetch restarts)";
    } else if (!partial.count(rec_name) || !(rec = partial_record(rec_name))) {
      why = "part without a record: it cannot be counted against the limit (the fetch restarts)";
    } else if (rec->meta.plain_filename + ".part" != name || rec->meta.size != *total) {
      why = "the part's record names another file or size (the fetch restarts)";
    }
    const auto action = why.empty() ? scan_action::keep_partial : scan_action::remove;
    decide(*f, action, why);
    decide_companions(partial, name, {".map", ".json", index_suffix}, action, why);
  }
  return out;
}

// --- eviction -------------------------------------------------------------------------------

std::vector<std::string> choose_victims(const std::vector<lru_candidate>& entries,
                                        std::uint64_t limit, std::uint64_t incoming) {
  if (limit == 0) return {};
  std::uint64_t total = incoming;
  for (const auto& e : entries) total += e.bytes;
  std::vector<const lru_candidate*> idle;
  for (const auto& e : entries)
    if (!e.busy) idle.push_back(&e);
  std::sort(idle.begin(), idle.end(), [](const auto* a, const auto* b) {
    return a->last_used != b->last_used ? a->last_used < b->last_used : a->name < b->name;
  });
  std::vector<std::string> out;
  for (const auto* e : idle) {
    if (total <= limit) break;
    out.push_back(e->name);
    total -= e->bytes;
  }
  return out;
}

// --- the cache ------------------------------------------------------------------------------

namespace {
std::time_t now_wall() {
  return std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
}
std::time_t mtime_or_now(const fs::path& p) {
  std::error_code ec;
  const auto mtime = fs::last_write_time(p, ec);
  return ec ? now_wall()
            : std::chrono::system_clock::to_time_t(std::chrono::file_clock::to_sys(mtime));
}
// Writes `text` to `path` through `path`.tmp and a rename: a reader (or the next scan) sees
// the old file or the new one, never a torn one. An error leaves no .tmp behind.
std::error_code write_atomically(const fs::path& path, const std::string& text) {
  const auto tmp = fs::path(path).concat(".tmp");
  std::error_code ec;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return std::make_error_code(std::errc::no_space_on_device);
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
  return ec;
}
}  // namespace

build_cache::build_cache(fs::path dir, std::uint64_t max_bytes, std::shared_ptr<spdlog::logger> log,
                         upstream_metrics* metrics)
    : dir_(std::move(dir)), max_bytes_(max_bytes), log_(std::move(log)), metrics_(metrics) {}

void build_cache::update_gauges() {
  if (!metrics_) return;
  std::uint64_t bytes = 0, builds = 0;
  for (const auto& [name, e] : entries_) {
    if (!e.verified) continue;  // a partial's bytes are a reservation, not cached data
    bytes += e.bytes;
    ++builds;
  }
  metrics_->cache_size_bytes.set(static_cast<std::int64_t>(bytes));
  metrics_->cache_builds.set(static_cast<std::int64_t>(builds));
}

cache_paths build_cache::paths_for(const firmware_metadata& meta) const {
  const auto name = meta.plain_filename.empty() ? meta.filename : meta.plain_filename;
  cache_paths p;
  p.part = dir_ / "partial" / (name + ".part");
  p.map = dir_ / "partial" / (name + ".part.map");
  p.final = dir_ / "builds" / name;
  p.meta = dir_ / "builds" / (name + ".json");
  p.partial_meta = dir_ / "partial" / (name + ".part.json");
  p.lz4_index = dir_ / "builds" / (name + ".lz4index");
  p.partial_lz4_index = dir_ / "partial" / (name + ".part.lz4index");
  return p;
}

void build_cache::scan() {
  std::error_code ec;
  for (const auto* sub : {"builds", "partial"}) {
    fs::create_directories(dir_ / sub, ec);
    if (ec)
      throw std::runtime_error("--cache-dir: cannot create " + (dir_ / sub).string() + ": " +
                               ec.message());
  }
  std::vector<scanned_file> files;
  for (const auto* sub : {"builds", "partial"}) {
    for (fs::directory_iterator it(dir_ / sub, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code e2;
      if (!it->is_regular_file(e2)) continue;
      const auto size = it->file_size(e2);
      files.push_back({it->path().filename().string(), e2 ? 0 : size, sub[0] == 'b'});
    }
  }
  std::map<std::string, cached_build_record> records, partial_records;
  const auto record_in = [&](const char* sub, std::map<std::string, cached_build_record>& seen) {
    return
        [this, sub, seen = &seen](const std::string& name) -> std::optional<cached_build_record> {
          auto text = read_whole_file(dir_ / sub / name);
          if (!text) return std::nullopt;
          auto r = parse_record(*text);
          if (r) (*seen)[name] = *r;
          return r;
        };
  };
  // A partial build counts by the bytes its map says present (a sparse fetch of a 20 GB
  // build for one tar entry holds a few MiB).
  std::map<std::string, std::uint64_t> present;  // map name -> plain bytes present
  const auto map_total = [&](const std::string& name) -> std::optional<std::uint64_t> {
    auto text = read_whole_file(dir_ / "partial" / name);
    if (!text) return std::nullopt;
    auto m = fetch::parse_saved_map(*text);
    if (!m) return std::nullopt;
    present[name] = m->present.present_bytes();
    return m->present.total();
  };
  const auto decisions = decide_scan(files, record_in("builds", records), map_total,
                                     record_in("partial", partial_records));
  unsigned kept = 0, partials = 0, removed = 0;
  for (const auto& d : decisions) {
    const auto path = dir_ / (d.in_builds ? "builds" : "partial") / d.name;
    switch (d.action) {
      case scan_action::remove:
        fs::remove(path, ec);
        ++removed;
        log_->warn("cache: removed {}: {}", path.string(), d.reason);
        break;
      case scan_action::keep_verified:
        if (d.name.size() > 5 && d.name.ends_with(".json")) {
          const auto& r = records.at(d.name);
          cache_entry e;
          e.record = r;
          e.verified = true;
          e.bytes = r.meta.plain_size;
          e.last_used = tick();
          e.last_used_at = mtime_or_now(path);
          e.stored_at = e.last_used_at;
          entries_[r.meta.filename] = std::move(e);
          ++kept;
        }
        break;
      case scan_action::keep_partial:
        if (d.name.ends_with(".part")) {
          const auto& r = partial_records.at(d.name + ".json");
          cache_entry e;
          e.record = r;
          e.bytes = present.at(d.name + ".map");
          e.last_used = tick();
          e.last_used_at = mtime_or_now(dir_ / "partial" / (d.name + ".map"));
          entries_[r.meta.filename] = std::move(e);
          ++partials;
        }
        break;
    }
  }
  // Least recently used first by the files' times: restore the LRU order across restarts.
  std::vector<cache_entry*> order;
  for (auto& [n, e] : entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const auto* a, const auto* b) { return a->last_used_at < b->last_used_at; });
  for (auto* e : order) e->last_used = tick();
  log_->info(
      "cache: {} verified builds, {} partial builds ({} bytes in all), {} files removed, under {}",
      kept, partials, used_bytes(), removed, dir_.string());
  update_gauges();
}

std::optional<std::string> build_cache::why_not_writable() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const auto probe = dir_ / ".fusproxy-ready-probe";
  const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "cache directory '" + dir_.string() + "' is not writable";
  ::close(fd);
  ::unlink(probe.c_str());
  return std::nullopt;
}

std::uint64_t build_cache::used_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [name, e] : entries_) n += e.bytes;
  return n;
}

const cache_entry* build_cache::find(const std::string& name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const cache_entry* build_cache::find_version(const std::string& model, const std::string& region,
                                             const std::string& version) const {
  for (const auto& [name, e] : entries_) {
    const auto& m = e.record.meta;
    if (e.verified && m.model == model && m.region == region && m.version == version) return &e;
  }
  return nullptr;
}

const cache_entry* build_cache::newest(const std::string& model, const std::string& region) const {
  const cache_entry* best = nullptr;
  for (const auto& [name, e] : entries_) {
    const auto& m = e.record.meta;
    if (!e.verified || m.model != model || m.region != region) continue;
    if (!best || m.last_modified > best->record.meta.last_modified ||
        (m.last_modified == best->record.meta.last_modified &&
         m.version > best->record.meta.version))
      best = &e;
  }
  return best;
}

void build_cache::track_partial(const cached_build_record& record) {
  const auto [it, added] = entries_.try_emplace(record.meta.filename);
  auto& e = it->second;
  if (e.verified) return;
  e.record = record;
  e.last_used = tick();
  e.last_used_at = now_wall();
  if (!added) return;
  // Without its record a partial build would not be indexed by the next start-up scan
  // (nor counted, nor evicted): it would be removed there. Serving goes on meanwhile.
  if (auto ec = write_atomically(paths_for(record.meta).partial_meta, serialize_record(record)))
    log_->warn("cache: cannot write the record of partial {}: {} (the next start removes it)",
               record.meta.plain_filename, ec.message());
}

void build_cache::set_partial_bytes(const std::string& name, std::uint64_t bytes) {
  if (auto it = entries_.find(name); it != entries_.end() && !it->second.verified)
    it->second.bytes = bytes;
}

std::error_code build_cache::write_record(const cached_build_record& record) {
  return write_atomically(paths_for(record.meta).meta, serialize_record(record));
}

std::optional<std::string> build_cache::read_lz4_index(const std::string& name) const {
  const auto* e = find(name);
  if (!e) return std::nullopt;
  const auto p = paths_for(e->record.meta);
  return read_whole_file(e->verified ? p.lz4_index : p.partial_lz4_index);
}

std::error_code build_cache::write_lz4_index(const std::string& name, const std::string& text) {
  const auto* e = find(name);
  if (!e) return std::make_error_code(std::errc::no_such_file_or_directory);
  const auto p = paths_for(e->record.meta);
  return write_atomically(e->verified ? p.lz4_index : p.partial_lz4_index, text);
}

void build_cache::remove_lz4_index(const std::string& name) {
  const auto* e = find(name);
  if (!e) return;
  const auto p = paths_for(e->record.meta);
  std::error_code ec;
  fs::remove(p.lz4_index, ec);
  fs::remove(p.partial_lz4_index, ec);
}

void build_cache::published(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  const auto p = paths_for(it->second.record.meta);
  std::error_code ec;
  if (fs::exists(p.partial_lz4_index, ec)) fs::rename(p.partial_lz4_index, p.lz4_index, ec);
  fs::remove(p.partial_meta, ec);
  it->second.verified = true;
  it->second.bytes = it->second.record.meta.plain_size;
  it->second.last_used = tick();
  it->second.last_used_at = now_wall();
  it->second.stored_at = it->second.last_used_at;
  update_gauges();
}

void build_cache::forget(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.verified || it->second.pins != 0) return;
  const auto p = paths_for(it->second.record.meta);
  std::error_code ec;
  fs::remove(p.partial_meta, ec);
  fs::remove(p.partial_lz4_index, ec);
  entries_.erase(it);
}

void build_cache::touch(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  it->second.last_used = tick();
  it->second.last_used_at = now_wall();
}

build_cache::pin::pin(build_cache* cache, std::string name)
    : cache_(cache), name_(std::move(name)) {
  if (auto it = cache_->entries_.find(name_); it != cache_->entries_.end()) ++it->second.pins;
}
build_cache::pin::pin(pin&& o) noexcept : cache_(o.cache_), name_(std::move(o.name_)) {
  o.cache_ = nullptr;
}
build_cache::pin& build_cache::pin::operator=(pin&& o) noexcept {
  if (this != &o) {
    this->~pin();
    cache_ = o.cache_;
    name_ = std::move(o.name_);
    o.cache_ = nullptr;
  }
  return *this;
}
build_cache::pin::~pin() {
  if (!cache_) return;
  if (auto it = cache_->entries_.find(name_); it != cache_->entries_.end() && it->second.pins > 0)
    --it->second.pins;
  cache_ = nullptr;
}

build_cache::pin build_cache::acquire(const std::string& name) {
  touch(name);
  return pin(this, name);
}

void build_cache::remove_files(const cache_entry& e) {
  const auto p = paths_for(e.record.meta);
  std::error_code ec;
  // Metadata first: a data file without its .json is never served (the scan removes it).
  fs::remove(p.meta, ec);
  fs::remove(p.final, ec);
  fs::remove(p.lz4_index, ec);
  // A crash among these leaves files the next scan removes (a part without its map or
  // record, or those without their part).
  fs::remove(p.part, ec);
  fs::remove(p.map, ec);
  fs::remove(p.partial_lz4_index, ec);
  fs::remove(p.partial_meta, ec);
}

std::vector<std::string> build_cache::evict(std::uint64_t incoming,
                                            const std::function<bool(const std::string&)>& busy) {
  std::vector<lru_candidate> c;
  c.reserve(entries_.size());
  for (const auto& [name, e] : entries_)
    c.push_back({name, e.bytes, e.last_used, e.pins > 0 || (busy && busy(name))});
  auto victims = choose_victims(c, max_bytes_, incoming);
  for (const auto& name : victims) {
    const auto it = entries_.find(name);
    log_->info("cache: evicted {}{} ({} bytes, least recently used; limit {} bytes)",
               it->second.verified ? "" : "partial ", it->second.record.meta.plain_filename,
               it->second.bytes, max_bytes_);
    remove_files(it->second);
    entries_.erase(it);
  }
  if (metrics_ && !victims.empty()) {
    metrics_->cache_evictions.inc(victims.size());
    update_gauges();
  }
  return victims;
}

bool build_cache::fits(std::uint64_t incoming) const {
  return max_bytes_ == 0 || used_bytes() + incoming <= max_bytes_;
}

std::uint64_t build_cache::evictable_bytes(
    const std::function<bool(const std::string&)>& busy) const {
  std::uint64_t n = 0;
  for (const auto& [name, e] : entries_)
    if (e.pins == 0 && !(busy && busy(name))) n += e.bytes;
  return n;
}

build_cache::remove_result build_cache::remove(
    const std::string& name, const std::function<bool(const std::string&)>& busy) {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return remove_result::not_found;
  if (it->second.pins > 0 || (busy && busy(name))) return remove_result::in_use;
  log_->info("cache: removed {} (operator request)", it->second.record.meta.plain_filename);
  remove_files(it->second);
  entries_.erase(it);
  update_gauges();
  return remove_result::removed;
}

json::array build_cache::status_json() const {
  json::array out;
  std::vector<const cache_entry*> order;
  for (const auto& [n, e] : entries_) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const auto* a, const auto* b) { return a->last_used > b->last_used; });
  for (const auto* e : order) {
    const auto& m = e->record.meta;
    const auto p = paths_for(m);
    out.push_back(json::object{{"model", m.model},
                               {"region", m.region},
                               {"version", m.version},
                               {"filename", m.filename},
                               {"plain_filename", m.plain_filename},
                               {"size", m.size},
                               {"plain_size", m.plain_size},
                               {"bytes", e->bytes},
                               {"verified", e->verified},
                               {"last_used", http_date::iso8601_utc(e->last_used_at)},
                               {"readers", e->pins},
                               {"path", (e->verified ? p.final : p.part).string()}});
  }
  return out;
}

}  // namespace fusproxy::server
