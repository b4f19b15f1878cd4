#include "zip/zip_error.hpp"

#include <string>

namespace fusproxy::zip {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fusproxy.zip"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_a_zip:
        return "not a zip: no end of central directory record";
      case errc::bad_end_record:
        return "zip end record is inconsistent";
      case errc::bad_zip64_end_record:
        return "zip64 end record missing or inconsistent";
      case errc::bad_central_directory:
        return "zip central directory entry is malformed";
      case errc::count_mismatch:
        return "zip central directory entry count mismatch";
      case errc::too_many_entries:
        return "zip has too many entries";
      case errc::directory_too_large:
        return "zip central directory is too large";
      case errc::bad_name:
        return "zip member name is empty or contains NUL";
      case errc::bad_extra_field:
        return "zip extra field malformed or zip64 field missing";
      case errc::bad_local_header:
        return "zip local file header is malformed";
      case errc::unsupported:
        return "zip member is encrypted or uses an unsupported method";
      case errc::bad_range:
        return "range outside the zip member";
      case errc::wrong_input_size:
        return "fed a different number of bytes than requested";
      case errc::corrupt_data:
        return "zip member data is not a valid deflate stream";
      case errc::truncated_data:
        return "zip member data ends before its deflate stream";
      case errc::size_mismatch:
        return "zip member size differs from its directory entry";
      case errc::crc_mismatch:
        return "zip member CRC-32 differs from its directory entry";
      case errc::internal:
        return "zlib failed to initialise";
    }
    return "unknown zip error";
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace fusproxy::zip
