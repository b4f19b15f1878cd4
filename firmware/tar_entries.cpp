#include "firmware/tar_entries.hpp"

#include <algorithm>

#include "protocol/ascii.hpp"

namespace fusproxy::server {
namespace net = boost::asio;

namespace {
using protocol::ascii::iequals;
using protocol::ascii::istarts_with;
constexpr std::string_view aliases[] = {"AP", "BL", "CP", "CSC", "HOME_CSC"};
// Compressed bytes declared ahead of a decoder whose range ends before the image does.
constexpr std::uint64_t decode_window = 16u << 20;
constexpr std::size_t max_piece = 1u << 20;
}  // namespace

const zip::member* find_member(const zip::directory& dir, std::string_view name) {
  if (const auto* m = dir.find(name)) return m;
  const auto alias = std::find_if(std::begin(aliases), std::end(aliases),
                                  [&](std::string_view a) { return iequals(a, name); });
  if (alias == std::end(aliases)) return nullptr;
  const std::string prefix = std::string(*alias) + "_";
  const zip::member* found = nullptr;
  for (const auto& m : dir.members) {
    // Members may sit in a folder of the zip; the alias names the file.
    const auto slash = m.name.find_last_of('/');
    const std::string_view base = slash == std::string::npos
                                      ? std::string_view(m.name)
                                      : std::string_view(m.name).substr(slash + 1);
    if (!istarts_with(base, prefix)) continue;
    if (found) return nullptr;  // ambiguous: ask for the full name
    found = &m;
  }
  return found;
}

entry_choice find_entry(const tar_listing& listing, std::string_view path) {
  for (const auto& e : listing.entries)
    if (e.regular() && !e.sparse && e.name == path) return {&e, false};
  const std::string lz4 = std::string(path) + ".lz4";
  for (const auto& e : listing.entries)
    if (e.regular() && !e.sparse && e.name == lz4) return {&e, true};
  return {};
}

std::vector<tar_entry_info> listing_infos(
    const tar_listing& listing,
    const std::function<std::optional<std::uint64_t>(const archive::tar_entry&)>& decoded_size) {
  std::vector<tar_entry_info> out;
  out.reserve(listing.entries.size());
  for (const auto& e : listing.entries) {
    tar_entry_info i{e.name, e.size, e.mtime, e.mode, e.data_offset, e.type, std::nullopt};
    const bool lz4 = e.name.size() > 4 && e.name.compare(e.name.size() - 4, 4, ".lz4") == 0;
    if (lz4 && e.regular() && decoded_size) i.decoded_size = decoded_size(e);
    out.push_back(std::move(i));
  }
  return out;
}

net::awaitable<boost::system::result<tar_listing>> read_listing(member_source& src) {
  archive::tar_reader reader(src.size());
  std::vector<std::uint8_t> buf;
  while (auto r = reader.next_read()) {
    buf.resize(static_cast<std::size_t>(r->length));
    src.prefetch(r->offset, r->length);
    if (auto ec = co_await src.read(r->offset, buf)) co_return ec;
    if (auto ec = reader.feed(r->offset, buf)) co_return ec;
  }
  if (reader.failed()) co_return reader.error();
  co_return tar_listing{reader.entries(), reader.trailer()};
}

net::awaitable<boost::system::error_code> write_entry(member_source& src,
                                                      const archive::tar_entry& entry,
                                                      std::uint64_t first, std::uint64_t length,
                                                      body_sink& sink) {
  if (first > entry.size || length > entry.size - first)
    co_return make_error_code(archive::errc::bad_range);
  src.prefetch(entry.data_offset + first, length);
  std::vector<std::uint8_t> buf(256u << 10);
  for (std::uint64_t done = 0; done < length;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length - done));
    if (auto ec = co_await src.read(entry.data_offset + first + done, {buf.data(), n}))
      co_return ec;
    if (auto ec = co_await sink.write({reinterpret_cast<const std::byte*>(buf.data()), n}))
      co_return ec;
    done += n;
  }
  co_return boost::system::error_code{};
}

net::awaitable<boost::system::result<archive::lz4::frame_header>> read_frame_header(
    member_source& src, const archive::tar_entry& entry) {
  std::vector<std::uint8_t> head(
      static_cast<std::size_t>(std::min<std::uint64_t>(entry.size, archive::lz4::max_header_size)));
  if (auto ec = co_await src.read(entry.data_offset, head)) co_return ec;
  co_return archive::lz4::parse_header(head);
}

net::awaitable<boost::system::error_code> write_decoded(member_source& src,
                                                        const archive::tar_entry& entry,
                                                        archive::lz4::block_index& index,
                                                        std::uint64_t first, std::uint64_t length,
                                                        body_sink* sink) {
  const std::uint64_t last = length == archive::lz4::to_end ? archive::lz4::to_end : first + length;
  archive::lz4::decoder dec(index, entry.size, first, last);
  // What to fetch ahead: to the entry's end when the range runs to the image's end (a whole
  // boot.img: every compressed byte is needed); else up to the block after `last` when the
  // index knows it, else a window that moves with the decoder.
  const bool to_image_end =
      last == archive::lz4::to_end || (index.decoded_size && last >= *index.decoded_size);
  std::optional<std::uint64_t> known_stop;
  if (!to_image_end)
    for (const auto& b : index.blocks)
      if (b.decoded_offset >= last) {
        known_stop = b.compressed_offset + 8;
        break;
      }
  std::uint64_t declared_end = 0;
  std::vector<std::uint8_t> in, out;
  while (auto r = dec.next_read()) {
    if (r->offset >= declared_end ||
        (!to_image_end && !known_stop && r->offset + decode_window / 4 > declared_end)) {
      const std::uint64_t stop = to_image_end ? entry.size
                                 : known_stop ? std::max(*known_stop, r->offset + r->length)
                                              : r->offset + std::max(decode_window, r->length);
      declared_end = std::min(entry.size, stop);
      src.prefetch(entry.data_offset + r->offset, declared_end - r->offset);
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(r->length, max_piece));
    if (n == 0 || r->offset + n > entry.size)
      co_return make_error_code(archive::errc::truncated_frame);
    in.resize(n);
    if (auto ec = co_await src.read(entry.data_offset + r->offset, in)) co_return ec;
    out.clear();
    auto ec = dec.feed(r->offset, in, [&](std::span<const std::uint8_t> b) {
      if (sink) out.insert(out.end(), b.begin(), b.end());
    });
    // Bytes decoded before a failure are right as far as the frame's checks tell: send them,
    // then the error cuts the connection.
    if (sink && !out.empty())
      if (auto wec =
              co_await sink->write({reinterpret_cast<const std::byte*>(out.data()), out.size()}))
        co_return wec;
    if (ec) co_return ec;
  }
  if (dec.failed()) co_return dec.error();
  co_return boost::system::error_code{};
}

}  // namespace fusproxy::server
