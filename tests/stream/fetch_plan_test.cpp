#include <catch2/catch.hpp>
#include <random>
#include <vector>

#include "crypto/crc32.hpp"
#include "server/fetch_plan.hpp"

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
  auto a = p.claim();
  auto b = p.claim();
  auto c = p.claim();
  auto d = p.claim();
  REQUIRE((a && b && c && d));
  CHECK(*a == byte_range{0, 256});
  CHECK(*b == byte_range{256, 512});
  CHECK(*c == byte_range{512, 768});
  CHECK(*d == byte_range{768, 1000});
  CHECK(!p.claim());
  CHECK(p.claimed_bytes() == 1000);

  // Progress of a claim, then a failure gives the rest back: the next claim resumes there.
  REQUIRE(p.landed(0, 64, 0));
  CHECK(!p.landed(0, 64, 0));     // already present
  CHECK(!p.landed(600, 900, 0));  // crosses two claims
  p.release({64, 256});
  auto again = p.claim();
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
  auto first = p.claim();
  REQUIRE(first);
  CHECK(first->begin == 0);
  // A reader jumps to byte 1000 (chunk 6): the next claim starts at its block, not at
  // chunk 1.
  p.want(1000);
  auto jump = p.claim();
  REQUIRE(jump);
  CHECK(*jump == byte_range{992, 1120});
  // Read-ahead: the reader's next chunk comes next while it still waits there.
  auto ahead = p.claim();
  REQUIRE(ahead);
  CHECK(*ahead == byte_range{1120, 1280});
  // Beyond a chunk of read-ahead: back to the lowest missing.
  auto low = p.claim();
  REQUIRE(low);
  CHECK(*low == byte_range{160, 320});
  p.unwant(1000);
  CHECK(p.wanted_count() == 0);
  // A claim stops at present bytes.
  REQUIRE(p.landed(992, 1120, 0));
  p.want(960);
  auto before = p.claim();
  REQUIRE(before);
  CHECK(*before == byte_range{960, 992});
}

TEST_CASE("fetch_plan: lowest wanted position first", "[stream][plan]") {
  fetch_plan p(100 * 16, 160);
  p.want(1400);
  p.want(500);
  auto a = p.claim();
  REQUIRE(a);
  CHECK(*a == byte_range{496, 640});  // the block holding byte 500, to its chunk's end
  auto b = p.claim();
  REQUIRE(b);
  CHECK(*b == byte_range{640, 800});  // its read-ahead before the far reader
  auto c = p.claim();
  REQUIRE(c);
  CHECK(c->begin == 1392);
}

TEST_CASE("fetch_plan: a resumed map fetches only what is missing", "[stream][plan]") {
  present_map m(1024);
  REQUIRE(m.insert(0, 512, 1));
  REQUIRE(m.insert(768, 1024, 2));
  fetch_plan p(std::move(m), 256);
  auto a = p.claim();
  REQUIRE(a);
  CHECK(*a == byte_range{512, 768});
  CHECK(!p.claim());
  REQUIRE(p.landed(512, 768, 3));
  CHECK(p.present().complete());
}

TEST_CASE("fetch_plan: restored runs are present; never over claims or present bytes",
          "[stream][plan]") {
  fetch_plan p(1024, 256);
  REQUIRE(p.restore(256, 512, 7));
  CHECK(p.present().contains(256, 512));
  CHECK_FALSE(p.restore(384, 640, 8));  // overlaps present bytes
  auto a = p.claim();
  REQUIRE(a);
  CHECK(*a == byte_range{0, 256});
  CHECK_FALSE(p.restore(128, 256, 9));  // inside a claim
  CHECK_FALSE(p.restore(200, 300, 9));  // across a claim
  CHECK_FALSE(p.restore(600, 600, 9));  // empty
  CHECK(p.restore(768, 1024, 10));
  CHECK(p.present().present_bytes() == 512);
  auto b = p.claim();
  REQUIRE(b);
  CHECK(*b == byte_range{512, 768});
  CHECK_FALSE(p.claim());
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

TEST_CASE("connection_governor: shed halves, growth needs chunks and rate", "[stream][gov]") {
  connection_governor g(8, 2);
  CHECK(g.target() == 8);
  g.shed(100);
  CHECK(g.target() == 4);
  g.shed(100);  // the same burst of refusals: no further cut
  CHECK(g.target() == 4);
  g.chunk_done(100);
  CHECK(g.target() == 4);
  g.chunk_done(50);  // two chunks, but the rate dropped: no growth
  CHECK(g.target() == 4);
  g.chunk_done(120);
  CHECK(g.target() == 5);
  g.shed(120);
  CHECK(g.target() == 2);
  for (int i = 0; i < 100; ++i) g.chunk_done(1000);
  CHECK(g.target() == 8);
  connection_governor one(1);
  one.shed(1);
  CHECK(one.target() == 1);
  CHECK(g.sheds() == 3);
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
  auto a = p.claim(300);
  REQUIRE(a);
  CHECK(*a == byte_range{0, 160});
  auto b = p.claim(300);
  REQUIRE(b);
  CHECK(*b == byte_range{160, 320});  // starts below the limit: the whole chunk
  CHECK(!p.claim(300));
  CHECK(p.has_unclaimed());
  p.want(1000);
  auto c = p.claim(300);
  REQUIRE(c);
  CHECK(c->begin == 992);
}
