#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "crypto/crc32.hpp"
#include "fetch/fetch_plan.hpp"

using namespace fusproxy::server::fetch;
using namespace std::chrono_literals;
namespace crypto = fusproxy::crypto;

namespace {
std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  std::mt19937 rng(7);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}
std::uint32_t crc_of(const std::vector<std::uint8_t>& v, std::uint64_t b, std::uint64_t e) {
  crypto::crc32 c;
  c.update({v.data() + b, static_cast<std::size_t>(e - b)});
  return c.value();
}
}  // namespace

TEST_CASE("present_map: insert, merge, queries", "[stream][present]") {
  const auto data = pattern(1000);
  present_map m(1000);
  CHECK(m.first_missing(0) == 0);
  CHECK(m.next_present(0) == 1000);
  CHECK(m.contains(5, 5));
  CHECK(!m.contains(0, 1));

  REQUIRE(m.insert(100, 200, crc_of(data, 100, 200)));
  CHECK(m.present_until(100) == 200);
  CHECK(m.present_until(150) == 200);
  CHECK(m.present_until(99) == 99);
  CHECK(m.present_until(200) == 200);
  CHECK(m.first_missing(0) == 0);
  CHECK(m.first_missing(100) == 200);
  CHECK(m.next_present(0) == 100);
  CHECK(m.contains(120, 200));
  CHECK(!m.contains(120, 201));

  // Overlaps and bad ranges change nothing.
  CHECK(!m.insert(150, 250, 0));
  CHECK(!m.insert(50, 101, 0));
  CHECK(!m.insert(300, 300, 0));
  CHECK(!m.insert(900, 1001, 0));
  CHECK(m.present_bytes() == 100);

  // Touching runs merge, their CRCs combine.
  REQUIRE(m.insert(200, 300, crc_of(data, 200, 300)));
  REQUIRE(m.insert(0, 100, crc_of(data, 0, 100)));
  CHECK(m.runs().size() == 1);
  CHECK(m.runs().begin()->second.crc == crc_of(data, 0, 300));
  REQUIRE(m.insert(500, 1000, crc_of(data, 500, 1000)));
  CHECK(m.runs().size() == 2);
  CHECK(!m.complete());
  CHECK(!m.whole_crc());
  REQUIRE(m.insert(300, 500, crc_of(data, 300, 500)));
  CHECK(m.complete());
  CHECK(m.whole_crc() == crc_of(data, 0, 1000));
  CHECK(m.first_missing(0) == 1000);
}

TEST_CASE("present_map: any landing order gives the file's CRC", "[stream][present]") {
  const auto data = pattern(64 * 100);
  std::vector<std::uint64_t> order(100);
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937 rng(3);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    present_map m(data.size());
    for (auto i : order) REQUIRE(m.insert(i * 64, i * 64 + 64, crc_of(data, i * 64, i * 64 + 64)));
    CHECK(m.whole_crc() == crc_of(data, 0, data.size()));
  }
}

TEST_CASE("present_map: serialize and parse", "[stream][present]") {
  present_map m(4096);
  REQUIRE(m.insert(0, 160, 11));
  REQUIRE(m.insert(1600, 3200, 22));
  auto back = present_map::parse(m.serialize());
  REQUIRE(back);
  CHECK(back->serialize() == m.serialize());
  CHECK(back->present_bytes() == 160 + 1600);
  CHECK(!present_map::parse(""));
  CHECK(!present_map::parse("fusproxy-present 2 10\n"));
  CHECK(!present_map::parse("fusproxy-present 1 100\n0 50 1\n40 60 2\n"));  // overlap
  CHECK(!present_map::parse("fusproxy-present 1 100\n0 500 1\n"));          // past the end
  CHECK(!present_map::parse("fusproxy-present 1 100\n0 x 1\n"));
}

TEST_CASE("saved_map: the synced line round-trips; old maps read as not synced",
          "[stream][present]") {
  present_map m(1024);
  REQUIRE(m.insert(0, 512, 0x1234));
  const auto plain = serialize_saved_map(m, false);
  CHECK(plain == m.serialize());  // the format of maps saved before the flag existed
  const auto synced = serialize_saved_map(m, true);
  CHECK(synced == m.serialize() + "synced\n");
  for (const auto& [text, flag] : {std::pair{plain, false}, std::pair{synced, true}}) {
    auto back = parse_saved_map(text);
    REQUIRE(back);
    CHECK(back->synced == flag);
    CHECK(back->present.serialize() == m.serialize());
  }
  CHECK_FALSE(parse_saved_map(m.serialize() + "synced"));     // torn: no newline
  CHECK_FALSE(parse_saved_map(m.serialize() + "synced\nx"));  // anything after it
  CHECK_FALSE(parse_saved_map("synced\n"));
}

TEST_CASE("fetch_plan: chunks in order, claims never overlap", "[stream][plan]") {
  fetch_plan p(1000, 256);  // rounded to 256 (multiple of 16)
  CHECK(p.chunk_count() == 4);
  auto a = p.claim(1);
  auto b = p.claim(2);
  auto c = p.claim(3);
  auto d = p.claim(4);
  REQUIRE((a && b && c && d));
  CHECK(*a == byte_range{0, 256});
  CHECK(*b == byte_range{256, 512});
  CHECK(*c == byte_range{512, 768});
  CHECK(*d == byte_range{768, 1000});
  CHECK(!p.claim(5));
  CHECK(p.claimed_bytes() == 1000);

  // Progress of a claim, then a failure gives the rest back: the next claim resumes there.
  REQUIRE(p.reserve(1, {0, 64}).land == byte_range{0, 64});
  REQUIRE(p.landed(1, 0, 64, 0));
  CHECK(!p.landed(1, 0, 64, 0));     // already present
  CHECK(!p.landed(3, 600, 900, 0));  // not reserved
  p.release(1);
  auto again = p.claim(6);
  REQUIRE(again);
  CHECK(*again == byte_range{64, 256});
}

TEST_CASE("fetch_plan: chunk size rounds down to 16", "[stream][plan]") {
  fetch_plan p(100, 40);
  CHECK(p.chunk_size() == 32);
  fetch_plan q(100, 3);
  CHECK(q.chunk_size() == 16);
}

TEST_CASE("fetch_plan: readers' wanted bytes come first", "[stream][plan]") {
  fetch_plan p(100 * 16, 160);  // 10 chunks
  auto first = p.claim(7);
  REQUIRE(first);
  CHECK(first->begin == 0);
  // A reader jumps to byte 1000 (chunk 6): the next claim starts at its block, not at
  // chunk 1.
  p.want(1000);
  auto jump = p.claim(8);
  REQUIRE(jump);
  CHECK(*jump == byte_range{992, 1120});
  // Read-ahead: the reader's next chunk comes next while it still waits there.
  auto ahead = p.claim(9);
  REQUIRE(ahead);
  CHECK(*ahead == byte_range{1120, 1280});
  // Beyond a chunk of read-ahead: back to the lowest missing.
  auto low = p.claim(10);
  REQUIRE(low);
  CHECK(*low == byte_range{160, 320});
  p.unwant(1000);
  CHECK(p.wanted_count() == 0);
  // A claim stops at present bytes.
  REQUIRE(p.reserve(8, *jump).land == *jump);
  REQUIRE(p.landed(8, 992, 1120, 0));
  p.want(960);
  auto before = p.claim(11);
  REQUIRE(before);
  CHECK(*before == byte_range{960, 992});
}

TEST_CASE("fetch_plan: lowest wanted position first", "[stream][plan]") {
  fetch_plan p(100 * 16, 160);
  p.want(1400);
  p.want(500);
  auto a = p.claim(12);
  REQUIRE(a);
  CHECK(*a == byte_range{496, 640});  // the block holding byte 500, to its chunk's end
  auto b = p.claim(13);
  REQUIRE(b);
  CHECK(*b == byte_range{640, 800});  // its read-ahead before the far reader
  auto c = p.claim(14);
  REQUIRE(c);
  CHECK(c->begin == 1392);
}

TEST_CASE("fetch_plan: a resumed map fetches only what is missing", "[stream][plan]") {
  present_map m(1024);
  REQUIRE(m.insert(0, 512, 1));
  REQUIRE(m.insert(768, 1024, 2));
  fetch_plan p(std::move(m), 256);
  auto a = p.claim(15);
  REQUIRE(a);
  CHECK(*a == byte_range{512, 768});
  CHECK(!p.claim(16));
  REQUIRE(p.reserve(15, *a).land == *a);
  REQUIRE(p.landed(15, 512, 768, 3));
  CHECK(p.present().complete());
}

TEST_CASE("fetch_plan: restored runs are present; never over claims or present bytes",
          "[stream][plan]") {
  fetch_plan p(1024, 256);
  REQUIRE(p.restore(256, 512, 7));
  CHECK(p.present().contains(256, 512));
  CHECK_FALSE(p.restore(384, 640, 8));  // overlaps present bytes
  auto a = p.claim(17);
  REQUIRE(a);
  CHECK(*a == byte_range{0, 256});
  CHECK_FALSE(p.restore(128, 256, 9));  // inside a claim
  CHECK_FALSE(p.restore(200, 300, 9));  // across a claim
  CHECK_FALSE(p.restore(600, 600, 9));  // empty
  CHECK(p.restore(768, 1024, 10));
  CHECK(p.present().present_bytes() == 512);
  auto b = p.claim(18);
  REQUIRE(b);
  CHECK(*b == byte_range{512, 768});
  CHECK_FALSE(p.claim(19));
}

TEST_CASE("retry_policy: back-off, progress resets, budget", "[stream][retry]") {
  retry_policy r({100ms, 1000ms, 5}, 10);
  unsigned streak = 0;
  CHECK(r.on_failure(streak, false, 0s) == 0ms);  // first failure: at once
  CHECK(r.on_failure(streak, false, 0s) == 100ms);
  CHECK(r.on_failure(streak, false, 0s) == 200ms);
  CHECK(r.on_failure(streak, false, 0s) == 400ms);
  CHECK(r.on_failure(streak, false, 0s) == 800ms);
  CHECK(!r.on_failure(streak, false, 0s));  // sixth in a row: give up
  // A worker that received bytes starts over; Retry-After is a floor.
  unsigned other = 3;
  CHECK(r.on_failure(other, true, 0s) == 0ms);
  CHECK(other == 1);
  CHECK(r.on_failure(other, false, 2s) == 2000ms);
  // The cap.
  retry_policy capped({1000ms, 3000ms, 100}, 1);
  unsigned s = 0;
  std::chrono::milliseconds last{};
  for (int i = 0; i < 8; ++i) last = *capped.on_failure(s, false, 0s);
  CHECK(last == 3000ms);
  // The total budget: 64 + 4 per chunk, even with progress every time.
  retry_policy total({1ms, 1ms, 3}, 1);
  unsigned t = 0;
  for (int i = 0; i < 68; ++i) REQUIRE(total.on_failure(t, true, 0s));
  CHECK(!total.on_failure(t, true, 0s));
}

TEST_CASE("connection_governor: probes growth, keeps what helps, sheds on refusals",
          "[stream][gov]") {
  using clock = connection_governor::clock;
  auto t = clock::time_point{} + 1h;
  connection_governor g(16, 4, t, 1s, 30s);
  CHECK(g.target() == 4);
  CHECK(g.max() == 16);
  g.tick(t + 500ms, 400, true);  // not a probe interval yet
  CHECK(g.target() == 4);
  g.tick(t + 1s, 400, false);  // workers idle: growing is pointless
  CHECK(g.target() == 4);
  g.tick(t + 1s, 400, true);  // probe: the count doubles
  CHECK(g.target() == 8);
  // +100 % (at least half of what 4 more connections at 100 each give): kept, and the next
  // probe starts at once from the rate just measured, up to the ceiling.
  g.tick(t + 2s, 800, true);
  CHECK(g.grown() == 1);
  CHECK(g.target() == 16);
  g.tick(t + 3s, 840, true);  // +5 %: undone, and the next probe waits longer
  CHECK(g.target() == 8);
  CHECK(g.undone() == 1);
  g.tick(t + 4s, 840, true);
  CHECK(g.target() == 8);  // backing off
  g.tick(t + 5s, 840, true);
  CHECK(g.target() == 16);  // probing again
  // A refusal: the connections that work, at most one less; no growth for the hold.
  g.shed(5, t + 5500ms);
  CHECK(g.target() == 5);
  g.shed(7, t + 5600ms);
  CHECK(g.target() == 4);
  for (int i = 0; i < 25; ++i) g.tick(t + 6s + i * 1s, 1000, true);
  CHECK(g.target() == 4);
  CHECK(g.sheds() == 2);
  // After the hold it probes again, up to the ceiling at most: a link that scales is there
  // in one probe interval per doubling.
  auto now = t + 40s;
  g.tick(now, 400, true);
  CHECK(g.target() == 8);
  now += 1s;
  g.tick(now, 800, true);
  CHECK(g.target() == 16);
  now += 1s;
  g.tick(now, 1600, true);
  CHECK(g.target() == 16);
  for (int i = 0; i < 10; ++i) {
    now += 1s;
    g.tick(now, 100.0 * g.target(), true);
  }
  CHECK(g.target() == 16);
  connection_governor one(1, 8, t);
  CHECK(one.target() == 1);
  one.shed(0, t);
  CHECK(one.target() == 1);
  // An odd ceiling: the last step is what is left below it.
  connection_governor odd(12, 8, t, 1s, 30s);
  odd.tick(t + 1s, 800, true);
  CHECK(odd.target() == 12);
}

TEST_CASE("token_bucket: keeps the average rate", "[stream][bucket]") {
  using clock = token_bucket::clock;
  auto t = clock::time_point{} + 1h;
  token_bucket off(0, t);
  CHECK(off.take(1'000'000'000, t) == clock::duration::zero());

  token_bucket b(1000, t);  // 1000 B/s, burst 100
  CHECK(b.take(100, t) == clock::duration::zero());
  const auto pause = b.take(500, t);
  CHECK(std::chrono::duration<double>(pause).count() == Approx(0.5).epsilon(0.01));
  // Simulate: 10 s of 64-byte reads honouring the pauses deliver ~10 000 bytes.
  token_bucket c(1000, t);
  auto now = t;
  std::uint64_t sent = 0;
  while (now < t + 10s) {
    sent += 64;
    now += std::max<clock::duration>(c.take(64, now), 1ms);
  }
  CHECK(sent == Approx(10'100).margin(200));
}

TEST_CASE("rate_meter: bytes over the window", "[stream][rate]") {
  using clock = rate_meter::clock;
  rate_meter m(std::chrono::seconds(2));
  auto t = clock::time_point{} + 1h;
  CHECK(m.rate(t) == 0);
  for (int i = 0; i < 20; ++i) m.add(100, t + i * 100ms);
  CHECK(m.rate(t + 2s) == Approx(1000).epsilon(0.1));
  CHECK(m.rate(t + 10s) == 0);
}

TEST_CASE("fetch_plan: the window limits claims, not wanted bytes", "[stream][plan]") {
  fetch_plan p(1600, 160);
  auto a = p.claim(20, 300);
  REQUIRE(a);
  CHECK(*a == byte_range{0, 160});
  auto b = p.claim(21, 300);
  REQUIRE(b);
  CHECK(*b == byte_range{160, 320});  // starts below the limit: the whole chunk
  CHECK(!p.claim(22, 300));
  CHECK(p.has_unclaimed());
  p.want(1000);
  auto c = p.claim(23, 300);
  REQUIRE(c);
  CHECK(c->begin == 992);
}

TEST_CASE("fetch_plan: claims grow by size and end on the chunk grid", "[stream][plan]") {
  fetch_plan p(10 * 256, 256);
  auto a = p.claim(0, UINT64_MAX, 600);  // 600 -> 592 -> ends on the grid at 512
  REQUIRE(a);
  CHECK(*a == byte_range{0, 512});
  auto b = p.claim(1, UINT64_MAX, 1024);
  REQUIRE(b);
  CHECK(*b == byte_range{512, 1536});
  CHECK_FALSE(p.claim(1));  // a worker holds one claim at a time
  CHECK(p.unclaimed_bytes() == 10 * 256 - 1536);
  CHECK(p.unclaimed_bytes(1024) == 0);
}

TEST_CASE("fetch_plan: a hedge's helper skips what the victim landed, then takes over",
          "[stream][plan][hedge]") {
  const auto data = pattern(4096);
  fetch_plan p(4096, 4096);
  auto v = p.claim(1);
  REQUIRE(v);
  CHECK(*v == byte_range{0, 4096});
  // The victim lands its first 256 bytes, reserves the next 256 (landing in flight).
  REQUIRE(p.reserve(1, {0, 256}).land == byte_range{0, 256});
  REQUIRE(p.landed(1, 0, 256, crc_of(data, 0, 256)));
  REQUIRE(p.reserve(1, {256, 512}).land == byte_range{256, 512});
  // The helper's GET starts at the victim's cursor (past the batch being landed).
  auto h = p.hedge(2, 1);
  REQUIRE(h);
  CHECK(*h == byte_range{512, 4096});
  CHECK(p.helper_of(1) == 2u);
  CHECK(p.victim_of(2) == 1u);
  CHECK_FALSE(p.hedge(3, 1));  // one helper per claim
  // The victim still lands first: the helper's batch of the same bytes is skipped.
  REQUIRE(p.landed(1, 256, 512, crc_of(data, 256, 512)));
  REQUIRE(p.reserve(1, {512, 640}).land == byte_range{512, 640});
  auto skipped = p.reserve(2, {512, 640});
  CHECK(skipped.land.empty());
  CHECK_FALSE(skipped.cut);
  // The helper's next batch reaches past the victim's cursor: it lands the new part, wins
  // the claim, and the victim is to be cut.
  auto win = p.reserve(2, {640, 1024});
  CHECK(win.land == byte_range{640, 1024});
  REQUIRE(win.cut);
  CHECK(*win.cut == 1u);
  CHECK_FALSE(p.holding(1));
  CHECK(p.holding(2) == byte_range{1024, 4096});
  // The victim's in-flight batch still lands (it was its own); nothing else of it does.
  REQUIRE(p.landed(1, 512, 640, crc_of(data, 512, 640)));
  CHECK(p.reserve(1, {640, 768}).land.empty());
  REQUIRE(p.landed(2, 640, 1024, crc_of(data, 640, 1024)));
  REQUIRE(p.reserve(2, {1024, 4096}).land == byte_range{1024, 4096});
  REQUIRE(p.landed(2, 1024, 4096, crc_of(data, 1024, 4096)));
  // Every byte landed once: the map's CRC is the file's.
  REQUIRE(p.present().complete());
  CHECK(p.present().whole_crc() == crc_of(data, 0, 4096));
}

TEST_CASE("fetch_plan: a victim that finishes first leaves its helper nothing",
          "[stream][plan][hedge]") {
  fetch_plan p(1024, 1024);
  REQUIRE(p.claim(1));
  REQUIRE(p.hedge(2, 1));
  REQUIRE(p.reserve(1, {0, 1024}).land == byte_range{0, 1024});
  CHECK_FALSE(p.holding(2));
  CHECK_FALSE(p.victim_of(2));
  CHECK(p.reserve(2, {0, 512}).land.empty());
  REQUIRE(p.landed(1, 0, 1024, 5));
  CHECK(p.present().complete());
}

TEST_CASE("fetch_plan: a failed victim's claim goes to its helper; a failed helper's hedge ends",
          "[stream][plan][hedge]") {
  fetch_plan p(1024, 1024);
  REQUIRE(p.claim(1));
  REQUIRE(p.hedge(2, 1));
  p.release(1);
  CHECK(p.holding(2) == byte_range{0, 1024});
  CHECK_FALSE(p.has_unclaimed());
  REQUIRE(p.hedge(3, 2));
  p.release(3);
  CHECK(p.holding(2) == byte_range{0, 1024});
  CHECK_FALSE(p.helper_of(2));
  p.release(2);
  CHECK(p.unclaimed_bytes() == 1024);
}

TEST_CASE("fetch_plan: a batch starting past the cursor never lands (no holes)",
          "[stream][plan][hedge]") {
  fetch_plan p(1024, 1024);
  REQUIRE(p.claim(1));
  CHECK(p.reserve(1, {16, 64}).land.empty());
  CHECK(p.reserve(1, {0, 64}).land == byte_range{0, 64});
}

TEST_CASE("fetch_plan: the end game splits a claim; the victim stops at the thief's start",
          "[stream][plan][split]") {
  const auto data = pattern(2048);
  fetch_plan p(2048, 2048);
  REQUIRE(p.claim(1));
  REQUIRE(p.reserve(1, {0, 512}).land == byte_range{0, 512});
  CHECK_FALSE(p.split(2, 1, 512));   // at the cursor: nothing left to the victim
  CHECK_FALSE(p.split(2, 1, 2048));  // at the end
  auto t = p.split(2, 1, 1300);      // rounded down to 16
  REQUIRE(t);
  CHECK(*t == byte_range{1296, 2048});
  CHECK(p.holding(1) == byte_range{512, 1296});
  // The victim's batch past its new end lands only up to it.
  CHECK(p.reserve(1, {512, 1536}).land == byte_range{512, 1296});
  CHECK_FALSE(p.holding(1));
  REQUIRE(p.landed(1, 0, 512, crc_of(data, 0, 512)));
  REQUIRE(p.landed(1, 512, 1296, crc_of(data, 512, 1296)));
  REQUIRE(p.reserve(2, *t).land == *t);
  REQUIRE(p.landed(2, 1296, 2048, crc_of(data, 1296, 2048)));
  CHECK(p.present().whole_crc() == crc_of(data, 0, 2048));
}

TEST_CASE("fetch_plan: unreserve frees; restore never overlaps a reservation", "[stream][plan]") {
  fetch_plan p(1024, 1024);
  REQUIRE(p.claim(1));
  REQUIRE(p.reserve(1, {0, 256}).land == byte_range{0, 256});
  p.release(1);
  CHECK_FALSE(p.restore(0, 128, 1));
  CHECK(p.unclaimed_bytes() == 768);
  p.unreserve(1, {0, 256});
  CHECK(p.unclaimed_bytes() == 1024);
  CHECK(p.restore(0, 128, 1));
}

TEST_CASE("connection_rates: per-connection rates, typical rate, stalls", "[stream][rates]") {
  using clock = connection_rates::clock;
  auto t = clock::time_point{} + 1h;
  connection_rates r(1s);
  for (worker_id w = 0; w < 4; ++w) r.opened(w, t);
  // Three connections at 1 MB/s, one that trickles at 10 kB/s after a burst.
  for (int i = 1; i <= 30; ++i) {
    const auto now = t + i * 50ms;
    for (worker_id w = 0; w < 3; ++w) r.received(w, 50'000, now);
    r.received(3, i == 1 ? 200'000 : 500, now);
  }
  const auto now = t + 1500ms;
  CHECK(r.rate(0, now) == Approx(1e6).epsilon(0.1));
  CHECK(r.rate(3, now) == Approx(1e4).epsilon(0.1));
  CHECK(r.typical_rate(now) == Approx(1e6).epsilon(0.1));
  CHECK(r.first_byte_latency() == 50ms);
  CHECK(r.stall_after() == 750ms);
  auto slow = find_slow(r, {0, 1, 2, 3}, now);
  REQUIRE(slow.size() == 1);
  CHECK(slow[0].w == 3u);
  CHECK_FALSE(slow[0].stalled);
  // Connection 1 stops receiving: a stall after stall_after.
  const auto later = now + 800ms;
  for (worker_id w : {0u, 2u}) r.received(w, 50'000, later);
  r.received(3, 500, later);
  auto stalled = find_slow(r, {1}, later);
  REQUIRE(stalled.size() == 1);
  CHECK(stalled[0].stalled);
  // A closed connection's average feeds the typical rate when none is open long enough.
  for (worker_id w = 0; w < 4; ++w) r.closed(w, later);
  CHECK(r.typical_rate(later) > 0);
  CHECK(find_slow(r, {0, 1, 2, 3}, later).empty());
}

TEST_CASE("pick_split and claim_size: fewer GETs, connections finish together", "[stream][split]") {
  using clock = connection_rates::clock;
  auto t = clock::time_point{} + 1h;
  connection_rates r(1s);
  r.opened(1, t);
  r.opened(2, t);
  for (int i = 1; i <= 20; ++i) {
    r.received(1, 100'000, t + i * 50ms);  // 2 MB/s
    r.received(2, 100'000, t + i * 50ms);
  }
  const auto now = t + 1s;
  // Claim of 1 has 8 MB left (4 s), claim of 2 has 1 MB: split 1 in the middle.
  std::vector<std::pair<worker_id, byte_range>> claims{{1, {0, 8'000'000}},
                                                       {2, {8'000'000, 9'000'000}}};
  auto s = pick_split(claims, r, now, 256 << 10, 200ms);
  REQUIRE(s);
  CHECK(s->victim == 1u);
  CHECK(s->at == 4'000'000);
  // Nothing worth splitting.
  CHECK_FALSE(pick_split({{2, {0, 300'000}}}, r, now, 256 << 10, 200ms));

  // The first claim is the start size; then 4 x the previous one, up to max.
  CHECK(claim_size(2 << 20, 128 << 20, 0) == 2 << 20);
  CHECK(claim_size(2 << 20, 128 << 20, 2 << 20) == 8 << 20);
  CHECK(claim_size(2 << 20, 128 << 20, 32 << 20) == 128 << 20);
  CHECK(claim_size(2 << 20, 128 << 20, 128 << 20) == 128 << 20);
  CHECK(claim_size(2 << 20, 128 << 20, 1 << 20) == 4 << 20);
  CHECK(claim_size(1000, 100, 0) == 992);  // max below start: start, multiple of 16
}

TEST_CASE("fetch_plan: claims stop at the followers' end; wanted bytes past it are not cut",
          "[stream][plan][follow]") {
  fetch_plan p(4096, 1024);
  // A claim starting below stop ends at it, rounded up to a block.
  auto a = p.claim(1, 1000, 1024, 1000);
  REQUIRE(a);
  CHECK(*a == byte_range{0, 1008});
  // Nothing below the limit is left: no claim (the window, or the readers' end, binds).
  CHECK_FALSE(p.claim(2, 1000, 1024, 1000));
  // A reader waiting past every follower's end (a probe of the tail) still gets its bytes,
  // up to the chunk grid as always (not cut at stop).
  p.want(3000);
  auto b = p.claim(2, 1000, 1024, 1000);
  REQUIRE(b);
  CHECK(*b == byte_range{2992, 3072});
  // No stop (UINT64_MAX): claims are not cut.
  fetch_plan q(4096, 1024);
  auto c = q.claim(1, UINT64_MAX, 2048, UINT64_MAX);
  REQUIRE(c);
  CHECK(*c == byte_range{0, 2048});
}

TEST_CASE(
    "fetch_plan: split_candidates: every claim at the end, the claims before the "
    "followers' end, else only the claim readers wait on",
    "[stream][plan][follow][split]") {
  fetch_plan p(4096, 512);
  REQUIRE(p.claim(1, 2048));  // 0-512
  REQUIRE(p.claim(2, 2048));  // 512-1024
  REQUIRE(p.claim(3, 2048));  // 1024-1536
  REQUIRE(p.claim(4, 2048));  // 1536-2048
  // The window (2048) binds and bytes past it are unclaimed: no reader waits, nothing to split.
  CHECK(p.split_candidates().empty());
  // A reader waits at 700: only the claim holding it (worker 2's).
  p.want(700);
  auto only = p.split_candidates();
  REQUIRE(only.size() == 1);
  CHECK(only[0].first == 2u);
  // The followers read up to 2048: everything below is claimed, so the claims before it
  // are all candidates (they finish together at the readers' end).
  CHECK(p.split_candidates(2048).size() == 4);
  // Bytes below the followers' end are still unclaimed: only the readers' claim.
  CHECK(p.split_candidates(3000).size() == 1);
  // The job's end: every missing byte is claimed, every claim is a candidate.
  REQUIRE(p.claim(5, 4096, 4096));  // 2048-4096
  CHECK(p.split_candidates().size() == 5);
}

TEST_CASE("follow_window and follow_claim_max: two rounds of claims fit the window",
          "[stream][follow]") {
  constexpr std::uint64_t MiB = 1 << 20;
  // 2 MiB first claims: 32 MiB claims, two rounds per connection, at least 64 MiB.
  CHECK(follow_window(8, 2 * MiB, 128 * MiB) == 512 * MiB);
  CHECK(follow_window(16, 2 * MiB, 128 * MiB) == 1024 * MiB);
  CHECK(follow_window(1, 2 * MiB, 128 * MiB) == 64 * MiB);
  CHECK(follow_window(8, 2 * MiB, 8 * MiB) == 128 * MiB);  // the max claim bounds it
  CHECK(follow_claim_max(512 * MiB, 8, 2 * MiB) == 32 * MiB);
  CHECK(follow_claim_max(1024 * MiB, 16, 2 * MiB) == 32 * MiB);
  CHECK(follow_claim_max(64 * MiB, 1, 2 * MiB) == 32 * MiB);
  CHECK(follow_claim_max(100 * MiB, 8, 2 * MiB) == 6 * MiB);  // on the grid
  CHECK(follow_claim_max(8 * MiB, 16, 2 * MiB) == 2 * MiB);   // at least one grid step
  CHECK(follow_claim_max(4096, 0, 0) == 2048);                // no connections counts as one
}

TEST_CASE("split_worth: a quarter second at the typical rate, two first claims at least",
          "[stream][split]") {
  constexpr std::uint64_t MiB = 1 << 20;
  auto paced = split_worth(2 * MiB, 8.0 * MiB, 2ms);  // 8 MiB/s per connection
  CHECK(paced.min_bytes == 4 * MiB);
  CHECK(paced.min_time == 250ms);
  auto fast = split_worth(2 * MiB, 20e6, 100ms);  // 20 MB/s, a CDN's first-byte latency
  CHECK(fast.min_bytes == 5'000'000);
  CHECK(fast.min_time == 400ms);
  CHECK(split_worth(2 * MiB, 0, 0ms).min_bytes == 4 * MiB);  // no rate known yet
  // A 16 MiB claim at 20 MB/s the readers wait for is split in two (0.42 s sooner); its
  // last 9 MB are not (the pieces would be under the bound).
  using clock = connection_rates::clock;
  auto t = clock::time_point{} + 1h;
  connection_rates r(1s);
  r.opened(1, t);
  for (int i = 1; i <= 20; ++i) r.received(1, 1'000'000, t + i * 50ms);
  auto s = pick_split({{1, {0, 16 * MiB}}}, r, t + 1s, fast.min_bytes, fast.min_time);
  REQUIRE(s);
  CHECK(s->at == 8 * MiB);
  CHECK_FALSE(pick_split({{1, {0, 9'000'000}}}, r, t + 1s, fast.min_bytes, fast.min_time));
}

TEST_CASE("fetch_plan: sparse mode claims only declared interests, ends claims there",
          "[stream][plan][sparse]") {
  fetch_plan p(100u << 20, 2u << 20);
  p.set_sparse(true);
  CHECK_FALSE(p.has_work());
  CHECK_FALSE(p.claim(0));  // nothing declared: nothing fetched
  p.want(5000);             // a waiting reader alone does not widen a sparse fetch
  CHECK_FALSE(p.claim(0));
  p.unwant(5000);
  // A tar header: 512 bytes at an odd offset -> the whole blocks around it, nothing more.
  p.add_interest(10'000'001, 10'000'513);
  CHECK(p.has_work());
  auto c = p.claim(0, UINT64_MAX, 8u << 20);
  REQUIRE(c);
  CHECK(c->begin == 10'000'000);
  CHECK(c->end == 10'000'528);
  CHECK_FALSE(p.claim(1));  // everything declared is claimed
  // An entry of 5 MiB: two workers split it, claims clipped at its end.
  p.add_interest(40u << 20, (45u << 20) + 100);
  auto a = p.claim(1, UINT64_MAX, 4u << 20);
  auto b = p.claim(2, UINT64_MAX, 4u << 20);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->begin == (40u << 20));
  CHECK(b->begin == a->end);
  CHECK(b->end == (45u << 20) + 112);
  CHECK_FALSE(p.claim(3));
  p.remove_interest(40u << 20, (45u << 20) + 100);
  p.remove_interest(10'000'001, 10'000'513);
  CHECK(p.interest_count() == 0);
  // Complete mode: interests come first, then the lowest missing byte as before.
  fetch_plan q(100u << 20, 2u << 20);
  q.add_interest(50u << 20, (50u << 20) + 100);
  auto first = q.claim(0);
  REQUIRE(first);
  CHECK(first->begin == (50u << 20));
  auto second = q.claim(1);
  REQUIRE(second);
  CHECK(second->begin == 0);
  CHECK(q.has_work());
}
