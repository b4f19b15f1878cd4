// archive::lz4: frames written by the lz4 CLI (Debian `lz4`) with every block size, linked
// and independent blocks, with and without content size and checksums; decoded whole and by
// ranges, compared with the input and with `lz4 -d`; the block index; corrupt frames.
#include <lz4frame.h>

#include "archive/lz4_frame.hpp"
#include "tests/archive/archive_support.hpp"

using namespace archivetest;
namespace lz4 = fusproxy::archive::lz4;
using fusproxy::archive::errc;

namespace {

struct cli_frame {
  std::string options;
  bytes frame;
};

bytes lz4_cli(const temp_dir& dir, const bytes& input, const std::string& options) {
  const auto in = dir.path() / "in.img";
  const auto out = dir.path() / "out.lz4";
  write_file(in, input);
  REQUIRE(sh("lz4 -q -f " + options + " '" + in.string() + "' '" + out.string() + "'") == 0);
  return read_file(out);
}

bytes lz4_cli_decode(const temp_dir& dir, const bytes& frame) {
  const auto in = dir.path() / "x.lz4";
  const auto out = dir.path() / "x.img";
  write_file(in, frame);
  REQUIRE(sh("lz4 -q -d -f '" + in.string() + "' '" + out.string() + "'") == 0);
  return read_file(out);
}

bytes slice(const bytes& b, std::uint64_t first, std::uint64_t last) {
  return bytes(b.begin() + static_cast<std::ptrdiff_t>(first),
               b.begin() + static_cast<std::ptrdiff_t>(last));
}

// Decodes [first, last) feeding `chunk` bytes at a time; counts the compressed bytes read.
fusproxy::archive::result<bytes> decode_chunked(const bytes& frame, lz4::block_index& index,
                                                std::uint64_t first, std::uint64_t last,
                                                std::size_t chunk, std::uint64_t* read = nullptr,
                                                std::uint64_t* start = nullptr) {
  lz4::decoder d(index, frame.size(), first, last);
  bytes out;
  bool started = false;
  while (auto r = d.next_read()) {
    if (!started && start) *start = r->offset;
    started = true;
    const std::size_t n = std::min<std::uint64_t>(chunk, frame.size() - r->offset);
    if (read) *read += n;
    if (auto ec = d.feed(
            r->offset, {frame.data() + r->offset, n},
            [&](std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }))
      return ec;
  }
  if (d.failed()) return d.error();
  return out;
}

// A whole decode with a fresh index; `got` keeps what the sink received before an error.
boost::system::error_code decode_until_error(const bytes& frame, bytes& got) {
  lz4::block_index index;
  lz4::decoder d(index, frame.size(), 0);
  while (auto r = d.next_read()) {
    if (auto ec = d.feed(
            r->offset, {frame.data() + r->offset, r->length},
            [&](std::span<const std::uint8_t> s) { got.insert(got.end(), s.begin(), s.end()); }))
      return ec;
  }
  return d.error();
}

}  // namespace

TEST_CASE("frames of the lz4 CLI decode to the input, whole and by ranges", "[lz4]") {
  temp_dir dir;
  const bytes input = image_like(5 * 1024 * 1024 + 12345, 7);
  struct variant {
    const char* options;
    bool independent, content_size, content_checksum, block_checksum;
    std::uint32_t block;
  };
  const variant variants[] = {
      {"-B4", true, false, true, false, 64 * 1024},
      {"-B5 --content-size", true, true, true, false, 256 * 1024},
      {"-B6 -BX -9", true, false, true, true, 1024 * 1024},
      {"-B7 --content-size --no-frame-crc", true, true, false, false, 4 * 1024 * 1024},
      {"-B4 -BD --content-size", false, true, true, false, 64 * 1024},
      {"-B6 -BD -BX --no-frame-crc", false, false, false, true, 1024 * 1024},
  };
  for (const auto& v : variants) {
    SECTION(v.options) {
      const bytes frame = lz4_cli(dir, input, v.options);
      auto h = lz4::parse_header(frame);
      REQUIRE(h);
      CHECK(h->independent_blocks == v.independent);
      CHECK(h->content_size.has_value() == v.content_size);
      if (v.content_size) CHECK(*h->content_size == input.size());
      CHECK(h->content_checksum == v.content_checksum);
      CHECK(h->block_checksum == v.block_checksum);
      CHECK(h->block_max_size == v.block);

      lz4::block_index index;
      auto whole = lz4::decode(frame, 0, lz4::to_end, &index);
      REQUIRE(whole);
      CHECK(*whole == input);
      CHECK(*whole == lz4_cli_decode(dir, frame));  // the reference decoder agrees
      REQUIRE(index.decoded_size);
      CHECK(*index.decoded_size == input.size());
      CHECK(index.frame_size == frame.size());
      CHECK(index.blocks.size() == (input.size() + v.block - 1) / v.block);
      for (std::size_t i = 0; i < index.blocks.size(); ++i)
        CHECK(index.blocks[i].decoded_offset == i * std::uint64_t{v.block});

      std::mt19937_64 rng(42);
      std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {
          {0, 1},
          {0, input.size()},
          {input.size() - 1, input.size()},
          {v.block - 1, v.block + 1},
          {v.block, std::min<std::uint64_t>(2 * std::uint64_t{v.block}, input.size())},
          {input.size(), input.size()}};
      for (int i = 0; i < 12; ++i) {
        const std::uint64_t a = rng() % input.size();
        ranges.push_back({a, a + 1 + rng() % std::min<std::uint64_t>(input.size() - a, 300000)});
      }
      for (const auto& [a, b] : ranges) {
        INFO("range " << a << "-" << b);
        std::uint64_t read = 0, start = 0;
        auto part = decode_chunked(frame, index, a, b, 100000, &read, &start);
        REQUIRE(part);
        CHECK(*part == slice(input, a, b));
        if (a == b) continue;
        if (v.independent) {
          // From the block holding `a`: compressed bytes read stay within the blocks of the
          // range (plus one block of slack for the chunked reads).
          const auto* s = index.start_for(a);
          REQUIRE(s != nullptr);
          CHECK(start == s->compressed_offset);
          CHECK(s->decoded_offset <= a);
          CHECK(a - s->decoded_offset < v.block);
          CHECK(read <= (b - a) + 3 * std::uint64_t{v.block} + 200000);
        } else {
          CHECK(index.start_for(a) == nullptr);
          CHECK(start == 0);  // linked blocks: always from the frame start
        }
      }
      SECTION("a cold index (nothing learnt yet) decodes a range from the start") {
        lz4::block_index cold;
        std::uint64_t start = 1;
        auto part = decode_chunked(frame, cold, 3 * 1024 * 1024, 3 * 1024 * 1024 + 5000, 65536,
                                   nullptr, &start);
        REQUIRE(part);
        CHECK(*part == slice(input, 3 * 1024 * 1024, 3 * 1024 * 1024 + 5000));
        CHECK(start == 0);
        CHECK_FALSE(cold.blocks.empty());
      }
      SECTION("one byte at a time gives the same bytes") {
        lz4::block_index fresh;
        auto part = decode_chunked(frame, fresh, 1000, 200000, 1);
        REQUIRE(part);
        CHECK(*part == slice(input, 1000, 200000));
      }
    }
  }
}

TEST_CASE("corrupt, truncated and foreign data give typed errors, never wrong bytes", "[lz4]") {
  temp_dir dir;
  const bytes input = image_like(600 * 1024, 3);
  const bytes checked = lz4_cli(dir, input, "-B4 -BX --content-size");
  const bytes content_crc_only = lz4_cli(dir, input, "-B4");

  SECTION("a flipped byte inside a block with block checksums") {
    auto b = checked;
    b[b.size() / 2] ^= 0x01;
    bytes got;
    const auto ec = decode_until_error(b, got);
    CHECK((ec == errc::checksum_mismatch || ec == errc::corrupt_block));
    CHECK(got == slice(input, 0, got.size()));  // what came out before the error is right
    CHECK(got.size() < input.size());
  }
  SECTION("a flipped literal byte with only a content checksum: the last block is held back") {
    // Find a block made of literals late in the frame: flip a byte in the last block.
    lz4::block_index index;
    REQUIRE(lz4::decode(content_crc_only, 0, lz4::to_end, &index));
    const auto last_block = index.blocks.back();
    auto b = content_crc_only;
    b[last_block.compressed_offset + 4 + 20] ^= 0x01;
    bytes got;
    const auto ec = decode_until_error(b, got);
    CHECK(ec);
    CHECK(got.size() <= last_block.decoded_offset);
    CHECK(got == slice(input, 0, got.size()));
  }
  SECTION("truncated anywhere") {
    for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{6}, std::size_t{10},
                          checked.size() / 2, checked.size() - 4, checked.size() - 1}) {
      INFO("cut at " << n);
      auto r = lz4::decode({checked.data(), n});
      REQUIRE_FALSE(r);
      CHECK((r.error() == errc::truncated_frame || r.error() == errc::not_lz4));
    }
  }
  SECTION("bytes after the frame") {
    auto b = checked;
    b.push_back(0);
    CHECK(lz4::decode(b).error() == errc::trailing_data);
  }
  SECTION("not LZ4, the legacy format, a skippable frame") {
    CHECK(lz4::decode(noise(1000, 1)).error() == errc::not_lz4);
    CHECK(lz4::decode(lz4_cli(dir, input, "-l")).error() == errc::unsupported_frame);
    bytes skippable = {0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4};
    CHECK(lz4::decode(skippable).error() == errc::unsupported_frame);
  }
  SECTION("header: reserved bits, version, block size id, header checksum") {
    for (auto [at, mask] : {std::pair{4, 0x02}, std::pair{4, 0x80}, std::pair{5, 0x70},
                            std::pair{5, 0x01}, std::pair{14, 0xFF}}) {
      INFO("byte " << at << " ^ " << mask);
      auto b = checked;
      b[at] ^= static_cast<std::uint8_t>(mask);
      auto h = lz4::parse_header(b);
      REQUIRE_FALSE(h);
      CHECK(h.error() == errc::bad_frame_header);
      CHECK(lz4::decode(b).error() == errc::bad_frame_header);
    }
  }
  SECTION("a block size larger than the frame's maximum") {
    auto b = checked;
    const auto h = lz4::parse_header(b);
    REQUIRE(h);
    b[h->size + 2] = 0x10;  // block size field 0x10xxxx > 64 KiB
    CHECK(lz4::decode(b).error() == errc::corrupt_block);
  }
  SECTION("ranges past the end") {
    CHECK(lz4::decode(checked, input.size() + 1).error() == errc::bad_range);  // content size known
    CHECK(lz4::decode(content_crc_only, 0, input.size() + 10).error() == errc::bad_range);
    CHECK(lz4::decode(checked, 10, 5).error() == errc::bad_range);
  }
  SECTION("feeding the wrong offset") {
    lz4::block_index index;
    lz4::decoder d(index, checked.size(), 0);
    CHECK(d.feed(1, {checked.data() + 1, 10}, [](auto) {}) == errc::wrong_input_size);
    CHECK(d.failed());
  }
}

TEST_CASE("frames written with liblz4 directly: flushed short blocks and uncompressed blocks",
          "[lz4]") {
  // LZ4F_flush after each piece makes blocks shorter than the maximum: decoded offsets then
  // differ from ordinal * block size, and only decoding learns them.
  const bytes input = image_like(700 * 1024, 11);
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  LZ4F_cctx* c = nullptr;
  REQUIRE_FALSE(LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)));
  bytes frame(LZ4F_compressBound(input.size(), &prefs) + 1024 * 64);
  std::size_t at = LZ4F_compressBegin(c, frame.data(), frame.size(), &prefs);
  std::mt19937_64 rng(5);
  for (std::size_t pos = 0; pos < input.size();) {
    const std::size_t n = std::min<std::size_t>(input.size() - pos, 1 + rng() % 90000);
    at += LZ4F_compressUpdate(c, frame.data() + at, frame.size() - at, input.data() + pos, n,
                              nullptr);
    at += LZ4F_flush(c, frame.data() + at, frame.size() - at, nullptr);
    pos += n;
  }
  at += LZ4F_compressEnd(c, frame.data() + at, frame.size() - at, nullptr);
  LZ4F_freeCompressionContext(c);
  frame.resize(at);

  lz4::block_index index;
  auto whole = lz4::decode(frame, 0, lz4::to_end, &index);
  REQUIRE(whole);
  CHECK(*whole == input);
  bool short_block = false;
  for (std::size_t i = 1; i < index.blocks.size(); ++i)
    short_block |= index.blocks[i].decoded_offset - index.blocks[i - 1].decoded_offset < 64 * 1024;
  CHECK(short_block);
  for (std::uint64_t a : {std::uint64_t{1}, std::uint64_t{65536}, std::uint64_t{300001},
                          std::uint64_t{input.size() - 7}}) {
    auto part = lz4::decode(frame, a, std::min<std::uint64_t>(a + 70000, input.size()), &index);
    REQUIRE(part);
    CHECK(*part == slice(input, a, std::min<std::uint64_t>(a + 70000, input.size())));
  }
}
