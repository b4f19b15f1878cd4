#include "archive/error.hpp"

#include <string>

namespace fusproxy::archive {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fusproxy.archive"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_a_tar:
        return "not a tar archive: the first block is not a tar header";
      case errc::bad_header:
        return "tar header block is corrupt (checksum or field)";
      case errc::bad_extended_header:
        return "tar pax or GNU long-name header is malformed";
      case errc::header_too_large:
        return "tar extended header is too large";
      case errc::entry_outside_member:
        return "tar entry data runs past the end of the member";
      case errc::too_many_entries:
        return "tar archive has too many entries";
      case errc::bad_trailer:
        return "data after the end of the tar archive is not an MD5 line";
      case errc::truncated_archive:
        return "tar archive ends inside a header or without its end marker";
      case errc::not_lz4:
        return "not an LZ4 frame: bad magic number";
      case errc::bad_frame_header:
        return "LZ4 frame header is malformed";
      case errc::unsupported_frame:
        return "LZ4 frame needs a dictionary (unsupported)";
      case errc::corrupt_block:
        return "LZ4 block is corrupt";
      case errc::checksum_mismatch:
        return "LZ4 block or content checksum mismatch";
      case errc::size_mismatch:
        return "LZ4 decoded size differs from the frame's content size";
      case errc::truncated_frame:
        return "LZ4 data ends before the frame's end mark";
      case errc::trailing_data:
        return "data after the LZ4 frame";
      case errc::bad_range:
        return "range outside the archive entry";
      case errc::wrong_input_size:
        return "fed fewer bytes than requested or at another offset";
      case errc::internal:
        return "liblz4 failed to allocate a context";
    }
    return "unknown archive error";
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

}  // namespace fusproxy::archive
