// libFuzzer target: the tar reader (a member's headers come from upstream bytes, or from a
// corrupted cache file). The input is the member; its first 8 bytes, read as a number, may
// also make the member "sparse": larger than the input, the rest reading as zeros, so the
// huge-size arithmetic (base-256 sizes, tails) is exercised without huge inputs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "archive/tar_reader.hpp"

using namespace fusproxy::archive;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::uint64_t member_size = size;
  if (size >= 8 && data[0] == 0xFF) {
    std::uint64_t extra = 0;
    std::memcpy(&extra, data, 8);
    member_size = size + (extra >> 16) % (1ull << 40);
  }
  tar_reader r(member_size);
  std::vector<std::uint8_t> buf;
  while (auto range = r.next_read()) {
    if (range->offset > member_size || range->length > member_size - range->offset) abort();
    if (range->length > max_extended_header + max_tail_read) abort();  // reads stay small
    buf.assign(range->length + 3, 0);  // a little more than asked: allowed, ignored
    for (std::uint64_t i = 0; i < range->length && range->offset + i < size; ++i)
      buf[i] = data[range->offset + i];
    if (r.feed(range->offset, buf)) break;
  }
  for (const auto& e : r.entries())
    if (e.data_end() > member_size || e.data_offset < e.header_offset + tar_block) abort();
  if (r.trailer() && r.trailer()->offset >= member_size) abort();
  return 0;
}
