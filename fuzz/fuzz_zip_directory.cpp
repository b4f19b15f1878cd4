// libFuzzer target: the zip central directory reader (a zip's tail as upstream, or a
// corrupted cache file, could give it) and the local header check built on it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "zip/zip_directory.hpp"

using namespace fusproxy::zip;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> file(data, size);
  auto dir = read_directory(size, [&](byte_range r, std::span<std::uint8_t> out) {
    if (r.offset > size || r.length > size - r.offset || out.size() != r.length) return false;
    if (!out.empty()) std::memcpy(out.data(), data + r.offset, out.size());
    return true;
  });
  if (!dir) return 0;
  (void)members_json(*dir);
  for (const auto& m : dir->members) {
    const auto lh = local_header_range(m);
    if (lh.offset > size || lh.length > size - lh.offset) continue;
    (void)data_offset(file.subspan(lh.offset, lh.length), m, *dir);
  }
  return 0;
}
