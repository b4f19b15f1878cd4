// The LZ4 indexes kept beside a build's record (firmware/lz4_index_store): what a decode of
// a real frame (liblz4, independent 64 KiB blocks, no content size) learnt survives the round
// trip and still decodes a deep range from its nearest block; a stale, damaged, torn or
// implausible file is refused with its reason, never used.
#include <lz4frame.h>

#include <catch2/catch.hpp>
#include <random>

#include "firmware/lz4_index_store.hpp"

using namespace fusproxy::server;
namespace lz4 = fusproxy::archive::lz4;
using bytes = std::vector<std::uint8_t>;

namespace {

// 40 blocks of 64 KiB, each a random prefix then zeros (compressible, like the sim's images).
bytes image() {
  std::mt19937_64 rng(14);
  bytes b(40 * 65536 + 1234, 0);
  for (std::size_t block = 0; block < b.size(); block += 65536)
    for (std::size_t i = 0; i < 8192 && block + i < b.size(); ++i)
      b[block + i] = static_cast<std::uint8_t>(rng());
  return b;
}

bytes compress(const bytes& in) {
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  bytes out(LZ4F_compressFrameBound(in.size(), &prefs));
  const auto n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
  REQUIRE_FALSE(LZ4F_isError(n));
  out.resize(n);
  return out;
}

const lz4_index_owner owner{"SM-A207F_X.zip.enc4", 0xdeadbeef, 25165824};

lz4_entry_id id_of(const bytes& frame) {
  return {"AP_X.tar.md5", 0x12345678, "recovery.img.lz4", 1536, frame.size()};
}

}  // namespace

TEST_CASE("lz4 index store: a learnt index round-trips and decodes a deep range from it") {
  const auto img = image();
  const auto frame = compress(img);
  lz4::block_index learnt;
  const auto whole = lz4::decode(frame, 0, lz4::to_end, &learnt);
  REQUIRE(whole.has_value());
  REQUIRE(*whole == img);
  REQUIRE(learnt.blocks.size() == 41);
  REQUIRE(learnt.decoded_size == img.size());
  REQUIRE_FALSE(learnt.header->content_size);
  CHECK(plausible_lz4_index(learnt, frame.size()));

  const auto text = serialize_lz4_indexes(owner, {{id_of(frame), learnt}});
  const auto back = parse_lz4_indexes(text, owner);
  INFO(back.refused);
  REQUIRE(back.indexes);
  REQUIRE(back.indexes->size() == 1);
  const auto& index = back.indexes->at(id_of(frame));
  CHECK(index.decoded_size == img.size());
  CHECK(index.frame_size == frame.size());
  REQUIRE(index.blocks.size() == learnt.blocks.size());
  for (std::size_t i = 0; i < index.blocks.size(); ++i) {
    CHECK(index.blocks[i].compressed_offset == learnt.blocks[i].compressed_offset);
    CHECK(index.blocks[i].decoded_offset == learnt.blocks[i].decoded_offset);
  }
  CHECK(index.header->independent_blocks);
  CHECK(index.header->content_checksum);
  CHECK(index.header->block_max_size == 65536);
  CHECK(index.header->size == learnt.header->size);

  // A range near the end decodes from the indexed block before it, right bytes.
  auto reloaded = index;
  const std::uint64_t first = 37 * 65536 + 100, last = first + 5000;
  const auto* start = reloaded.start_for(first);
  REQUIRE(start);
  CHECK(start->decoded_offset == 37 * 65536);
  const auto part = lz4::decode(frame, first, last, &reloaded);
  REQUIRE(part.has_value());
  CHECK(*part == bytes(img.begin() + first, img.begin() + last));
}

TEST_CASE("lz4 index store: stale, damaged, torn or implausible files are refused") {
  const auto frame = compress(image());
  lz4::block_index learnt;
  REQUIRE(lz4::decode(frame, 0, lz4::to_end, &learnt).has_value());
  const auto text = serialize_lz4_indexes(owner, {{id_of(frame), learnt}});
  const auto refused = [](const std::string& t, const lz4_index_owner& o) {
    const auto r = parse_lz4_indexes(t, o);
    CHECK_FALSE(r.indexes);
    return r.refused;
  };

  // Another build of the same name (rebuilt upstream), or another build altogether.
  auto other = owner;
  other.crc32 = 0x1;
  CHECK(refused(text, other).find("stale") != std::string::npos);
  other = owner;
  other.plain_size += 16;
  CHECK(refused(text, other).find("stale") != std::string::npos);
  // Torn (a crash mid-write would leave the old file: this is a damaged disk).
  CHECK(refused(text.substr(0, text.size() / 2), owner).find("JSON") != std::string::npos);
  // One block offset changed on disk: the checksum no longer matches.
  const auto blocks_at = text.find("\"blocks\":[");
  REQUIRE(blocks_at != std::string::npos);
  auto flipped = text;
  auto digit = blocks_at + 10;
  while (flipped[digit] < '0' || flipped[digit] > '9') ++digit;
  flipped[digit] = flipped[digit] == '9' ? '8' : static_cast<char>(flipped[digit] + 1);
  CHECK(refused(flipped, owner).find("checksum") != std::string::npos);
  // Another format version.
  auto v2 = text;
  const auto at = v2.find("\"version\":1");
  REQUIRE(at != std::string::npos);
  v2.replace(at, 11, "\"version\":2");
  CHECK(refused(v2, owner).find("version") != std::string::npos);

  // Implausible indexes (written consistently, checksum and all): never used.
  auto bad = learnt;
  bad.blocks[5].decoded_offset += 1;  // a block that would decode its bytes one byte off
  CHECK_FALSE(plausible_lz4_index(bad, frame.size()));
  CHECK(refused(serialize_lz4_indexes(owner, {{id_of(frame), bad}}), owner).find("implausible") !=
        std::string::npos);
  bad = learnt;
  bad.blocks[0].compressed_offset += 4;  // the first block not right after the header
  CHECK_FALSE(plausible_lz4_index(bad, frame.size()));
  bad = learnt;
  bad.decoded_size = *bad.decoded_size - 70000;  // blocks past the decoded size
  CHECK_FALSE(plausible_lz4_index(bad, frame.size()));
  bad = learnt;
  CHECK_FALSE(plausible_lz4_index(bad, frame.size() - 1));  // another entry size
  bad.header->block_max_size = 12345;
  CHECK_FALSE(plausible_lz4_index(bad, frame.size()));
  // Nothing learnt (a header only): fine.
  lz4::block_index header_only;
  header_only.header = learnt.header;
  CHECK(plausible_lz4_index(header_only, frame.size()));
  // A content size in the header stands for the decoded size (a listing read the header).
  auto sized = learnt;
  sized.header->content_size = sized.decoded_size;
  sized.decoded_size.reset();
  CHECK(plausible_lz4_index(sized, frame.size()));
  sized.decoded_size = *sized.header->content_size + 1;
  CHECK_FALSE(plausible_lz4_index(sized, frame.size()));
  sized.decoded_size.reset();
  sized.header->content_size = 70000;  // blocks past it
  CHECK_FALSE(plausible_lz4_index(sized, frame.size()));
}
