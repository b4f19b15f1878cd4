#include "archive/lz4_frame.hpp"

#define LZ4F_STATIC_LINKING_ONLY  // LZ4F_getErrorCode (exported by Debian's liblz4 1.9.4)
#include <lz4frame.h>

#include <algorithm>
#include <cstring>

namespace fusproxy::archive::lz4 {
namespace {

using bytes_view = std::span<const std::uint8_t>;

std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

boost::system::error_code from_lz4f(std::size_t code) {
  switch (LZ4F_getErrorCode(code)) {
    case LZ4F_ERROR_blockChecksum_invalid:
    case LZ4F_ERROR_contentChecksum_invalid:
      return errc::checksum_mismatch;
    case LZ4F_ERROR_frameSize_wrong:
      return errc::size_mismatch;
    case LZ4F_ERROR_headerChecksum_invalid:
    case LZ4F_ERROR_headerVersion_wrong:
    case LZ4F_ERROR_reservedFlag_set:
    case LZ4F_ERROR_maxBlockSize_invalid:
    case LZ4F_ERROR_frameHeader_incomplete:
      return errc::bad_frame_header;
    case LZ4F_ERROR_frameType_unknown:
      return errc::not_lz4;
    case LZ4F_ERROR_allocation_failed:
      return errc::internal;
    default:
      return errc::corrupt_block;
  }
}

struct dctx_free {
  void operator()(LZ4F_dctx* d) const { LZ4F_freeDecompressionContext(d); }
};
using dctx_ptr = std::unique_ptr<LZ4F_dctx, dctx_free>;

dctx_ptr new_dctx() {
  LZ4F_dctx* d = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return nullptr;
  return dctx_ptr(d);
}

// The header a decode starting at an independent block feeds liblz4 instead of the frame's
// own: same block size and block checksums, no content size and no content checksum (those
// cover the whole content). liblz4 writes it, so its header checksum is liblz4's.
result<std::vector<std::uint8_t>> resume_header(const frame_header& h) {
  LZ4F_preferences_t prefs{};
  switch (h.block_max_size) {
    case 64 * 1024:
      prefs.frameInfo.blockSizeID = LZ4F_max64KB;
      break;
    case 256 * 1024:
      prefs.frameInfo.blockSizeID = LZ4F_max256KB;
      break;
    case 1024 * 1024:
      prefs.frameInfo.blockSizeID = LZ4F_max1MB;
      break;
    default:
      prefs.frameInfo.blockSizeID = LZ4F_max4MB;
      break;
  }
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
  prefs.frameInfo.blockChecksumFlag =
      h.block_checksum ? LZ4F_blockChecksumEnabled : LZ4F_noBlockChecksum;
  LZ4F_cctx* c = nullptr;
  if (LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)))
    return make_error_code(errc::internal);
  std::vector<std::uint8_t> out(LZ4F_HEADER_SIZE_MAX);
  const std::size_t n = LZ4F_compressBegin(c, out.data(), out.size(), &prefs);
  LZ4F_freeCompressionContext(c);
  if (LZ4F_isError(n)) return make_error_code(errc::internal);
  out.resize(n);
  return out;
}

}  // namespace

result<std::optional<std::size_t>> header_size(std::span<const std::uint8_t> b) {
  if (b.size() < 4) return std::optional<std::size_t>{};
  const std::uint32_t magic = le32(b.data());
  if (magic != frame_magic) {
    if ((magic & 0xFFFFFFF0u) == 0x184D2A50u || magic == 0x184C2102u)
      return make_error_code(errc::unsupported_frame);  // skippable frame, legacy format
    return make_error_code(errc::not_lz4);
  }
  if (b.size() < 6) return std::optional<std::size_t>{};
  const std::uint8_t flg = b[4];
  return std::optional<std::size_t>(min_header_size + ((flg & 0x08) ? 8 : 0) +
                                    ((flg & 0x01) ? 4 : 0));
}

result<frame_header> parse_header(std::span<const std::uint8_t> b) {
  auto size = header_size(b);
  if (!size) return size.error();
  if (!*size || b.size() < **size) return make_error_code(errc::truncated_frame);
  const std::uint8_t flg = b[4], bd = b[5];
  if ((flg >> 6) != 1 || (flg & 0x02) || (bd & 0x8F))
    return make_error_code(errc::bad_frame_header);
  const int id = (bd >> 4) & 7;
  if (id < 4) return make_error_code(errc::bad_frame_header);
  frame_header h;
  h.independent_blocks = flg & 0x20;
  h.block_checksum = flg & 0x10;
  h.content_checksum = flg & 0x04;
  h.block_max_size = 1u << (8 + 2 * id);  // 4: 64 KiB, 5: 256 KiB, 6: 1 MiB, 7: 4 MiB
  h.size = **size;
  std::size_t at = 6;
  if (flg & 0x08) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | b[at + i];
    h.content_size = v;
    at += 8;
  }
  if (flg & 0x01) h.dict_id = le32(b.data() + at);
  // The header checksum (xxHash-32 of the descriptor) is liblz4's to check.
  auto d = new_dctx();
  if (!d) return make_error_code(errc::internal);
  LZ4F_frameInfo_t info{};
  std::size_t consumed = h.size;
  const std::size_t r = LZ4F_getFrameInfo(d.get(), &info, b.data(), &consumed);
  if (LZ4F_isError(r)) return from_lz4f(r);
  if (h.dict_id) return make_error_code(errc::unsupported_frame);
  return h;
}

const block_info* block_index::start_for(std::uint64_t pos) const {
  if (!header || !header->independent_blocks || blocks.empty()) return nullptr;
  auto it =
      std::upper_bound(blocks.begin(), blocks.end(), pos,
                       [](std::uint64_t p, const block_info& b) { return p < b.decoded_offset; });
  return it == blocks.begin() ? nullptr : &*(it - 1);
}

struct decoder::impl {
  enum class piece { header, block_size, block_body, end_mark, done, failed };
  block_index& index;
  std::uint64_t entry_size, first, last;
  piece state = piece::header;
  boost::system::error_code error;
  std::uint64_t pos = 0;      // compressed offset where the current piece starts
  std::uint64_t decoded = 0;  // decoded offset at pos
  std::size_t ordinal = 0;    // the next block's number in the frame
  bool from_start = true;
  std::vector<std::uint8_t> buf;  // the piece so far
  std::size_t need = min_header_size;
  dctx_ptr dctx;
  std::vector<std::uint8_t> out;
  // A decode that will reach the end of a frame with a content checksum holds each block's
  // output back until the next block header shows it was not the last: the last block goes
  // out only once liblz4 has checked the content checksum (a complete answer is never wrong).
  bool hold_last = false;
  std::vector<std::uint8_t> held;
  std::size_t held_size = 0;
  std::uint64_t held_at = 0;  // decoded offset of held[0]

  impl(block_index& i, std::uint64_t size, std::uint64_t f, std::uint64_t l)
      : index(i), entry_size(size), first(f), last(l) {}

  boost::system::error_code fail(boost::system::error_code ec) {
    state = piece::failed;
    error = ec;
    buf.clear();
    return ec;
  }
  // The current piece needs `n` bytes in all; they must lie inside the entry.
  boost::system::error_code expect(piece p, std::size_t n) {
    state = p;
    need = n;
    if (pos + n > entry_size) return fail(errc::truncated_frame);
    return {};
  }
  boost::system::error_code start();
  boost::system::error_code run(bytes_view in, std::size_t& produced);
  boost::system::error_code piece_done(const sink& sink_fn);
  void emit(const std::uint8_t* data, std::uint64_t at, std::size_t n, const sink& sink_fn) const {
    const std::uint64_t lo = std::max(first, at);
    const std::uint64_t hi = std::min(last, at + n);
    if (lo < hi) sink_fn({data + (lo - at), static_cast<std::size_t>(hi - lo)});
  }
  void release_held(const sink& sink_fn) {
    emit(held.data(), held_at, held_size, sink_fn);
    held_size = 0;
  }
};

boost::system::error_code decoder::impl::start() {
  if (first > last) return fail(errc::bad_range);
  if (index.decoded_size && first > *index.decoded_size) return fail(errc::bad_range);
  if (first == last || (index.decoded_size && first == *index.decoded_size && last == to_end)) {
    state = piece::done;
    return {};
  }
  dctx = new_dctx();
  if (!dctx) return fail(errc::internal);
  if (const block_info* b = index.start_for(first)) {
    from_start = false;
    pos = b->compressed_offset;
    decoded = b->decoded_offset;
    ordinal = static_cast<std::size_t>(b - index.blocks.data());
    auto h = resume_header(*index.header);
    if (!h) return fail(h.error());
    std::size_t produced = 0;
    if (auto ec = run(*h, produced)) return fail(ec);
    out.resize(index.header->block_max_size);
    return expect(piece::block_size, 4);
  }
  if (entry_size < 4) return fail(errc::not_lz4);
  return expect(piece::header, std::min<std::uint64_t>(min_header_size, entry_size));
}

// Feeds liblz4 a whole piece; `out` receives what it decodes.
boost::system::error_code decoder::impl::run(bytes_view in, std::size_t& produced) {
  produced = 0;
  const std::uint8_t* src = in.data();
  std::size_t left = in.size();
  for (;;) {
    std::size_t dst_size = out.size() - produced;
    std::size_t src_size = left;
    const std::size_t r =
        LZ4F_decompress(dctx.get(), out.data() + produced, &dst_size, src, &src_size, nullptr);
    if (LZ4F_isError(r)) return from_lz4f(r);
    produced += dst_size;
    src += src_size;
    left -= src_size;
    if (src_size == 0 && dst_size == 0) {
      if (left == 0) return {};
      return errc::corrupt_block;  // liblz4 would take no more: more output than a block
    }
  }
}

boost::system::error_code decoder::impl::piece_done(const sink& sink_fn) {
  switch (state) {
    case piece::header: {
      auto size = header_size(buf);
      if (!size) return fail(size.error());
      if (!*size) return fail(errc::truncated_frame);
      if (**size > buf.size()) return expect(piece::header, **size);
      auto h = parse_header(buf);
      if (!h) return fail(h.error());
      if (!index.header) {
        index.header = *h;
        if (h->content_size) index.decoded_size = h->content_size;
      }
      if (index.decoded_size && first > *index.decoded_size) return fail(errc::bad_range);
      hold_last = h->content_checksum &&
                  (last == to_end || (index.decoded_size && last >= *index.decoded_size));
      std::size_t produced = 0;
      if (auto ec = run(buf, produced)) return fail(ec);
      out.resize(h->block_max_size);
      pos += buf.size();
      buf.clear();
      return expect(piece::block_size, 4);
    }
    case piece::block_size: {
      const std::uint32_t v = le32(buf.data());
      if (v != 0 && held_size) release_held(sink_fn);  // not the last block
      if (v == 0) {
        const bool checksum = index.header->content_checksum;
        if (from_start && checksum) return expect(piece::end_mark, 8);
        state = piece::end_mark;  // the checksum (if any) covers content a resume skipped
        return piece_done(sink_fn);
      }
      const std::uint32_t size = v & 0x7FFFFFFFu;
      if (size == 0 || size > index.header->block_max_size) return fail(errc::corrupt_block);
      if (ordinal == index.blocks.size()) {
        index.blocks.push_back({pos, decoded});
      } else if (ordinal > index.blocks.size() || index.blocks[ordinal].compressed_offset != pos ||
                 index.blocks[ordinal].decoded_offset != decoded) {
        return fail(errc::corrupt_block);  // the data differs from what the index learnt
      }
      return expect(piece::block_body,
                    4 + std::size_t{size} + (index.header->block_checksum ? 4 : 0));
    }
    case piece::block_body: {
      std::size_t produced = 0;
      if (auto ec = run(buf, produced)) return fail(ec);
      if (hold_last) {
        std::swap(out, held);
        if (out.size() < held.size()) out.resize(held.size());
        held_size = produced;
        held_at = decoded;
      } else {
        emit(out.data(), decoded, produced, sink_fn);
      }
      decoded += produced;
      pos += buf.size();
      buf.clear();
      ++ordinal;
      if (index.decoded_size && decoded > *index.decoded_size) return fail(errc::size_mismatch);
      if (decoded >= last && !hold_last) {
        state = piece::done;
        return {};
      }
      return expect(piece::block_size, 4);
    }
    case piece::end_mark: {
      std::size_t produced = 0;
      if (auto ec = run(buf, produced)) return fail(ec);
      if (produced != 0) return fail(errc::corrupt_block);
      if (held_size) release_held(sink_fn);  // liblz4 checked the content checksum
      const std::uint64_t end = pos + 4 + (index.header->content_checksum ? 4 : 0);
      if (index.decoded_size && *index.decoded_size != decoded) return fail(errc::size_mismatch);
      index.decoded_size = decoded;
      index.frame_size = end;
      buf.clear();
      if (end != entry_size)
        return fail(end > entry_size ? errc::truncated_frame : errc::trailing_data);
      if (last != to_end && last > decoded) return fail(errc::bad_range);
      pos = end;
      state = piece::done;
      return {};
    }
    case piece::done:
    case piece::failed:
      break;
  }
  return error;
}

decoder::decoder(block_index& index, std::uint64_t entry_size, std::uint64_t first,
                 std::uint64_t last)
    : impl_(std::make_unique<impl>(index, entry_size, first, last)) {
  impl_->start();
}
decoder::~decoder() = default;

std::optional<byte_range> decoder::next_read() const {
  const auto& i = *impl_;
  if (i.state == impl::piece::done || i.state == impl::piece::failed) return std::nullopt;
  return byte_range{i.pos + i.buf.size(), i.need - i.buf.size()};
}

boost::system::error_code decoder::feed(std::uint64_t offset, std::span<const std::uint8_t> bytes,
                                        const sink& out) {
  auto& i = *impl_;
  if (i.state == impl::piece::failed) return i.error;
  if (i.state == impl::piece::done) return {};
  if (offset != i.pos + i.buf.size() || bytes.empty()) return i.fail(errc::wrong_input_size);
  while (!bytes.empty() && i.state != impl::piece::done && i.state != impl::piece::failed) {
    const std::size_t take = std::min(bytes.size(), i.need - i.buf.size());
    i.buf.insert(i.buf.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(take));
    bytes = bytes.subspan(take);
    if (i.buf.size() == i.need)
      if (auto ec = i.piece_done(out)) return ec;
  }
  return i.state == impl::piece::failed ? i.error : boost::system::error_code{};
}

bool decoder::done() const {
  return impl_->state == impl::piece::done;
}
bool decoder::failed() const {
  return impl_->state == impl::piece::failed;
}
boost::system::error_code decoder::error() const {
  return impl_->error;
}
std::uint64_t decoder::decoded_position() const {
  return impl_->decoded;
}

result<std::vector<std::uint8_t>> decode(std::span<const std::uint8_t> entry, std::uint64_t first,
                                         std::uint64_t last, block_index* index) {
  block_index local;
  block_index& idx = index ? *index : local;
  decoder d(idx, entry.size(), first, last);
  std::vector<std::uint8_t> result;
  const sink append = [&](std::span<const std::uint8_t> b) {
    result.insert(result.end(), b.begin(), b.end());
  };
  while (auto range = d.next_read()) {
    if (auto ec = d.feed(range->offset, entry.subspan(range->offset, range->length), append))
      return ec;
  }
  if (d.failed()) return d.error();
  return result;
}

}  // namespace fusproxy::archive::lz4
