#pragma once
// What decodes of a build's LZ4 entries learnt (issue 14: each entry's frame header, block
// index and decoded size), as the text the build cache keeps beside the build's record
// (build_cache::read_lz4_index / write_lz4_index). A restart then still answers HEAD and the
// listing with the exact decoded size, and a Range decodes from the nearest indexed block
// instead of the frame's start.
//
// A wrong index would make a decoder hand out bytes at the wrong offsets, so a file is used
// only when everything checks: its format and version, the build it names (BINARY_NAME,
// CRC-32, plain size: a rebuilt file of the same name is stale), a CRC-32 over its entries
// (a torn or bit-flipped file), and each index's shape (the first block right after the
// header, offsets increasing by what one block can hold, sizes inside the entry). Anything
// else is refused with the reason (the caller logs it and decodes without the file).
// Pure: no I/O (docs/archive.md, "Kept with the build").
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "archive/lz4_frame.hpp"

namespace fusproxy::server {

// Which entry an index is of: its member (name and CRC-32 from the zip directory) and the
// entry (name, data offset and size in the member). Another member or entry layout is
// another key, so an index never applies to bytes it was not learnt from.
struct lz4_entry_id {
  std::string member;
  std::uint32_t member_crc32 = 0;
  std::string entry;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  auto operator<=>(const lz4_entry_id&) const = default;
};

// The build the indexes belong to.
struct lz4_index_owner {
  std::string binary_name;
  std::optional<std::uint32_t> crc32;
  std::uint64_t plain_size = 0;
};

using lz4_index_map = std::map<lz4_entry_id, archive::lz4::block_index>;

std::string serialize_lz4_indexes(const lz4_index_owner& owner, const lz4_index_map& indexes);

struct lz4_index_parse {
  std::optional<lz4_index_map> indexes;
  std::string refused;  // why, when indexes is empty
};
// The indexes of a file written for `owner`; refused (with the reason) on anything that
// does not check (see above).
lz4_index_parse parse_lz4_indexes(std::string_view text, const lz4_index_owner& owner);

// Whether an index has the shape decoding an entry of `entry_size` bytes gives one.
bool plausible_lz4_index(const archive::lz4::block_index& index, std::uint64_t entry_size);

}  // namespace fusproxy::server
