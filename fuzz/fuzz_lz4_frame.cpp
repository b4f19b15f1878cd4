// libFuzzer target: the LZ4 frame layer (an entry's frame comes from upstream bytes). The
// input is the frame; a whole decode builds the block index, then a range chosen from the
// input's first bytes is decoded again from the nearest independent block, with the index
// and without, fed in small pieces. When the whole decode succeeded, both range decodes must
// give exactly the slice of it: a resumed decode never yields other bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "archive/lz4_frame.hpp"

using namespace fusproxy::archive;

namespace {

result<std::vector<std::uint8_t>> decode_pieces(std::span<const std::uint8_t> frame,
                                                lz4::block_index& index, std::uint64_t a,
                                                std::uint64_t b, std::size_t piece) {
  lz4::decoder d(index, frame.size(), a, b);
  std::vector<std::uint8_t> out;
  while (auto r = d.next_read()) {
    if (r->offset >= frame.size()) abort();  // never asks past the entry
    const std::size_t n = std::min<std::uint64_t>(piece, frame.size() - r->offset);
    if (auto ec = d.feed(
            r->offset, frame.subspan(r->offset, n),
            [&](std::span<const std::uint8_t> s) { out.insert(out.end(), s.begin(), s.end()); }))
      return ec;
  }
  if (d.failed()) return d.error();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> frame(data, size);
  lz4::block_index index;
  auto whole = lz4::decode(frame, 0, lz4::to_end, &index);
  if (!whole) {
    lz4::block_index fresh;
    (void)decode_pieces(frame, fresh, size % 1000, size % 1000 + 100, 7);
    return 0;
  }
  if (index.decoded_size != whole->size()) abort();
  const std::uint64_t n = whole->size();
  const std::uint64_t a = n ? (size * 2654435761u) % n : 0;
  const std::uint64_t b = a + (n - a) / 2 + (n > a ? 1 : 0);
  const std::vector<std::uint8_t> want(whole->begin() + static_cast<std::ptrdiff_t>(a),
                                       whole->begin() + static_cast<std::ptrdiff_t>(b));
  auto resumed = decode_pieces(frame, index, a, b, 1 + size % 13);
  if (!resumed || *resumed != want) abort();
  lz4::block_index fresh;
  auto cold = decode_pieces(frame, fresh, a, b, 4096);
  if (!cold || *cold != want) abort();
  return 0;
}
