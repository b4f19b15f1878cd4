#pragma once
// LZ4 frames (the `.lz4` images inside firmware tars), decoded sans-I/O through liblz4's
// frame API (LZ4F_decompress: block decoding and the xxHash-32 checksums are liblz4's).
// This layer adds what random access needs: the frame header's fields, a block index
// (compressed offset of each block -> its decoded offset) built while decoding, and decoding
// of a decoded range [first, last) from the nearest independent block the index knows (from
// the frame start when the blocks are linked). Corrupt data gives an archive::errc; the
// decoder never hands out bytes that liblz4 did not decode and check.
//
//   archive::lz4::block_index index;                  // keep it per entry: later ranges reuse it
//   archive::lz4::decoder d(index, entry_size, first, last);
//   while (auto range = d.next_read()) {               // compressed bytes of the entry
//     read some bytes at range->offset (range->length is what completes the current block);
//     if (auto ec = d.feed(range->offset, buf, sink)) fail(ec);   // sink gets decoded bytes
//   }
//
// Format: "LZ4 Frame Format Description" v1.6.x (lz4/doc/lz4_Frame_format.md). One frame per
// entry: concatenated frames, skippable frames and the legacy format are refused.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "archive/error.hpp"

namespace fusproxy::archive::lz4 {

inline constexpr std::uint32_t frame_magic = 0x184D2204;
inline constexpr std::size_t min_header_size = 7;
inline constexpr std::size_t max_header_size = 19;

struct frame_header {
  bool independent_blocks = false;  // B.Indep: a block never refers to an earlier one
  bool block_checksum = false;      // each block followed by its xxHash-32
  bool content_checksum = false;    // the end mark followed by the xxHash-32 of the content
  std::optional<std::uint64_t> content_size;  // C.Size: decoded bytes, when the writer said
  std::optional<std::uint32_t> dict_id;
  std::uint32_t block_max_size = 0;  // 64 KiB, 256 KiB, 1 MiB or 4 MiB
  std::size_t size = 0;              // bytes of the header (7..19)
};

// The header's size from its first 6 bytes (magic, FLG, BD): nullopt when fewer are given.
// Errors: not_lz4 (magic), unsupported_frame (legacy or skippable frame).
result<std::optional<std::size_t>> header_size(std::span<const std::uint8_t> first_bytes);
// Parses and checks a whole header (reserved bits, version, block size, header checksum).
// Errors: not_lz4, bad_frame_header, unsupported_frame (dictID), truncated_frame (too few).
result<frame_header> parse_header(std::span<const std::uint8_t> bytes);

struct block_info {
  std::uint64_t compressed_offset = 0;  // of the block's 4-byte size field, in the entry
  std::uint64_t decoded_offset = 0;     // of its first decoded byte
};

// What decoding learnt about one entry's frame; shared by its decoders (one at a time).
struct block_index {
  std::optional<frame_header> header;
  std::vector<block_info> blocks;             // a prefix of the frame's blocks, in order
  std::optional<std::uint64_t> decoded_size;  // content size, or learnt at the end mark
  std::optional<std::uint64_t> frame_size;    // compressed bytes, learnt at the end mark

  // The block a decode of decoded offset `pos` starts from: the last known block at or
  // before pos when blocks are independent; nullptr for the frame start.
  const block_info* start_for(std::uint64_t pos) const;
};

using sink = std::function<void(std::span<const std::uint8_t>)>;
inline constexpr std::uint64_t to_end = ~std::uint64_t{0};

class decoder {
 public:
  // Decodes [first, last) of the frame stored in an entry of `entry_size` bytes; last =
  // to_end for "to the end". A range past the decoded size gives bad_range when reached.
  decoder(block_index& index, std::uint64_t entry_size, std::uint64_t first,
          std::uint64_t last = to_end);
  ~decoder();
  decoder(const decoder&) = delete;
  decoder& operator=(const decoder&) = delete;

  // The compressed bytes wanted next (offset, and the length that completes the piece being
  // read), or nullopt when done() or failed().
  std::optional<byte_range> next_read() const;
  // Feeds bytes read at `offset` (= next_read()->offset; any length >= 1, extra ignored).
  // Decoded bytes inside [first, last) go to `out` in order, a block at a time.
  boost::system::error_code feed(std::uint64_t offset, std::span<const std::uint8_t> bytes,
                                 const sink& out);

  bool done() const;
  bool failed() const;
  boost::system::error_code error() const;
  // Decoded offset reached (the end of what went to the sink, or further when skipping).
  std::uint64_t decoded_position() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// One-shot forms (tools, tests, fuzzing): the decoded bytes [first, last) of a whole entry
// held in memory, and the index a full decode builds.
result<std::vector<std::uint8_t>> decode(std::span<const std::uint8_t> entry,
                                         std::uint64_t first = 0, std::uint64_t last = to_end,
                                         block_index* index = nullptr);

}  // namespace fusproxy::archive::lz4
