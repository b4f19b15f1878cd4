#pragma once
// Files inside a build's tar members (issue 14): member aliases (AP, BL, CP, CSC,
// HOME_CSC), the listing of a tar / .tar.md5 member read from its headers alone, which
// entry a path names (the entry itself, or "<name>" for the LZ4-decoded "<name>.lz4"), and
// the bodies: an entry's bytes, or its decoded image through archive::lz4 (liblz4).
// Reads go through a member_source (sparse: only the blocks the headers and the entry
// need are fetched). The pure parts (aliases, lookup, JSON) are unit-tested.
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "archive/lz4_frame.hpp"
#include "archive/tar_reader.hpp"
#include "firmware/firmware_service.hpp"
#include "firmware/member_source.hpp"
#include "zip/zip_directory.hpp"

namespace fusproxy::server {

// The zip member an alias or a full name names: `name` itself when a member has it; else
// for AP, BL, CP, CSC, HOME_CSC (any case) the one member whose name starts with "AP_" …
// (CSC_ never matches HOME_CSC_…). nullptr when none.
const zip::member* find_member(const zip::directory& dir, std::string_view name);

// What a tar member holds (entries in archive order, the MD5 line when a .tar.md5).
struct tar_listing {
  std::vector<archive::tar_entry> entries;
  std::optional<archive::md5_trailer> trailer;
};

// Which entry a path names in a listing.
struct entry_choice {
  const archive::tar_entry* entry = nullptr;
  bool decode = false;  // the path named "<x>" for the regular entry "<x>.lz4"
};
// The exact entry (regular files only) wins; else "<path>.lz4" decoded. entry == nullptr
// when neither exists.
entry_choice find_entry(const tar_listing& listing, std::string_view path);

// The listing as the service answers it; `decoded_size(entry)` gives the decoded size of a
// .lz4 entry when known (the frame header's, or learnt by a decode).
std::vector<tar_entry_info> listing_infos(
    const tar_listing& listing,
    const std::function<std::optional<std::uint64_t>(const archive::tar_entry&)>& decoded_size);

// Reads the headers of the tar in `src` (each header's blocks prefetched as it is read).
// archive::errc::not_a_tar when the member is not a tar.
boost::asio::awaitable<boost::system::result<tar_listing>> read_listing(member_source& src);

// Writes entry bytes [first, first + length) to the sink, the whole range prefetched.
boost::asio::awaitable<boost::system::error_code> write_entry(member_source& src,
                                                              const archive::tar_entry& entry,
                                                              std::uint64_t first,
                                                              std::uint64_t length,
                                                              body_sink& sink);

// Reads and parses the LZ4 frame header at the start of the entry.
boost::asio::awaitable<boost::system::result<archive::lz4::frame_header>> read_frame_header(
    member_source& src, const archive::tar_entry& entry);

// Writes the decoded bytes [first, first + length) of the LZ4 entry. `index` is the entry's
// block index (the caller keeps it with the build): the decode starts from the nearest
// independent block it knows, and it grows as this decode learns blocks. A corrupt frame
// gives its archive::errc (after the bytes before the damage went out: the caller cuts).
// The compressed bytes ahead of the decoder are prefetched: the whole rest of the entry
// when the range runs to the image's end, else a window.
boost::asio::awaitable<boost::system::error_code> write_decoded(
    member_source& src, const archive::tar_entry& entry, archive::lz4::block_index& index,
    std::uint64_t first, std::uint64_t length, body_sink* sink);

}  // namespace fusproxy::server
