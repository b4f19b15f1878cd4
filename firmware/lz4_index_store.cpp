#include "firmware/lz4_index_store.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "crypto/crc32.hpp"
#include "fetch/json_fields.hpp"

namespace fusproxy::server {

namespace json = boost::json;

namespace {

constexpr std::string_view format_name = "fusproxy-lz4-index";
constexpr std::uint64_t format_version = 1;

json::value optional_number(const std::optional<std::uint64_t>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

// The CRC-32 of the entries as serialized: what the file's "crc32" must equal.
std::uint32_t entries_crc(const json::array& entries) {
  const auto text = json::serialize(entries);
  crypto::crc32 crc;
  crc.update({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  return crc.value();
}

json::value header_json(const std::optional<archive::lz4::frame_header>& h) {
  if (!h) return nullptr;
  return json::object{{"independent_blocks", h->independent_blocks},
                      {"block_checksum", h->block_checksum},
                      {"content_checksum", h->content_checksum},
                      {"content_size", optional_number(h->content_size)},
                      {"block_max_size", h->block_max_size},
                      {"header_size", h->size}};
}

using json_fields::get_bool;
using json_fields::get_optional_u64;
using json_fields::get_string;
using json_fields::get_u32;
using json_fields::get_u64;

bool read_header(const json::value& v, std::optional<archive::lz4::frame_header>& out) {
  if (v.is_null()) {
    out.reset();
    return true;
  }
  if (!v.is_object()) return false;
  const auto& o = v.as_object();
  archive::lz4::frame_header h;
  std::uint64_t header_size = 0;
  if (!get_bool(o, "independent_blocks", h.independent_blocks) ||
      !get_bool(o, "block_checksum", h.block_checksum) ||
      !get_bool(o, "content_checksum", h.content_checksum) ||
      !get_optional_u64(o, "content_size", h.content_size) ||
      !get_u32(o, "block_max_size", h.block_max_size) || !get_u64(o, "header_size", header_size))
    return false;
  h.size = static_cast<std::size_t>(header_size);
  out = h;
  return true;
}

bool read_entry(const json::object& o, lz4_entry_id& id, archive::lz4::block_index& index) {
  if (!get_string(o, "member", id.member) || !get_u32(o, "member_crc32", id.member_crc32) ||
      !get_string(o, "entry", id.entry) || !get_u64(o, "offset", id.offset) ||
      !get_u64(o, "size", id.size))
    return false;
  const auto* header = o.if_contains("header");
  const auto* blocks = o.if_contains("blocks");
  if (!header || !read_header(*header, index.header) || !blocks || !blocks->is_array() ||
      !get_optional_u64(o, "decoded_size", index.decoded_size) ||
      !get_optional_u64(o, "frame_size", index.frame_size))
    return false;
  // Flat pairs: compressed offset, decoded offset, ...
  const auto& flat = blocks->as_array();
  if (flat.size() % 2 != 0) return false;
  index.blocks.reserve(flat.size() / 2);
  for (std::size_t i = 0; i < flat.size(); i += 2) {
    const auto& c = flat[i];
    const auto& d = flat[i + 1];
    if (!c.is_uint64() && !(c.is_int64() && c.as_int64() >= 0)) return false;
    if (!d.is_uint64() && !(d.is_int64() && d.as_int64() >= 0)) return false;
    index.blocks.push_back({c.to_number<std::uint64_t>(), d.to_number<std::uint64_t>()});
  }
  return true;
}

bool valid_block_max(std::uint32_t n) {
  return n == (64u << 10) || n == (256u << 10) || n == (1u << 20) || n == (4u << 20);
}

}  // namespace

bool plausible_lz4_index(const archive::lz4::block_index& index, std::uint64_t entry_size) {
  const auto& h = index.header;
  if (!h) return index.blocks.empty() && !index.decoded_size && !index.frame_size;
  if (!valid_block_max(h->block_max_size) || h->size < archive::lz4::min_header_size ||
      h->size > archive::lz4::max_header_size || h->dict_id)
    return false;
  if (h->content_size && index.decoded_size && *index.decoded_size != *h->content_size)
    return false;
  const auto decoded_size = index.decoded_size ? index.decoded_size : h->content_size;
  if (index.frame_size && *index.frame_size != entry_size) return false;
  // Each block: a 4-byte size, at most block_max_size bytes, its checksum; it decodes to 1
  // to block_max_size bytes. The index is a prefix of the frame's blocks: the first one
  // starts right after the header, at decoded offset 0.
  const std::uint64_t max_span = 4 + std::uint64_t{h->block_max_size} + (h->block_checksum ? 4 : 0);
  for (std::size_t i = 0; i < index.blocks.size(); ++i) {
    const auto& b = index.blocks[i];
    if (b.compressed_offset + 4 > entry_size) return false;
    if (decoded_size && b.decoded_offset >= *decoded_size) return false;
    if (i == 0) {
      if (b.compressed_offset != h->size || b.decoded_offset != 0) return false;
      continue;
    }
    const auto& a = index.blocks[i - 1];
    if (b.compressed_offset < a.compressed_offset + 5 ||
        b.compressed_offset > a.compressed_offset + max_span)
      return false;
    if (b.decoded_offset <= a.decoded_offset ||
        b.decoded_offset > a.decoded_offset + h->block_max_size)
      return false;
  }
  return true;
}

std::string serialize_lz4_indexes(const lz4_index_owner& owner, const lz4_index_map& indexes) {
  json::array entries;
  entries.reserve(indexes.size());
  for (const auto& [id, index] : indexes) {
    json::array blocks;
    blocks.reserve(index.blocks.size() * 2);
    for (const auto& b : index.blocks) {
      blocks.push_back(b.compressed_offset);
      blocks.push_back(b.decoded_offset);
    }
    entries.push_back(json::object{{"member", id.member},
                                   {"member_crc32", id.member_crc32},
                                   {"entry", id.entry},
                                   {"offset", id.offset},
                                   {"size", id.size},
                                   {"header", header_json(index.header)},
                                   {"decoded_size", optional_number(index.decoded_size)},
                                   {"frame_size", optional_number(index.frame_size)},
                                   {"blocks", std::move(blocks)}});
  }
  const auto crc = entries_crc(entries);
  json::object o{
      {"format", format_name},
      {"version", format_version},
      {"build", json::object{{"binary_name", owner.binary_name},
                             {"crc32", owner.crc32 ? json::value(std::uint64_t{*owner.crc32})
                                                   : json::value(nullptr)},
                             {"plain_size", owner.plain_size}}},
      {"entries", std::move(entries)},
      {"crc32", crc}};
  return json::serialize(o);
}

lz4_index_parse parse_lz4_indexes(std::string_view text, const lz4_index_owner& owner) {
  const auto refuse = [](std::string why) { return lz4_index_parse{std::nullopt, std::move(why)}; };
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return refuse("not JSON (torn or damaged)");
  const auto& o = v.as_object();
  std::string format;
  std::uint64_t version = 0;
  if (!get_string(o, "format", format) || format != format_name ||
      !get_u64(o, "version", version) || version != format_version)
    return refuse("not a version " + std::to_string(format_version) + " index file");
  const auto* build = o.if_contains("build");
  const auto* entries = o.if_contains("entries");
  std::uint32_t crc = 0;
  if (!build || !build->is_object() || !entries || !entries->is_array() ||
      !get_u32(o, "crc32", crc))
    return refuse("fields missing");
  std::string name;
  std::optional<std::uint64_t> build_crc;
  std::uint64_t plain_size = 0;
  const auto& b = build->as_object();
  if (!get_string(b, "binary_name", name) || !get_optional_u64(b, "crc32", build_crc) ||
      !get_u64(b, "plain_size", plain_size))
    return refuse("fields missing");
  const bool same_crc = owner.crc32 ? build_crc == std::uint64_t{*owner.crc32} : !build_crc;
  if (name != owner.binary_name || !same_crc || plain_size != owner.plain_size)
    return refuse("written for another build (stale)");
  if (entries_crc(entries->as_array()) != crc) return refuse("checksum mismatch (damaged)");
  lz4_index_map out;
  for (const auto& e : entries->as_array()) {
    lz4_entry_id id;
    archive::lz4::block_index index;
    if (!e.is_object() || !read_entry(e.as_object(), id, index))
      return refuse("an entry's fields are missing");
    if (!plausible_lz4_index(index, id.size))
      return refuse("the index of " + id.member + "/" + id.entry + " is implausible");
    out[std::move(id)] = std::move(index);
  }
  return {std::move(out), {}};
}

}  // namespace fusproxy::server
