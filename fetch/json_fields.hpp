#pragma once
// Typed fields of the small JSON files the cache keeps (build records, LZ4 indexes), read
// without exceptions: each reader answers false when the field is missing or of another
// type, so that a parser refuses a torn or hand-edited file instead of guessing.
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fusproxy::server::json_fields {

inline bool get_string(const boost::json::object& o, std::string_view k, std::string& out) {
  const auto* v = o.if_contains(k);
  if (!v || !v->is_string()) return false;
  out = std::string(v->as_string());
  return true;
}

// A non-negative integer (Boost.JSON parses those below 2^63 as int64).
inline bool get_u64(const boost::json::object& o, std::string_view k, std::uint64_t& out) {
  const auto* v = o.if_contains(k);
  if (!v) return false;
  if (v->is_uint64()) {
    out = v->as_uint64();
    return true;
  }
  if (v->is_int64() && v->as_int64() >= 0) {
    out = static_cast<std::uint64_t>(v->as_int64());
    return true;
  }
  return false;
}

inline bool get_u32(const boost::json::object& o, std::string_view k, std::uint32_t& out) {
  std::uint64_t n = 0;
  if (!get_u64(o, k, n) || n > 0xffffffffu) return false;
  out = static_cast<std::uint32_t>(n);
  return true;
}

// null (nullopt) or a non-negative integer.
inline bool get_optional_u64(const boost::json::object& o, std::string_view k,
                             std::optional<std::uint64_t>& out) {
  const auto* v = o.if_contains(k);
  if (v && v->is_null()) {
    out.reset();
    return true;
  }
  std::uint64_t n = 0;
  if (!get_u64(o, k, n)) return false;
  out = n;
  return true;
}

inline bool get_bool(const boost::json::object& o, std::string_view k, bool& out) {
  const auto* v = o.if_contains(k);
  if (!v || !v->is_bool()) return false;
  out = v->as_bool();
  return true;
}

}  // namespace fusproxy::server::json_fields
