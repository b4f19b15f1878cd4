#pragma once
// The zip module's one error type (zip_directory, zip_member_reader).
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace fusproxy::zip {

enum class errc {
  not_a_zip = 1,          // no end of central directory record at the end of the file
  bad_end_record,         // end record inconsistent: spanned archive, directory outside the file
  bad_zip64_end_record,   // zip64 locator/record missing, misplaced or inconsistent
  bad_central_directory,  // a directory entry is malformed or outside the directory
  count_mismatch,         // the directory holds more or fewer entries than announced
  too_many_entries,       // more entries than max_entries
  directory_too_large,    // central directory larger than max_directory_size
  bad_name,               // empty member name or one containing NUL
  bad_extra_field,        // extra field overruns, or a needed zip64 field is missing
  bad_local_header,       // local header signature/method wrong, or its data leaves the zip
  unsupported,            // encrypted member, or a method other than stored/deflated
  bad_range,              // member range outside the member
  wrong_input_size,       // the caller fed a different number of bytes than asked for
  corrupt_data,           // the deflate stream is invalid
  truncated_data,         // the member's data ended before the deflate stream did
  size_mismatch,          // uncompressed/compressed size differs from the directory's
  crc_mismatch,           // CRC-32 of the member differs from the directory's
  internal,               // zlib failed to initialise (memory)
};

const boost::system::error_category& error_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

template <class T>
using result = boost::system::result<T>;

}  // namespace fusproxy::zip

template <>
struct boost::system::is_error_code_enum<fusproxy::zip::errc> : std::true_type {};
