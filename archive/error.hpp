#pragma once
// The archive module's one error type (tar_reader, lz4 frames). Translated to HTTP only at
// the edge; every parser here returns one of these for hostile or corrupt input.
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace fusproxy::archive {

enum class errc {
  // tar
  not_a_tar = 1,         // the first header block is not a tar header (checksum, fields)
  bad_header,            // a later header block fails its checksum or has a malformed field
  bad_extended_header,   // a pax ('x'/'g') record or a GNU long name ('L'/'K') is malformed
  header_too_large,      // a pax or GNU long-name header larger than max_extended_header
  entry_outside_member,  // an entry's data runs past the end of the member
  too_many_entries,      // more than max_entries entries
  bad_trailer,           // bytes after the end of the archive that are neither zeros nor an
                         // MD5 line ("<32 hex>  <name>\n")
  truncated_archive,     // the member ends inside a header or without an end-of-archive
  // lz4
  not_lz4,            // no LZ4 frame magic number
  bad_frame_header,   // reserved bits, version, block size or header checksum wrong
  unsupported_frame,  // a frame that needs a dictionary (dictID)
  corrupt_block,      // a block that does not decode, or is larger than the block size
  checksum_mismatch,  // a block or content checksum differs (xxHash-32)
  size_mismatch,      // decoded size differs from the frame's content size
  truncated_frame,    // the data ends before the frame's end mark
  trailing_data,      // bytes after the frame that are not a skippable frame
  // both
  bad_range,         // a range outside the member / the decoded image
  wrong_input_size,  // the caller fed fewer bytes than asked for, or at the wrong offset
  internal,          // liblz4 could not allocate a context
};

const boost::system::error_category& error_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

template <class T>
using result = boost::system::result<T>;

// A range of bytes of the member (tar) or of the compressed entry (lz4).
struct byte_range {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  friend bool operator==(const byte_range&, const byte_range&) = default;
};

}  // namespace fusproxy::archive

template <>
struct boost::system::is_error_code_enum<fusproxy::archive::errc> : std::true_type {};
