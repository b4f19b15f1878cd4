// The build cache's pure parts: LRU victim choice, the start-up scan's decisions, the
// persisted record; and the index (pins, eviction, removal) on a temporary directory.
#include "fetch/build_cache.hpp"

#include "fetch/fetch_plan.hpp"
#include "obs/metrics.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

using namespace fusproxy::server;
namespace fs = std::filesystem;

namespace {

cached_build_record record(const std::string& stem, std::uint64_t plain) {
  cached_build_record r;
  auto& m = r.meta;
  m.model = "SM-A207F";
  m.region = "SER";
  m.version = "A/B/C/" + stem;
  m.filename = stem + ".zip.enc4";
  m.plain_filename = stem + ".zip";
  m.encryption = "enc4";
  m.plain_size = plain;
  m.size = (plain / 16 + 1) * 16;
  m.crc32 = 0xdeadbeef;
  m.last_modified = 1633625949;
  m.changelog_url = "https://example/doc.html";
  m.files.ap = "AP_x.tar.md5";
  auto& b = r.build;
  b.model = m.model;
  b.region = m.region;
  b.version = m.version;
  b.key = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  b.inform.binary_name = m.filename;
  b.inform.model_path = "/neofus/9/";
  b.inform.byte_size = m.size;
  b.inform.crc = m.crc32;
  b.inform.logic_value = "abcdefghijklmnop";
  return r;
}

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace

TEST_CASE("choose_victims: least recently used idle builds first, only as needed") {
  // "partial": an idle partial build counted by its present bytes, evicted like any build.
  std::vector<lru_candidate> c = {
      {"old", 100, 1, false},    {"busy-older", 100, 0, true}, {"mid", 100, 2, false},
      {"partial", 30, 3, false}, {"new", 100, 4, false},
  };
  CHECK(choose_victims(c, 0, 1000).empty());  // no limit
  CHECK(choose_victims(c, 450, 0).empty());   // fits
  CHECK(choose_victims(c, 400, 0) == std::vector<std::string>{"old"});
  CHECK(choose_victims(c, 300, 50) == std::vector<std::string>{"old", "mid"});
  CHECK(choose_victims(c, 230, 30) == std::vector<std::string>{"old", "mid", "partial"});
  // Busy entries are never chosen, even when the limit cannot be met.
  CHECK(choose_victims(c, 50, 0) == std::vector<std::string>{"old", "mid", "partial", "new"});
}

TEST_CASE("record: round trip; torn or inconsistent records are refused") {
  const auto r = record("X", 1000);
  const auto text = serialize_record(r);
  auto back = parse_record(text);
  REQUIRE(back);
  CHECK(back->meta.filename == r.meta.filename);
  CHECK(back->meta.plain_size == 1000);
  CHECK(back->meta.crc32 == 0xdeadbeef);
  CHECK(back->meta.last_modified == r.meta.last_modified);
  CHECK(back->meta.files.ap == "AP_x.tar.md5");
  CHECK(back->build.key == r.build.key);
  CHECK(back->build.inform.model_path == "/neofus/9/");
  CHECK_FALSE(parse_record(text.substr(0, text.size() / 2)));
  CHECK_FALSE(parse_record("[]"));
  auto bad = r;
  bad.build.inform.byte_size += 16;  // disagrees with the metadata
  CHECK_FALSE(parse_record(serialize_record(bad)));
  bad = r;
  bad.meta.plain_size = bad.meta.size;  // no room for the pad
  CHECK_FALSE(parse_record(serialize_record(bad)));
}

TEST_CASE("decide_scan: keeps verified builds and resumable parts, removes the rest") {
  const auto good = record("G", 1000);
  const std::vector<scanned_file> files = {
      {"G.zip", 1000, true},
      {"G.zip.json", 500, true},  // verified
      {"W.zip", 999, true},
      {"W.zip.json", 500, true},  // wrong size
      {"T.zip", 1000, true},
      {"T.zip.json", 10, true},      // torn metadata
      {"N.zip", 1000, true},         // no metadata
      {"O.zip.json", 500, true},     // metadata alone
      {"x.json.tmp", 5, true},       // interrupted write
      {"G.zip.lz4index", 70, true},  // the verified build's LZ4 indexes
      {"W.zip.lz4index", 70, true},  // go with their build
      {"Z.zip.lz4index", 70, true},  // an index alone
      {"P.zip.part", 1000, false},
      {"P.zip.part.map", 50, false},
      {"P.zip.part.json", 500, false},  // resumable, counted by its record
      {"P.zip.part.lz4index", 70, false},
      {"U.zip.part", 1000, false},
      {"U.zip.part.map", 50, false},  // no record: cannot be counted
      {"V.zip.part", 1000, false},
      {"V.zip.part.map", 50, false},
      {"V.zip.part.json", 500, false},     // a record of another size
      {"L.zip.part.json", 500, false},     // a record alone
      {"L.zip.part.lz4index", 70, false},  // an index alone
      {"S.zip.part", 500, false},
      {"S.zip.part.map", 50, false},  // shorter than its map
      {"M.zip.part", 1000, false},    // no map
      {"Q.zip.part.map", 50, false},  // map alone
      {"R.zip.part.map.tmp", 50, false},
  };
  const auto rec = [&](const std::string& name) -> std::optional<cached_build_record> {
    if (name == "G.zip.json") return good;
    if (name == "W.zip.json") {
      auto w = record("W", 1000);
      return w;
    }
    return std::nullopt;
  };
  const auto total = [](const std::string& name) -> std::optional<std::uint64_t> {
    if (name == "P.zip.part.map" || name == "S.zip.part.map" || name == "U.zip.part.map" ||
        name == "V.zip.part.map")
      return 1008;
    return std::nullopt;
  };
  const auto partial_rec = [&](const std::string& name) -> std::optional<cached_build_record> {
    if (name == "P.zip.part.json") return record("P", 1000);
    if (name == "V.zip.part.json") return record("V", 2000);
    if (name == "L.zip.part.json") return record("L", 1000);
    return std::nullopt;
  };
  const auto decisions = decide_scan(files, rec, total, partial_rec);
  std::map<std::string, scan_action> by;
  for (const auto& d : decisions) by[(d.in_builds ? "b/" : "p/") + d.name] = d.action;
  CHECK(by.size() == files.size());
  CHECK(by["b/G.zip"] == scan_action::keep_verified);
  CHECK(by["b/G.zip.json"] == scan_action::keep_verified);
  CHECK(by["b/G.zip.lz4index"] == scan_action::keep_verified);
  for (const auto* kept :
       {"p/P.zip.part", "p/P.zip.part.map", "p/P.zip.part.json", "p/P.zip.part.lz4index"})
    CHECK(by[kept] == scan_action::keep_partial);
  for (const auto* gone : {"b/W.zip",
                           "b/W.zip.json",
                           "b/W.zip.lz4index",
                           "b/Z.zip.lz4index",
                           "b/T.zip",
                           "b/T.zip.json",
                           "b/N.zip",
                           "b/O.zip.json",
                           "b/x.json.tmp",
                           "p/S.zip.part",
                           "p/S.zip.part.map",
                           "p/M.zip.part",
                           "p/Q.zip.part.map",
                           "p/R.zip.part.map.tmp",
                           "p/U.zip.part",
                           "p/U.zip.part.map",
                           "p/V.zip.part",
                           "p/V.zip.part.map",
                           "p/V.zip.part.json",
                           "p/L.zip.part.json",
                           "p/L.zip.part.lz4index"})
    CHECK(by[gone] == scan_action::remove);
}

TEST_CASE("build_cache: pins and busy builds are never evicted; operators cannot remove them") {
  const auto dir = fs::temp_directory_path() / ("build-cache-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  build_cache cache(dir, 2500, quiet());
  cache.scan();
  for (const auto* stem : {"A", "B", "C"}) {
    const auto r = record(stem, 1000);
    cache.track_partial(r);
    REQUIRE_FALSE(cache.write_record(r));
    std::ofstream(cache.paths_for(r.meta).final) << std::string(1000, 'x');
    cache.published(r.meta.filename);
  }
  // What eviction could free is counted without evicting: idle verified builds only.
  CHECK(cache.evictable_bytes({}) == 3000);
  CHECK(cache.evictable_bytes([](const std::string& n) { return n == "C.zip.enc4"; }) == 2000);
  CHECK(cache.find("A.zip.enc4"));
  // A (oldest) is read: B goes instead.
  {
    auto pin = cache.acquire("A.zip.enc4");
    CHECK(cache.evictable_bytes({}) == 2000);
    const auto gone = cache.evict(0, {});
    CHECK(gone == std::vector<std::string>{"B.zip.enc4"});
    CHECK(cache.remove("A.zip.enc4", {}) == build_cache::remove_result::in_use);
  }
  CHECK(cache.find("A.zip.enc4"));
  CHECK_FALSE(fs::exists(dir / "builds" / "B.zip"));
  CHECK_FALSE(fs::exists(dir / "builds" / "B.zip.json"));
  // C is being written (busy): room for 1000 more takes A, not C.
  const auto gone = cache.evict(1000, [](const std::string& n) { return n == "C.zip.enc4"; });
  CHECK(gone == std::vector<std::string>{"A.zip.enc4"});
  CHECK(cache.remove("C.zip.enc4", {}) == build_cache::remove_result::removed);
  CHECK(cache.remove("C.zip.enc4", {}) == build_cache::remove_result::not_found);

  // A restart finds what a previous run left.
  const auto r = record("D", 1000);
  REQUIRE_FALSE(cache.write_record(r));
  std::ofstream(cache.paths_for(r.meta).final) << std::string(1000, 'x');
  build_cache again(dir, 0, quiet());
  again.scan();
  REQUIRE(again.find("D.zip.enc4"));
  CHECK(again.find("D.zip.enc4")->verified);
  CHECK(again.find_version("SM-A207F", "SER", "A/B/C/D"));
  CHECK(again.newest("SM-A207F", "SER")->record.meta.filename == "D.zip.enc4");
  fs::remove_all(dir);
}

TEST_CASE("build_cache: records evictions and the verified builds' size and count") {
  const auto dir =
      fs::temp_directory_path() / ("build-cache-metrics-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fusproxy::metrics::registry registry;
  upstream_metrics metrics(registry);
  build_cache cache(dir, 2500, quiet(), &metrics);
  cache.scan();
  CHECK(metrics.cache_builds.value() == 0);
  for (const auto* stem : {"A", "B"}) {
    const auto r = record(stem, 1000);
    cache.track_partial(r);
    CHECK(metrics.cache_size_bytes.value() == (stem[0] == 'A' ? 0 : 1000));  // partials: none
    REQUIRE_FALSE(cache.write_record(r));
    std::ofstream(cache.paths_for(r.meta).final) << std::string(1000, 'x');
    cache.published(r.meta.filename);
  }
  CHECK(metrics.cache_size_bytes.value() == 2000);
  CHECK(metrics.cache_builds.value() == 2);
  CHECK(cache.evict(1000, {}) == std::vector<std::string>{"A.zip.enc4"});
  CHECK(metrics.cache_evictions.value() == 1);
  CHECK(metrics.cache_size_bytes.value() == 1000);
  CHECK(metrics.cache_builds.value() == 1);
  CHECK(cache.remove("B.zip.enc4", {}) == build_cache::remove_result::removed);
  CHECK(metrics.cache_evictions.value() == 1);  // an operator removal is not an eviction
  CHECK(metrics.cache_size_bytes.value() == 0);
  CHECK(metrics.cache_builds.value() == 0);
  const auto text = registry.render();
  CHECK(text.find("fusproxy_cache_builds 0\n") != std::string::npos);
  fs::remove_all(dir);
}

// A partial build is indexed by its record, counted by the bytes present, evicted when idle;
// its LZ4 indexes move with it and go with it.
TEST_CASE("build_cache: partial builds across a restart, eviction and publication") {
  const auto dir =
      fs::temp_directory_path() / ("build-cache-partial-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto p = record("P", 100000);
  const auto paths = [&] {
    build_cache cache(dir, 0, quiet());
    cache.scan();
    cache.track_partial(p);  // a sparse fetch starts: its record is written beside the part
    const auto ps = cache.paths_for(p.meta);
    CHECK(fs::exists(ps.partial_meta));
    CHECK(cache.find("P.zip.enc4")->bytes == 0);
    // What a sparse job leaves: a part holding 4 KiB of the build, and its map.
    std::ofstream(ps.part) << std::string(p.meta.plain_size, '\0');
    fetch::present_map present(p.meta.size);
    REQUIRE(present.insert(8192, 12288, 0x1234));
    std::ofstream(ps.map) << fetch::serialize_saved_map(present, true);
    CHECK_FALSE(cache.write_lz4_index("P.zip.enc4", "learnt"));
    CHECK(fs::exists(ps.partial_lz4_index));
    CHECK(cache.write_lz4_index("nope", "x"));  // not in the cache: refused
    return ps;
  }();

  // A restart: the scan indexes it by its record, counting the 4 KiB present, not 100000.
  build_cache cache(dir, 50000, quiet());
  cache.scan();
  const auto* e = cache.find("P.zip.enc4");
  REQUIRE(e);
  CHECK_FALSE(e->verified);
  CHECK(e->bytes == 4096);
  CHECK(cache.used_bytes() == 4096);
  CHECK(cache.read_lz4_index("P.zip.enc4") == std::optional<std::string>("learnt"));
  // Idle, it is evictable; read (pinned) or fetched (busy), it is not.
  CHECK(cache.evictable_bytes({}) == 4096);
  {
    auto pin = cache.acquire("P.zip.enc4");
    CHECK(cache.evict(48000, {}).empty());
  }
  CHECK(cache.evict(48000, [](const std::string&) { return true; }).empty());
  CHECK(cache.evict(48000, {}) == std::vector<std::string>{"P.zip.enc4"});
  for (const auto& gone : {paths.part, paths.map, paths.partial_meta, paths.partial_lz4_index})
    CHECK_FALSE(fs::exists(gone));

  // Published: the index moves to builds/ and the partial record goes; a removal takes all.
  cache.track_partial(p);
  CHECK_FALSE(cache.write_lz4_index("P.zip.enc4", "learnt again"));
  REQUIRE_FALSE(cache.write_record(p));
  std::ofstream(paths.final) << std::string(p.meta.plain_size, 'x');
  cache.published("P.zip.enc4");
  CHECK_FALSE(fs::exists(paths.partial_meta));
  CHECK_FALSE(fs::exists(paths.partial_lz4_index));
  CHECK(cache.read_lz4_index("P.zip.enc4") == std::optional<std::string>("learnt again"));
  CHECK(cache.remove("P.zip.enc4", {}) == build_cache::remove_result::removed);
  CHECK_FALSE(fs::exists(paths.lz4_index));
  CHECK_FALSE(fs::exists(paths.meta));
  fs::remove_all(dir);
}

TEST_CASE("build_cache: /readyz's probe of the directory") {
  const auto dir = fs::temp_directory_path() / ("fusproxy-ready-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  build_cache cache(dir, 0, quiet());
  CHECK(!cache.why_not_writable());  // created on the way
  CHECK(fs::is_directory(dir));
  CHECK(fs::is_empty(dir));  // the probe file is gone again
  fs::remove_all(dir);
  CHECK(!cache.why_not_writable());  // a directory removed under the service comes back

  // A path under a regular file can never be a directory (even for root, unlike a mode).
  const auto file = dir / "a-file";
  std::ofstream(file) << "x";
  build_cache blocked(file / "cache", 0, quiet());
  const auto why = blocked.why_not_writable();
  REQUIRE(why);
  CHECK(*why == "cache directory '" + (file / "cache").string() + "' is not writable");
  fs::remove_all(dir);
}
