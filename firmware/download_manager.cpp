#include "firmware/download_manager.hpp"

#include "firmware/firmware_metrics.hpp"

#include <pthread.h>
#include <spdlog/logger.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <latch>
#include <map>

#include "crypto/ecb.hpp"
#include "crypto/ranges.hpp"
#include "fetch/file_io.hpp"
#include "fetch/landed_reader.hpp"
#include "firmware/bodies.hpp"
#include "firmware/lz4_index_store.hpp"
#include "firmware/member_source.hpp"
#include "firmware/resolver_mapping.hpp"
#include "firmware/tar_entries.hpp"
#include "obs/metrics.hpp"
#include "zip/zip_directory.hpp"

namespace fusproxy::server {

namespace net = boost::asio;

namespace {
// Names each of a pool's threads (top -H, perf, bench/stream.sh): one task per thread, each
// holding its thread until all have run.
void name_threads(net::thread_pool& pool, unsigned count, const char* name) {
  auto all = std::make_shared<std::latch>(count);
  for (unsigned i = 0; i < count; ++i)
    net::post(pool, [all, name] {
      ::pthread_setname_np(::pthread_self(), name);
      all->arrive_and_wait();
    });
}
}  // namespace

// The registry of jobs and the choices (room, which job, which member); the bodies it makes
// (bodies.hpp) reach it only as their body_host.
struct download_manager::impl : body_host, std::enable_shared_from_this<download_manager::impl> {
  // Declared first so that it is joined last: landing work in flight finishes first.
  std::unique_ptr<net::thread_pool> land_pool;
  net::any_io_executor executor;
  upstream::fus_client& client;
  download_settings settings;
  std::shared_ptr<spdlog::logger> log;
  build_cache cache;
  std::map<std::string, std::shared_ptr<fetch_job>> jobs;  // BINARY_NAME -> job

  // Tests construct the manager without a registry: it then keeps one of its own.
  std::unique_ptr<metrics::registry> own_registry;
  download_metrics count;
  std::uint64_t sheds_seen = 0;  // the jobs' 429/503 answers already counted
  // Parsed central directories, by BINARY_NAME (immutable per build).
  std::map<std::string, std::shared_ptr<const zip::directory>> directories;

  upstream_metrics* metrics;  // optional

  impl(net::any_io_executor ex, upstream::fus_client& c, download_settings s,
       std::shared_ptr<spdlog::logger> l, upstream_metrics* m)
      : executor(std::move(ex)),
        client(c),
        settings(std::move(s)),
        log(std::move(l)),
        cache(settings.cache_dir, settings.cache_max_bytes, log, m),
        own_registry(m ? nullptr : std::make_unique<metrics::registry>()),
        count(m ? m->registry() : *own_registry),
        metrics(m) {
    settings.fetch.metrics = m;
    if (settings.fetch_threads > 0) {
      land_pool = std::make_unique<net::thread_pool>(settings.fetch_threads);
      settings.fetch.land_on = land_pool->get_executor();
      name_threads(*land_pool, settings.fetch_threads, "fp-landing");
    }
    cache.scan();
  }

  // A body read starts on `job`: a cache hit when the build is verified on disk, else a
  // miss (its bytes come, or are coming, from upstream).
  void count_body_start(const fetch_job& job) {
    if (!metrics) return;
    if (job.state() == job_state::verified)
      metrics->cache_hits.inc();
    else
      metrics->cache_misses.inc();
  }

  boost::system::result<body_start> start_body(const build_source& source) override;
  void sparse_bytes_landed() override { account_partials(); }
  void lz4_indexes_learnt(const build_source& source) override { keep_indexes(source); }
  download_metrics& counters() override { return count; }
  spdlog::logger& logger() override { return *log; }

  job_files files_for(const build_source& source) {
    const auto p = cache.paths_for(source.meta);
    job_files f;
    f.part = p.part;
    f.map = p.map;
    f.final = p.final;
    const cached_build_record record{source.meta, source.build};
    std::weak_ptr<impl> weak = weak_from_this();
    // The metadata is written (temp + rename) after the CRC matched and before the data is
    // renamed into builds/: a data file there always has its record.
    f.before_publish = [weak, record]() -> std::error_code {
      auto self = weak.lock();
      if (!self) return std::make_error_code(std::errc::operation_canceled);
      return self->cache.write_record(record);
    };
    f.after_publish = [weak, name = source.meta.filename] {
      auto self = weak.lock();
      if (!self) return;
      self->cache.published(name);
      self->make_room(0);
    };
    return f;
  }

  // Whether a build's job holds it now: fetching, or with tasks still unwinding. An idle job
  // (a sparse one between readers) does not: its build is evicted like any other when no
  // reader pins it (build_cache::pin).
  bool busy(const std::string& name) const {
    const auto it = jobs.find(name);
    return it != jobs.end() &&
           (it->second->state() == job_state::fetching || it->second->tasks_running() > 0);
  }

  // Erases the entries "<BINARY_NAME>\n…" of one build from a map keyed so.
  template <typename Map>
  static void erase_build_keys(Map& map, const std::string& name) {
    const auto prefix = name + "\n";
    for (auto it = map.lower_bound(prefix); it != map.end() && it->first.starts_with(prefix);)
      it = map.erase(it);
  }

  // What the manager keeps in memory about a build that left the cache (evicted, removed):
  // its job (idle: the open descriptor of the removed file goes with it), its directory,
  // listings and LZ4 indexes.
  void forget_build(const std::string& name) {
    if (auto it = jobs.find(name); it != jobs.end()) {
      settled.erase(it->second.get());
      jobs.erase(it);
    }
    directories.erase(name);
    erase_build_keys(listings, name);
    erase_build_keys(locations, name);
    lz4_indexes.erase(name);
  }

  // Evicts least recently used idle builds until `incoming` more bytes fit the limit, never
  // `keep` (a build being opened, not pinned yet).
  void make_room(std::uint64_t incoming, const std::string& keep = {}) {
    account_partials();
    const auto victims = cache.evict(
        incoming, [this, &keep](const std::string& name) { return name == keep || busy(name); });
    for (const auto& v : victims) forget_build(v);
  }

  // Whether a build that is not cached yet (or only partly: the rest of a sparse build a
  // full download completes) has room. `evict`: evicts what it must for it first (a body
  // starts); otherwise only answers whether eviction would make room (HEAD, 304, 416 and the
  // headers of a GET never evict).
  std::optional<service_error> check_room(const firmware_metadata& meta, bool evict) {
    account_partials();
    const auto* entry = cache.find(meta.filename);
    if (entry && entry->verified) return std::nullopt;
    if (const auto it = jobs.find(meta.filename); it != jobs.end() && it->second->reserved())
      return std::nullopt;  // a complete fetch: its room is counted already
    const std::uint64_t present = entry ? std::min(entry->bytes, meta.plain_size) : 0;
    const std::uint64_t needed = meta.plain_size - present;
    const auto others_busy = [this, &meta](const std::string& n) {
      return n == meta.filename || busy(n);
    };
    std::uint64_t freeable = 0;
    if (evict)
      make_room(needed, meta.filename);
    else
      freeable = cache.evictable_bytes(others_busy);
    if (cache.max_bytes() != 0 && cache.used_bytes() - freeable + needed > cache.max_bytes())
      return service_error{firmware_errc::cache_full,
                           "the cache limit (" + std::to_string(cache.max_bytes()) +
                               " bytes) is held by builds in use; " + meta.plain_filename +
                               " needs " + std::to_string(needed) + " bytes",
                           {}};
    struct statvfs fsinfo {};
    if (::statvfs(settings.cache_dir.c_str(), &fsinfo) == 0) {
      const auto avail = static_cast<std::uint64_t>(fsinfo.f_bavail) * fsinfo.f_frsize;
      if (avail + freeable < needed)
        return service_error{firmware_errc::cache_full,
                             "no space left in the cache directory: " + meta.plain_filename +
                                 " needs " + std::to_string(needed) + " bytes, " +
                                 std::to_string(avail) + " available",
                             {}};
    }
    return std::nullopt;
  }

  // Counts a job's end once, when it is replaced or looked at after finishing.
  void settle(fetch_job& job, bool& counted) {
    if (counted) return;
    switch (job.state()) {
      case job_state::verified:
        ++count.verified;
        break;
      case job_state::failed:
        ++count.failed;
        break;
      case job_state::crc_mismatch:
        ++count.crc_mismatch;
        break;
      default:
        return;
    }
    counted = true;
  }
  std::map<const fetch_job*, bool> settled;

  void settle_all() {
    for (auto& [name, job] : jobs) settle(*job, settled[job.get()]);
  }

  boost::system::result<std::shared_ptr<fetch_job>> job_for(const build_source& source,
                                                            bool sparse = false) {
    const auto& name = source.meta.filename;
    if (auto it = jobs.find(name); it != jobs.end()) {
      auto& job = it->second;
      settle(*job, settled[job.get()]);
      // A failed job is replaced by a fresh one (which resumes from the saved map).
      if (job->state() != job_state::failed && job->state() != job_state::crc_mismatch) return job;
      if (job->state() == job_state::crc_mismatch) {
        // Its bytes were dropped as wrong: what decodes learnt from them goes too.
        lz4_indexes.erase(name);
        cache.remove_lz4_index(name);
      }
      settled.erase(job.get());
      jobs.erase(it);
    }
    const auto* entry = cache.find(name);
    const bool indexed = entry != nullptr;
    const bool partial = !entry || !entry->verified;
    if (partial) cache.track_partial({source.meta, source.build});
    auto job =
        fetch_job::open(executor, client, source, settings.fetch, files_for(source), log, sparse);
    if (!job) {
      if (!indexed) cache.forget(name);
      log->error("fetch {}: cannot open its cache file under {}: {}", name,
                 settings.cache_dir.string(), job.error().message());
      return job.error();
    }
    ++count.jobs_opened;
    jobs.emplace(name, *job);
    // Counted as what the open job holds (reserved, or the bytes present), then the others
    // make room for it if they must.
    if (partial) make_room(0, name);
    return *job;
  }

  // A partial build counts against --cache-max-bytes by its reserved plain size while a
  // complete fetch holds it, by its present bytes while it is fetched sparsely. (A partial
  // build without a job counts what the start-up scan read from its map.)
  void account_partials() {
    for (const auto& [name, job] : jobs)
      cache.set_partial_bytes(name, job->reserved() ? job->plain_size() : job->present_bytes());
  }

  // --- files inside tar members (issue 14) ---------------------------------------------

  using located = located_member;  // declared in bodies.hpp: entry bodies hold one
  // Where members' data start, by build and the name asked (immutable: the zip's local
  // headers), so that listing or entry requests after the first read no header upstream.
  std::map<std::string, located> locations;  // BINARY_NAME \n member name as asked

  net::awaitable<service_result<located>> locate(const build_source& src,
                                                 upstream::fus_session& session,
                                                 const std::string& name) {
    const auto key = src.meta.filename + "\n" + name;
    if (const auto it = locations.find(key); it != locations.end()) co_return it->second;
    auto dir = co_await directory(src, session);
    if (!dir) co_return dir.error();
    const auto* m = find_member(**dir, name);
    if (!m)
      co_return service_error{firmware_errc::not_found,
                              "no member \"" + name + "\" in " + src.meta.plain_filename +
                                  " (a full name, or AP, BL, CP, CSC, HOME_CSC)",
                              {},
                              "files",
                              src.meta.version};
    if (!m->readable())
      co_return service_error{firmware_errc::unsupported,
                              "member " + m->name + " is " +
                                  (m->encrypted() ? "encrypted" : m->method_name()) +
                                  ": not streamable",
                              {}};
    const auto lh = zip::local_header_range(*m);
    auto header = co_await read_plain(src, session, lh.offset, lh.length);
    if (!header) co_return to_service_error(header.error());
    auto data = zip::data_offset(*header, *m, **dir);
    if (!data)
      co_return service_error{
          firmware_errc::upstream_error, "member " + m->name + ": " + data.error().message(), {}};
    const located at{*m, *data};
    locations[key] = at;
    co_return at;
  }

  // The build's job for a reader of a part of it: opened sparse (nothing reserved), pinned.
  boost::system::result<body_start> start_sparse(const build_source& source) {
    auto opened = job_for(source, true);
    if (!opened) return opened.error();
    return body_start{*opened, cache.acquire(source.meta.filename)};
  }
  boost::system::result<member_reading> read_member(const build_source& source,
                                                    const located& at) override {
    auto started = start_sparse(source);
    if (!started) return started.error();
    auto bytes = make_member_source(started->job, at.m, at.data);
    return member_reading{std::move(*started), std::move(bytes)};
  }

  // Listings, by build: immutable per build.
  std::map<std::string, std::shared_ptr<const tar_listing>> listings;  // name \n member

  // The LZ4 block indexes of a build's entries: growing as decodes learn them, kept in the
  // cache beside the build's record (lz4_index_store): read from there when the build's
  // indexes are first needed, written when a decode learnt something.
  struct build_lz4_indexes {
    bool loaded = false;
    std::uint64_t saved = 0;  // what_learnt() when last read or written
    std::map<lz4_entry_id, std::shared_ptr<archive::lz4::block_index>> entries;
    // Grows with every block, decoded size or header learnt: unchanged, nothing to write.
    std::uint64_t what_learnt() const {
      std::uint64_t n = 0;
      for (const auto& [id, i] : entries)
        n += i->blocks.size() + (i->header ? 1 : 0) + (i->decoded_size ? 1 : 0);
      return n;
    }
  };
  std::map<std::string, build_lz4_indexes> lz4_indexes;  // BINARY_NAME ->

  static lz4_entry_id entry_id(const located& at, const archive::tar_entry& e) {
    return {at.m.name, at.m.crc32, e.name, e.data_offset, e.size};
  }
  static lz4_index_owner index_owner(const build_source& src) {
    return {src.meta.filename, src.meta.crc32, src.meta.plain_size};
  }
  // The build's indexes, read from the cache the first time (a file that does not check is
  // logged and ignored: the decodes learn again and write a good one).
  build_lz4_indexes& indexes_of(const build_source& src) {
    auto& b = lz4_indexes[src.meta.filename];
    if (b.loaded) return b;
    b.loaded = true;
    const auto text = cache.read_lz4_index(src.meta.filename);
    if (!text) return b;
    auto parsed = parse_lz4_indexes(*text, index_owner(src));
    if (!parsed.indexes) {
      log->warn("cache: ignoring the LZ4 indexes of {}: {}", src.meta.plain_filename,
                parsed.refused);
      return b;
    }
    for (auto& [id, index] : *parsed.indexes)
      b.entries[id] = std::make_shared<archive::lz4::block_index>(std::move(index));
    b.saved = b.what_learnt();
    log->debug("cache: {}: LZ4 indexes of {} entries read", src.meta.plain_filename,
               b.entries.size());
    return b;
  }
  std::shared_ptr<archive::lz4::block_index> index_for(const build_source& src, const located& at,
                                                       const archive::tar_entry& e) {
    auto& i = indexes_of(src).entries[entry_id(at, e)];
    if (!i) i = std::make_shared<archive::lz4::block_index>();
    return i;
  }
  // After a decode: the build's indexes are written to the cache when they learnt something
  // (temp + rename; a failure is logged, the indexes stay in memory).
  void keep_indexes(const build_source& src) {
    const auto it = lz4_indexes.find(src.meta.filename);
    if (it == lz4_indexes.end() || it->second.what_learnt() == it->second.saved) return;
    auto& b = it->second;
    lz4_index_map all;
    for (const auto& [id, i] : b.entries) all.emplace(id, *i);
    if (auto ec =
            cache.write_lz4_index(src.meta.filename, serialize_lz4_indexes(index_owner(src), all)))
      log->warn("cache: cannot keep the LZ4 indexes of {}: {}", src.meta.plain_filename,
                ec.message());
    else
      b.saved = b.what_learnt();
  }

  static service_error archive_failure(const std::string& what, boost::system::error_code ec) {
    if (ec == archive::errc::not_a_tar)
      return {firmware_errc::not_a_tar, what + " is not a tar archive: no tar listing", {}};
    if (ec.category() == archive::error_category())
      return {firmware_errc::bad_archive, what + ": " + ec.message(), {}};
    return {firmware_errc::upstream_error, what + ": " + ec.message(), {}};
  }

  net::awaitable<service_result<std::shared_ptr<const tar_listing>>> listing(
      const build_source& src, const located& at) {
    const auto key = src.meta.filename + "\n" + at.m.name;
    if (auto it = listings.find(key); it != listings.end()) co_return it->second;
    auto reading = read_member(src, at);
    if (!reading)
      co_return service_error{firmware_errc::upstream_error, reading.error().message(), {}};
    auto& source = reading->bytes;
    auto& started = reading->started;
    auto read = co_await read_listing(*source);
    if (!read) co_return archive_failure("member " + at.m.name, read.error());
    auto l = std::make_shared<const tar_listing>(std::move(*read));
    // The frame headers of its .lz4 entries (their content sizes, when the writer gave them):
    // fetched together (a few blocks each), kept with the build's indexes.
    std::vector<std::unique_ptr<fetch_job::interest>> heads;
    for (const auto& e : l->entries)
      if (e.regular() && e.name.ends_with(".lz4") && e.size > 0)
        heads.push_back(std::make_unique<fetch_job::interest>(
            started.job, at.data + e.data_offset,
            at.data + e.data_offset +
                std::min<std::uint64_t>(e.size, archive::lz4::max_header_size)));
    for (const auto& e : l->entries) {
      if (!e.regular() || !e.name.ends_with(".lz4") || e.size == 0) continue;
      auto index = index_for(src, at, e);
      if (index->header) continue;
      auto h = co_await read_frame_header(*source, e);
      if (h) {  // (a corrupt header: found when the entry is read)
        index->header = *h;
        // As the decoder does with a header it reads: a decode to the content size then
        // holds the last block back until liblz4 checked the content checksum.
        if (h->content_size) index->decoded_size = h->content_size;
      } else if (h.error().category() != archive::error_category())
        co_return service_error{firmware_errc::upstream_error, h.error().message(), {}};
    }
    listings[key] = l;
    account_partials();
    co_return l;
  }

  std::optional<std::uint64_t> decoded_size(const build_source& src, const located& at,
                                            const archive::tar_entry& e) {
    const auto& entries = indexes_of(src).entries;
    const auto it = entries.find(entry_id(at, e));
    if (it == entries.end()) return std::nullopt;
    if (it->second->decoded_size) return it->second->decoded_size;
    if (it->second->header) return it->second->header->content_size;
    return std::nullopt;
  }

  // Plain bytes [offset, offset + length) of a build: from its job's file when present
  // there, else fetched upstream (the covering cipher blocks, decrypted). Small reads only
  // (zip end records, directory, local headers).
  net::awaitable<upstream::result<std::vector<std::uint8_t>>> read_plain(
      const build_source& src, upstream::fus_session& session, std::uint64_t offset,
      std::uint64_t length) {
    std::vector<std::uint8_t> out(static_cast<std::size_t>(length));
    if (length == 0) co_return out;
    const auto& name = src.meta.filename;
    // A build the cache holds is read through its job: a verified one from disk (offline
    // too), a partial one (after a restart) from its file, its missing bytes fetched by the
    // job (its authorised session) into the build's file: no session of this request's own,
    // and the next request finds them there.
    if (const auto* e = cache.find(name); e && !jobs.count(name)) (void)job_for(src, !e->verified);
    if (auto it = jobs.find(name); it != jobs.end()) {
      auto job = it->second;
      if (job->state() != job_state::failed && job->state() != job_state::crc_mismatch &&
          job->total() == src.meta.size) {
        auto pin = cache.acquire(name);
        auto reader = landed_reader::sparse(job);
        if (!co_await reader.read(offset, std::span<std::uint8_t>(out))) co_return out;
        // The job failed meanwhile: this request fetches them itself.
      }
    }
    const crypto::byte_range plain{offset, offset + length};
    const auto cipher = crypto::cipher_range_for(plain);
    const auto file = src.build.file();
    crypto::block_decryptor dec(src.build.key);
    constexpr std::uint64_t piece = 8u << 20;  // fetch_range takes at most 16 MiB
    std::vector<std::uint8_t> clear;
    clear.reserve(static_cast<std::size_t>(cipher.size()));
    for (std::uint64_t at = cipher.begin; at < cipher.end; at += piece) {
      auto bytes = co_await session.fetch_range(file, {at, std::min(cipher.end, at + piece)});
      if (!bytes) co_return bytes.error();
      if (dec.decrypt(*bytes, *bytes))
        co_return upstream::make_failure(upstream::errc::bad_answer, "undecryptable range");
      clear.insert(clear.end(), bytes->begin(), bytes->end());
    }
    const auto skip = static_cast<std::size_t>(crypto::plain_skip_in(plain));
    std::copy_n(clear.begin() + static_cast<std::ptrdiff_t>(skip), out.size(), out.begin());
    co_return out;
  }

  net::awaitable<service_result<std::shared_ptr<const zip::directory>>> directory(
      const build_source& src, upstream::fus_session& session) {
    if (auto it = directories.find(src.meta.filename); it != directories.end())
      co_return it->second;
    zip::directory_reader reader(src.meta.plain_size);
    while (auto range = reader.next_read()) {
      auto bytes = co_await read_plain(src, session, range->offset, range->length);
      if (!bytes) co_return to_service_error(bytes.error());
      if (auto ec = reader.feed(*bytes))
        co_return service_error{firmware_errc::upstream_error,
                                src.meta.plain_filename + " is not a readable zip: " + ec.message(),
                                {}};
    }
    if (!reader.done())
      co_return service_error{
          firmware_errc::upstream_error, "zip directory: " + reader.error().message(), {}};
    auto dir = std::make_shared<const zip::directory>(std::move(reader).result());
    directories[src.meta.filename] = dir;
    co_return dir;
  }
};

boost::system::result<body_start> download_manager::impl::start_body(const build_source& source) {
  ++count.bodies;
  // Eviction for a build not cached yet happens here, when its bytes are about to be
  // written, not when its headers were answered.
  if (auto full = check_room(source.meta, true)) {
    log->warn("fetch {}: {}", source.meta.filename, full->message);
    return make_error_code(stream_errc::no_space);
  }
  auto opened = job_for(source);
  if (!opened) return opened.error();
  count_body_start(**opened);
  return body_start{*opened, cache.acquire(source.meta.filename)};
}

namespace {

std::string base_name(const std::string& name) {
  const auto slash = name.find_last_of('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

}  // namespace

net::awaitable<service_result<std::vector<zip_member>>> download_manager::files(
    build_source source) {
  auto self = impl_;
  upstream::fus_session session(self->client);
  auto dir = co_await self->directory(source, session);
  if (!dir) co_return dir.error();
  std::vector<zip_member> out;
  out.reserve((*dir)->members.size());
  for (const auto& m : (*dir)->members)
    out.push_back({m.name, m.size, m.local_header_offset, m.method_name()});
  co_return out;
}

net::awaitable<service_result<std::vector<tar_entry_info>>> download_manager::entries(
    build_source source, std::string member) {
  auto self = impl_;
  upstream::fus_session session(self->client);
  auto at = co_await self->locate(source, session, member);
  if (!at) co_return at.error();
  auto l = co_await self->listing(source, *at);
  if (!l) co_return l.error();
  co_return listing_infos(
      **l, [&](const archive::tar_entry& e) { return self->decoded_size(source, *at, e); });
}

net::awaitable<service_result<download_representation>> download_manager::entry_representation(
    build_source source, std::string member, std::string path, freshness fresh) {
  auto self = impl_;
  upstream::fus_session session(self->client);
  auto at = co_await self->locate(source, session, member);
  if (!at) co_return at.error();
  auto l = co_await self->listing(source, *at);
  if (!l) co_return l.error();
  const auto choice = find_entry(**l, path);
  if (!choice.entry)
    co_return service_error{firmware_errc::not_found,
                            "no file \"" + path + "\" (nor \"" + path + ".lz4\") in " + at->m.name,
                            {},
                            "files/" + at->m.name + "/",
                            source.meta.version};
  const auto& e = *choice.entry;
  const auto& meta = source.meta;
  download_representation rep;
  rep.last_modified = meta.last_modified;
  rep.version = meta.version;
  rep.fresh = fresh;
  rep.content_type = "application/octet-stream";
  char etag[128];
  if (!choice.decode) {
    std::snprintf(etag, sizeof etag, "\"%08x-%08x-%llu-%llu-entry\"", meta.crc32.value_or(0),
                  at->m.crc32, static_cast<unsigned long long>(e.data_offset),
                  static_cast<unsigned long long>(e.size));
    rep.etag = etag;
    rep.size = e.size;
    rep.filename = base_name(e.name);
    rep.body = make_entry_body(self, source, *at, e);
    co_return rep;
  }
  auto index = self->index_for(source, *at, e);
  // No content size in the frame header and no decode yet: the first answer is chunked (its
  // decode learns the size, kept with the build's index for the next ones).
  const auto size = self->decoded_size(source, *at, e);
  std::snprintf(etag, sizeof etag, "\"%08x-%08x-%llu-%llu-lz4d\"", meta.crc32.value_or(0),
                at->m.crc32, static_cast<unsigned long long>(e.data_offset),
                static_cast<unsigned long long>(e.size));
  rep.etag = etag;
  rep.size = size.value_or(0);
  rep.size_known = size.has_value();
  rep.filename = base_name(e.name.substr(0, e.name.size() - 4));
  rep.body = make_decoded_body(self, source, *at, e, index);
  co_return rep;
}

net::awaitable<service_result<download_representation>> download_manager::member_representation(
    build_source source, std::string name, freshness fresh) {
  auto self = impl_;
  upstream::fus_session session(self->client);
  auto dir = co_await self->directory(source, session);
  if (!dir) co_return dir.error();
  // "{member}/{path}" names a file inside a tar member (unless a member has that name).
  if (!(*dir)->find(name))
    if (const auto slash = name.find('/'); slash != std::string::npos)
      co_return co_await entry_representation(std::move(source), name.substr(0, slash),
                                              name.substr(slash + 1), fresh);
  auto located = co_await self->locate(source, session, name);
  if (!located) co_return located.error();
  const auto* m = &located->m;
  const auto data = std::optional<std::uint64_t>(located->data);
  const auto& meta = source.meta;
  download_representation rep;
  char etag[96];
  std::snprintf(etag, sizeof etag, "\"%08x-%08x-%llu-member\"", meta.crc32.value_or(0), m->crc32,
                static_cast<unsigned long long>(m->size));
  rep.etag = etag;
  rep.size = m->size;
  rep.last_modified = meta.last_modified;
  rep.version = meta.version;
  rep.fresh = fresh;
  rep.content_type = "application/octet-stream";
  rep.filename = base_name(m->name);
  rep.body = make_member_body(self, source, *m, *data);
  co_return rep;
}

download_manager::download_manager(net::any_io_executor executor, upstream::fus_client& client,
                                   download_settings settings, std::shared_ptr<spdlog::logger> log,
                                   upstream_metrics* metrics)
    : impl_(std::make_shared<impl>(std::move(executor), client, std::move(settings), std::move(log),
                                   metrics)) {}

download_manager::~download_manager() {
  stop_all();
}

void download_manager::stop_all() {
  for (auto& [name, job] : impl_->jobs) job->stop();
}

std::size_t download_manager::tasks_running() const {
  std::size_t n = 0;
  for (const auto& [name, job] : impl_->jobs) n += job->tasks_running();
  return n;
}

build_cache& download_manager::cache() {
  return impl_->cache;
}
const build_cache& download_manager::cache() const {
  return impl_->cache;
}
bool download_manager::fetching(const std::string& binary_name) const {
  return impl_->busy(binary_name);
}

service_result<void> download_manager::remove_build(const std::string& binary_name) {
  auto& s = *impl_;
  const auto r = s.cache.remove(binary_name, [&s](const std::string& n) { return s.busy(n); });
  switch (r) {
    case build_cache::remove_result::not_found:
      return service_error{firmware_errc::not_found, binary_name + " is not in the cache", {}};
    case build_cache::remove_result::in_use:
      return service_error{
          firmware_errc::in_use, binary_name + " is being read or fetched; try again later", {}};
    case build_cache::remove_result::removed:
      break;
  }
  s.forget_build(binary_name);
  return {};
}

boost::json::object download_manager::cache_status_json() const {
  impl_->account_partials();
  const auto& c = impl_->cache;
  return {{"dir", c.dir().string()},
          {"max_bytes", c.max_bytes()},
          {"used_bytes", c.used_bytes()},
          {"builds", c.status_json()}};
}

boost::system::result<std::shared_ptr<fetch_job>> download_manager::job_for(
    const build_source& source) {
  return impl_->job_for(source);
}

service_result<download_representation> download_manager::representation(const build_source& source,
                                                                         download_variant variant,
                                                                         freshness fresh) {
  const auto& m = source.meta;
  if (auto full = impl_->check_room(m, false)) return *full;
  download_representation rep;
  rep.etag = representation_etag(m, variant);
  rep.last_modified = m.last_modified;
  rep.version = m.version;
  rep.fresh = fresh;
  if (variant == download_variant::encrypted) {
    rep.size = m.size;
    rep.content_type = "application/octet-stream";
    rep.filename = m.filename;
    rep.body = make_encrypted_body(impl_, source);
  } else {
    rep.size = m.plain_size;
    rep.content_type = "application/zip";
    rep.filename = m.plain_filename;
    rep.body = make_plain_body(impl_, source);
  }
  return rep;
}

void download_manager::refresh_metrics() {
  auto& s = *impl_;
  s.settle_all();
  std::uint64_t active = 0, present = 0, sheds = 0, readers = 0, conns = 0, target = 0;
  double rate = 0, slowest = 0;
  bool any_conn = false;
  for (const auto& [name, job] : s.jobs) {
    const auto p = job->progress();
    if (p.state == job_state::fetching) {
      ++active;
      conns += p.connections;
      target += p.target;
      for (const auto& c : p.per_connection) {
        slowest = any_conn ? std::min(slowest, c.rate) : c.rate;
        any_conn = true;
      }
    }
    present += p.present;
    sheds += p.sheds;
    readers += p.readers;
    rate += p.rate;
  }
  // The jobs count their own 429/503 answers; a counter only grows, so it takes what is
  // new since the last scrape (jobs that left memory take theirs along).
  if (sheds > s.sheds_seen) s.count.rate_limited.inc(sheds - s.sheds_seen);
  s.sheds_seen = sheds;
  const auto set = [](metrics::gauge& g, double v) { g.set(static_cast<std::int64_t>(v)); };
  set(s.count.jobs_active, static_cast<double>(active));
  set(s.count.present_bytes, static_cast<double>(present));
  set(s.count.upstream_bytes_per_second, rate);
  set(s.count.readers_waiting, static_cast<double>(readers));
  set(s.count.upstream_connections, static_cast<double>(conns));
  set(s.count.upstream_connections_target, static_cast<double>(target));
  set(s.count.slowest_connection_bytes_per_second, slowest);
}

boost::json::array download_manager::status_json() const {
  namespace json = boost::json;
  json::array out;
  for (const auto& [name, job] : impl_->jobs) {
    const auto p = job->progress();
    const auto& m = job->source().meta;
    json::object o{
        {"model", m.model},
        {"region", m.region},
        {"version", m.version},
        {"filename", m.filename},
        {"plain_filename", m.plain_filename},
        {"state", std::string(to_string(p.state))},
        {"verified", p.state == job_state::verified},
        {"size", p.total},
        {"present", p.present},
        {"percent",
         p.total ? 100.0 * static_cast<double>(p.present) / static_cast<double>(p.total) : 0.0},
        {"bytes_per_second", p.rate},
        {"connections", p.connections},
        {"connections_target", p.target},
        {"connections_max", p.ceiling},
        {"upstream_gets", p.gets},
        {"hedges", p.hedges},
        {"connections_cut", p.cuts},
        {"splits", p.splits},
        {"retries", p.retries},
        {"rate_limited", p.sheds},
        {"readers_waiting", p.readers},
        {"clients", impl_->cache.find(name) ? impl_->cache.find(name)->pins : 0u},
        {"file", job->file_path().string()}};
    json::array conns;
    for (const auto& c : p.per_connection)
      conns.push_back(json::object{{"id", c.worker},
                                   {"bytes_per_second", c.rate},
                                   {"range_begin", c.begin},
                                   {"range_end", c.end},
                                   {"helper", c.helper}});
    o["upstream_connections"] = std::move(conns);
    if (!p.error.empty()) o["error"] = p.error;
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace fusproxy::server
