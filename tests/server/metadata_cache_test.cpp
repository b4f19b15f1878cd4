// The resolver's cache policy (firmware/metadata_cache.hpp) and its bounded map
// (firmware/lru_map.hpp): keys, TTLs, stale answers, remembered errors. Pure: the time is
// passed in, no clock is read.
#include <catch2/catch.hpp>

#include "firmware/lru_map.hpp"
#include "firmware/metadata_cache.hpp"

using namespace fusproxy::server;
using namespace std::chrono_literals;
using clock_type = metadata_cache::clock;

namespace {

const std::string full_a = "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2";
const std::string full_b = "A207FXXU2CVA1/A207FOXM2CVA1/A207FXXU2CVA1/A207FXXU2CVA1";

firmware_metadata build(const std::string& version) {
  firmware_metadata m;
  m.model = "SM-A207F";
  m.region = "SER";
  m.version = version;
  m.filename = "SM-A207F_" + version.substr(0, 13) + ".zip.enc4";
  return m;
}

version_list list_of(const std::string& latest) {
  version_list l;
  l.model = "SM-A207F";
  l.region = "SER";
  l.latest = latest;
  l.versions.push_back({latest, "R(Android 11)", false});
  return l;
}

service_error not_found() {
  return {firmware_errc::not_found, "no such build", {}};
}

const version_ref latest{version_ref::latest, "latest"};

}  // namespace

TEST_CASE("lru_map forgets the least recently used entry first") {
  lru_map<int> m(2);
  m.put("a", 1);
  m.put("b", 2);
  REQUIRE(m.find("a"));  // a is now the most recent
  m.put("c", 3);         // b goes
  CHECK(m.find("b") == nullptr);
  REQUIRE(m.find("a"));
  CHECK(*m.find("a") == 1);
  CHECK(*m.find("c") == 3);
  CHECK(m.size() == 2);
  CHECK(m.entries().front().first == "c");  // most recent first

  m.put("a", 10);  // an update, no eviction
  CHECK(m.size() == 2);
  CHECK(*m.find("a") == 10);
  m.erase("a");
  m.erase("nothing");
  CHECK(m.size() == 1);

  lru_map<int> one(0);  // capacity 0 keeps the last put
  one.put("x", 1);
  one.put("y", 2);
  CHECK(one.size() == 1);
  CHECK(one.find("y"));
}

TEST_CASE("metadata keys: latest, PDA and full versions; full spellings meet") {
  const auto k_latest = metadata_key_of("SM-A207F", "SER", latest);
  CHECK(k_latest.text == "SM-A207F|SER|latest");
  CHECK_FALSE(k_latest.immutable);

  const auto k_pda = metadata_key_of("SM-A207F", "SER", {version_ref::pda, "A207FXXU2CUI2"});
  CHECK(k_pda.text == "SM-A207F|SER|pda:A207FXXU2CUI2");
  CHECK_FALSE(k_pda.immutable);

  const auto k_full = metadata_key_of("SM-A207F", "SER", {version_ref::full, full_a});
  CHECK(k_full.text == "SM-A207F|SER|" + full_a);
  CHECK(k_full.immutable);
  // The 3-part (FOTA) spelling normalises to the same 4 parts.
  const auto k_three = metadata_key_of(
      "SM-A207F", "SER", {version_ref::full, "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2"});
  CHECK(k_three.text == k_full.text);
  // A version upstream would refuse keeps its text.
  CHECK(metadata_key_of("M", "R", {version_ref::full, "x/y"}).text == "M|R|x/y");

  CHECK(pair_key("SM-A207F", "SER") == "SM-A207F|SER");
}

TEST_CASE("latest: fresh for the TTL with its age, then only a stale answer") {
  metadata_cache cache(60s, {});
  const auto t0 = clock_type::time_point{} + 1000s;
  const auto key = metadata_key_of("SM-A207F", "SER", latest);
  CHECK_FALSE(cache.fresh_metadata(key.text, t0));
  CHECK_FALSE(cache.stale_metadata(key, t0));

  cache.keep_metadata("SM-A207F", "SER", key, build(full_a), t0);
  auto hit = cache.fresh_metadata(key.text, t0 + 59s);
  REQUIRE(hit);
  CHECK(hit->version == full_a);
  CHECK(hit->fresh.age_seconds == 59);
  CHECK_FALSE(hit->fresh.stale);

  CHECK_FALSE(cache.fresh_metadata(key.text, t0 + 60s));  // the TTL is over
  auto stale = cache.stale_metadata(key, t0 + 600s);      // kept for when upstream fails
  REQUIRE(stale);
  CHECK(stale->version == full_a);
  CHECK(stale->fresh.age_seconds == 600);
  CHECK(stale->fresh.stale);
}

TEST_CASE("the served build is kept immutable under its full version") {
  metadata_cache cache(60s, {});
  const auto t0 = clock_type::time_point{} + 1000s;
  cache.keep_metadata("SM-A207F", "SER", metadata_key_of("SM-A207F", "SER", latest), build(full_a),
                      t0);
  const auto full = metadata_key_of("SM-A207F", "SER", {version_ref::full, full_a});
  const auto* hit = cache.build(full.text);
  REQUIRE(hit);
  CHECK(hit->version == full_a);
  CHECK_FALSE(hit->fresh.stale);
  // Immutable: no TTL, and never a stale answer (a hit would have answered).
  CHECK(cache.build(full.text));
  CHECK_FALSE(cache.stale_metadata(full, t0 + 100000s));
  // A full-version lookup does not fill the TTL cache.
  CHECK(cache.counts().moving == 1);
  cache.keep_metadata("SM-A207F", "SER", full, build(full_a), t0);
  CHECK(cache.counts().moving == 1);
  CHECK(cache.counts().builds == 1);
}

TEST_CASE("definitive errors are remembered for min(TTL, 30 s), and forgotten on success") {
  const auto t0 = clock_type::time_point{} + 1000s;
  const auto key = metadata_key_of("SM-A207F", "SER", {version_ref::pda, "A207FXXU9ZZZ9"});

  metadata_cache long_ttl(3600s, {});
  long_ttl.remember_metadata_error(key.text, not_found(), t0);
  auto err = long_ttl.metadata_error(key.text, t0 + 29s);
  REQUIRE(err);
  CHECK(err->kind == firmware_errc::not_found);
  CHECK_FALSE(long_ttl.metadata_error(key.text, t0 + 30s));

  metadata_cache short_ttl(5s, {});
  short_ttl.remember_metadata_error(key.text, not_found(), t0);
  CHECK(short_ttl.metadata_error(key.text, t0 + 4s));
  CHECK_FALSE(short_ttl.metadata_error(key.text, t0 + 5s));

  // Upstream answering the lookup forgets its error.
  long_ttl.keep_metadata("SM-A207F", "SER", key, build(full_a), t0 + 1s);
  CHECK_FALSE(long_ttl.metadata_error(key.text, t0 + 2s));
}

TEST_CASE("version lists: TTL, stale answers, their own errors") {
  metadata_cache cache(60s, {});
  const auto t0 = clock_type::time_point{} + 1000s;
  const auto pair = pair_key("SM-A207F", "SER");
  CHECK_FALSE(cache.fresh_versions(pair, t0));
  CHECK_FALSE(cache.stale_versions(pair, t0));

  cache.keep_versions(pair, list_of(full_a), t0);
  auto hit = cache.fresh_versions(pair, t0 + 10s);
  REQUIRE(hit);
  CHECK(hit->latest == full_a);
  CHECK(hit->fresh.age_seconds == 10);
  CHECK_FALSE(hit->fresh.stale);
  CHECK_FALSE(cache.fresh_versions(pair, t0 + 61s));
  auto stale = cache.stale_versions(pair, t0 + 61s);
  REQUIRE(stale);
  CHECK(stale->fresh.stale);
  CHECK(stale->fresh.age_seconds == 61);

  // A list's error and a metadata error of the same pair never meet.
  cache.remember_versions_error(pair, not_found(), t0);
  CHECK(cache.versions_error(pair, t0 + 1s));
  CHECK_FALSE(cache.metadata_error(pair, t0 + 1s));
  CHECK_FALSE(cache.versions_error(pair, t0 + 31s));
}

TEST_CASE("bounded by count; known builds most recently used first") {
  metadata_cache_limits limits;
  limits.immutable_entries = 2;
  limits.ttl_entries = 1;
  limits.error_entries = 1;
  metadata_cache cache(60s, limits);
  const auto t0 = clock_type::time_point{} + 1000s;
  const auto key_of = [](const std::string& v) {
    return metadata_key_of("SM-A207F", "SER", {version_ref::full, v}).text;
  };
  const std::string full_c = "A207FXXU3DVC1/A207FOXM3DVC1/A207FXXU3DVC1/A207FXXU3DVC1";
  cache.keep_build(key_of(full_a), build(full_a), t0);
  cache.keep_build(key_of(full_b), build(full_b), t0);
  REQUIRE(cache.build(key_of(full_a)));  // a: most recently used
  cache.keep_build(key_of(full_c), build(full_c), t0);
  CHECK_FALSE(cache.build(key_of(full_b)));

  const auto known = cache.known_builds(10);
  REQUIRE(known.size() == 2);
  CHECK(known[0].version == full_c);
  CHECK(known[1].version == full_a);
  CHECK(cache.known_builds(1).size() == 1);

  cache.remember_metadata_error("x", not_found(), t0);
  cache.remember_metadata_error("y", not_found(), t0);
  const auto n = cache.counts();
  CHECK(n.builds == 2);
  CHECK(n.errors == 1);
  CHECK(n.moving == 0);
  CHECK(n.versions == 0);
}
