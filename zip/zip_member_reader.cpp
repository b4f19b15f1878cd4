#include "zip/zip_member_reader.hpp"

#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace fusproxy::zip {
namespace {

constexpr std::size_t scratch_size = 16 * 1024;
constexpr std::size_t max_zlib_chunk = std::size_t{1} << 30;  // fits zlib's uInt

std::uint32_t update_crc(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    const std::size_t k = std::min(n, max_zlib_chunk);
    crc = static_cast<std::uint32_t>(::crc32(crc, p, static_cast<uInt>(k)));
    p += k;
    n -= k;
  }
  return crc;
}

}  // namespace

struct member_reader::impl {
  bool deflated = false;
  std::uint32_t expected_crc = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;
  std::uint64_t data_offset = 0;
  std::uint64_t first = 0, last = 0;
  bool verify = false;

  bool finished = false;
  boost::system::error_code error;  // sticky
  std::uint64_t consumed = 0;       // input bytes used, from input_range().offset
  std::uint64_t produced = 0;       // member offset of the next uncompressed byte
  std::uint32_t crc = 0;

  z_stream z{};  // zlib keeps a pointer to it: impl never moves
  bool z_ready = false;
  std::array<std::uint8_t, scratch_size> scratch{};  // output that is inflated, not delivered

  ~impl() {
    if (z_ready) inflateEnd(&z);
  }

  std::uint64_t input_length() const { return deflated ? compressed_size : last - first; }

  boost::system::error_code fail(errc e) {
    error = make_error_code(e);
    return error;
  }

  result<progress> stored(std::span<const std::uint8_t> in, std::span<std::uint8_t> out);
  result<progress> inflated(std::span<const std::uint8_t> in, std::span<std::uint8_t> out);
};

result<member_reader> member_reader::open(const member& m, std::uint64_t data_offset,
                                          std::uint64_t first, std::uint64_t last) {
  if (!m.readable()) return make_error_code(errc::unsupported);
  if (first > last || last > m.size) return make_error_code(errc::bad_range);
  auto p = std::make_unique<impl>();
  p->deflated = m.method == method_deflated;
  if (!p->deflated && m.compressed_size != m.size) return make_error_code(errc::size_mismatch);
  p->expected_crc = m.crc32;
  p->compressed_size = m.compressed_size;
  p->size = m.size;
  p->data_offset = data_offset;
  p->first = first;
  p->last = last;
  // A deflated member is always inflated from its start, so any range reaching its end can
  // be checked; a stored one only when it is read whole.
  p->verify = p->deflated ? last == m.size : first == 0 && last == m.size;
  if (p->deflated) {
    // Raw deflate (no zlib header): negative window bits.
    if (inflateInit2(&p->z, -MAX_WBITS) != Z_OK) return make_error_code(errc::internal);
    p->z_ready = true;
  } else {
    p->produced = first;
    if (first == last) {
      if (p->verify && m.crc32 != 0) return make_error_code(errc::crc_mismatch);
      p->finished = true;
    }
  }
  return member_reader(std::move(p));
}

member_reader::member_reader(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
member_reader::member_reader(member_reader&&) noexcept = default;
member_reader& member_reader::operator=(member_reader&&) noexcept = default;
member_reader::~member_reader() = default;

byte_range member_reader::input_range() const {
  if (impl_->deflated) return {impl_->data_offset, impl_->compressed_size};
  return {impl_->data_offset + impl_->first, impl_->last - impl_->first};
}

bool member_reader::finished() const {
  return impl_->finished;
}
bool member_reader::verifies() const {
  return impl_->verify;
}
std::uint64_t member_reader::output_size() const {
  return impl_->last - impl_->first;
}

result<member_reader::progress> member_reader::transform(std::span<const std::uint8_t> in,
                                                         std::span<std::uint8_t> out) {
  impl& s = *impl_;
  if (s.error) return s.error;
  if (s.finished) return progress{};
  in = in.first(std::min<std::uint64_t>(in.size(), s.input_length() - s.consumed));
  return s.deflated ? s.inflated(in, out) : s.stored(in, out);
}

result<member_reader::progress> member_reader::impl::stored(std::span<const std::uint8_t> in,
                                                            std::span<std::uint8_t> out) {
  const std::size_t n = std::min<std::uint64_t>({in.size(), out.size(), last - produced});
  if (n) std::memcpy(out.data(), in.data(), n);
  if (verify) crc = update_crc(crc, in.data(), n);
  consumed += n;
  produced += n;
  if (produced == last) {
    if (verify && crc != expected_crc) return fail(errc::crc_mismatch);
    finished = true;
  }
  return progress{n, n};
}

result<member_reader::progress> member_reader::impl::inflated(std::span<const std::uint8_t> in,
                                                              std::span<std::uint8_t> out) {
  std::size_t in_pos = 0, out_pos = 0;
  for (;;) {
    std::uint8_t* dst = nullptr;
    std::size_t avail = 0;
    bool delivered = false;
    if (produced < first) {  // before the range: inflate and discard
      dst = scratch.data();
      avail = std::min<std::uint64_t>(scratch.size(), first - produced);
    } else if (produced < last) {
      avail = std::min<std::uint64_t>({out.size() - out_pos, last - produced, max_zlib_chunk});
      if (avail == 0) break;  // caller's buffer is full
      dst = out.data() + out_pos;
      delivered = true;
    } else if (!verify) {
      finished = true;  // the range ends before the member does: stop here
      break;
    } else {  // everything delivered: read on to the stream's end, which must add nothing
      dst = scratch.data();
      avail = scratch.size();
    }
    const std::size_t in_avail = std::min(in.size() - in_pos, max_zlib_chunk);
    z.next_in = in.data() + in_pos;
    z.avail_in = static_cast<uInt>(in_avail);
    z.next_out = dst;
    z.avail_out = static_cast<uInt>(avail);
    const int rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t used = in_avail - z.avail_in;
    const std::size_t n = avail - z.avail_out;
    in_pos += used;
    consumed += used;
    if (n) {
      if (n > size - produced) return fail(errc::size_mismatch);  // longer than announced
      if (verify) crc = update_crc(crc, dst, n);
      produced += n;
      if (delivered) out_pos += n;
      // Checked before the member's last bytes are handed out.
      if (verify && produced == size && crc != expected_crc) return fail(errc::crc_mismatch);
    }
    if (rc == Z_STREAM_END) {
      if (produced != size || consumed != compressed_size) return fail(errc::size_mismatch);
      finished = true;
      break;
    }
    if (rc == Z_MEM_ERROR) return fail(errc::internal);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(errc::corrupt_data);
    if (n == 0 && used == 0) {  // zlib needs more input
      if (consumed == compressed_size) return fail(errc::truncated_data);
      break;
    }
  }
  return progress{in_pos, out_pos};
}

}  // namespace fusproxy::zip
