// zip::member_reader: stored mapping and raw inflate, Range on members, CRC/size checks,
// corrupt deflate data.
#include <catch2/catch.hpp>

#include "tests/zip/zip_support.hpp"

using namespace ziptest;
using fusproxy::zip::errc;

namespace {

struct fixture {
  built_zip z;
  zip::directory dir;
  fixture() {
    z = make_zip({{"text.deflated", text_data(300'000, 11), true},
                  {"random.stored", noise_data(100'003, 12), false},
                  {"random.deflated", noise_data(70'001, 13), true},
                  {"one.deflated", bytes{'1'}, true},
                  {"empty.deflated", bytes{}, true},
                  {"empty.stored", bytes{}, false}});
    auto d = parse(z.file);
    if (!d) throw std::runtime_error("fixture zip does not parse");
    dir = *d;
  }
};

bytes slice(const bytes& b, std::uint64_t first, std::uint64_t last) {
  return bytes(b.begin() + first, b.begin() + last);
}

}  // namespace

TEST_CASE("member ranges: first byte, last byte, middle, whole, empty; any chunking") {
  const fixture f;
  const auto read = memory_reader(f.z.file);
  for (std::size_t i = 0; i < f.dir.members.size(); ++i) {
    const auto& m = f.dir.members[i];
    const bytes& want = f.z.contents[i];
    const std::uint64_t n = m.size;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {{0, n}, {n, n}};
    if (n > 0) {
      ranges.insert(ranges.end(), {{0, 1}, {n - 1, n}, {n / 3, 2 * n / 3}, {1, n}, {0, n - 1}});
    }
    for (auto [first, last] : ranges) {
      for (auto [in_chunk, out_chunk] : {std::pair<std::size_t, std::size_t>{65536, 65536},
                                         {1, 4096},
                                         {4096, 1},
                                         {7, 13},
                                         {1 << 20, 1 << 20}}) {
        if ((in_chunk < 16 || out_chunk < 16) && n > 100'000) continue;  // too slow by bytes
        INFO(m.name << " [" << first << "," << last << ") in " << in_chunk << " out " << out_chunk);
        auto got = extract(read, f.dir, m, first, last, in_chunk, out_chunk);
        REQUIRE(got);
        CHECK(*got == slice(want, first, last));
      }
    }
  }
}

TEST_CASE("stored members map straight onto the zip; deflated ones read their whole data") {
  const fixture f;
  const auto& stored = f.dir.members[1];
  auto r = zip::member_reader::open(stored, f.z.data_offsets[1], 10, 20);
  REQUIRE(r);
  CHECK(r->input_range() == zip::byte_range{f.z.data_offsets[1] + 10, 10});
  CHECK(r->output_size() == 10);
  CHECK_FALSE(r->verifies());
  CHECK(zip::member_reader::open(stored, f.z.data_offsets[1])->verifies());

  const auto& deflated = f.dir.members[0];
  auto d = zip::member_reader::open(deflated, f.z.data_offsets[0], 10, 20);
  REQUIRE(d);
  CHECK(d->input_range() == zip::byte_range{f.z.data_offsets[0], deflated.compressed_size});
  CHECK_FALSE(d->verifies());
  CHECK(zip::member_reader::open(deflated, f.z.data_offsets[0], 5, deflated.size)->verifies());
}

TEST_CASE("a range that stops early needs only a prefix of the deflated data") {
  const fixture f;
  const auto& m = f.dir.members[0];  // 300 kB of text
  auto r = zip::member_reader::open(m, f.z.data_offsets[0], 0, 1000);
  REQUIRE(r);
  bytes out(1000);
  std::size_t fed = 0, produced = 0;
  while (!r->finished()) {
    const auto in = std::span(f.z.file).subspan(f.z.data_offsets[0] + fed, 100);
    auto step = r->transform(in, std::span(out).subspan(produced));
    REQUIRE(step);
    fed += step->consumed;
    produced += step->produced;
  }
  CHECK(produced == 1000);
  CHECK(fed < m.compressed_size / 4);
  CHECK(out == slice(f.z.contents[0], 0, 1000));
  // Finished: further calls do nothing.
  auto more = r->transform(std::span(f.z.file).subspan(f.z.data_offsets[0] + fed, 10), out);
  REQUIRE(more);
  CHECK(more->consumed == 0);
  CHECK(more->produced == 0);
}

TEST_CASE("bad ranges and unsupported members are refused") {
  const fixture f;
  const auto& m = f.dir.members[0];
  CHECK(zip::member_reader::open(m, 0, 5, 4).error() == errc::bad_range);
  CHECK(zip::member_reader::open(m, 0, 0, m.size + 1).error() == errc::bad_range);
  zip::member enc = m;
  enc.flags = 1;
  CHECK(zip::member_reader::open(enc, 0).error() == errc::unsupported);
  zip::member bz = m;
  bz.method = 12;
  CHECK(zip::member_reader::open(bz, 0).error() == errc::unsupported);
}

TEST_CASE("CRC-32 and size mismatches are errors when the range reaches the member's end") {
  const fixture f;
  const auto read = memory_reader(f.z.file);
  for (std::size_t i : {0, 1, 2, 3}) {
    zip::directory dir = f.dir;
    zip::member& m = dir.members[i];
    INFO(m.name);
    m.crc32 ^= 1;
    CHECK(extract(read, dir, m, 0, m.size).error() == errc::crc_mismatch);
    if (m.size > 1) {
      // Not reaching the end: nothing to check against, the bytes are right.
      auto part = extract(read, dir, m, 0, m.size - 1);
      REQUIRE(part);
      CHECK(*part == slice(f.z.contents[i], 0, m.size - 1));
    }
    if (m.method == zip::method_deflated) {
      // Inflated from the start anyway: the end of any range reaching it is checked.
      CHECK(extract(read, dir, m, m.size - 1, m.size).error() == errc::crc_mismatch);
    } else {
      auto tail = extract(read, dir, m, 1, m.size);
      CHECK(tail);
    }
  }
  zip::directory dir = f.dir;
  zip::member& m = dir.members[0];
  SECTION("deflate stream longer than the announced size") {
    m.size -= 1;
    CHECK(extract(read, dir, m, 0, m.size).error() == errc::crc_mismatch);
    // With the CRC of the announced prefix: the extra output itself is caught.
    m.crc32 = crc_of(slice(f.z.contents[0], 0, m.size));
    CHECK(extract(read, dir, m, 0, m.size).error() == errc::size_mismatch);
  }
  SECTION("deflate stream shorter than the announced size") {
    m.size += 1;
    CHECK(extract(read, dir, m, 0, m.size).error() == errc::size_mismatch);
  }
  SECTION("compressed size cuts the deflate stream") {
    m.compressed_size -= 3;
    CHECK(extract(read, dir, m, 0, m.size).error() == errc::truncated_data);
  }
  SECTION("compressed size longer than the deflate stream") {
    m.compressed_size += 3;
    CHECK(extract(read, dir, m, 0, m.size).error() == errc::size_mismatch);
  }
  SECTION("empty stored member with a non-zero CRC") {
    zip::member& e = dir.members[5];
    e.crc32 = 7;
    CHECK(extract(read, dir, e, 0, 0).error() == errc::crc_mismatch);
  }
}

TEST_CASE("corrupt deflate data: errors or the exact bytes, never wrong bytes") {
  const built_zip z = make_zip({{"t", text_data(6000, 21), true}});
  auto dir = parse(z.file);
  REQUIRE(dir);
  const auto& m = dir->members[0];
  int errors = 0;
  for (std::size_t at = z.data_offsets[0]; at < z.data_offsets[0] + m.compressed_size; ++at) {
    for (std::uint8_t mask : {0x01, 0x40, 0xFF}) {
      bytes f = z.file;
      f[at] ^= mask;
      auto got = extract(memory_reader(f), *dir, m, 0, m.size, 97, 1000);
      if (got)
        CHECK(*got == z.contents[0]);
      else
        ++errors;
    }
  }
  CHECK(errors > 0);
}

TEST_CASE("errors are sticky") {
  const fixture f;
  zip::member m = f.dir.members[3];  // "1", deflated
  m.crc32 ^= 1;
  auto r = zip::member_reader::open(m, f.z.data_offsets[3]);
  REQUIRE(r);
  bytes out(16);
  const auto in = std::span(f.z.file).subspan(f.z.data_offsets[3], m.compressed_size);
  CHECK(r->transform(in, out).error() == errc::crc_mismatch);
  CHECK(r->transform(in, out).error() == errc::crc_mismatch);
  CHECK_FALSE(r->finished());
}
