#include "sim/catalogue.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <set>
#include <stdexcept>
#include <utility>

#include <boost/json.hpp>

#include "protocol/ascii.hpp"

namespace fusproxy::sim {
namespace {

class catalogue_category_impl : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fusproxy.sim.catalogue"; }
  std::string message(int ev) const override {
    switch (static_cast<catalogue_errc>(ev)) {
      case catalogue_errc::bad_json:
        return "catalogue is not valid JSON";
      case catalogue_errc::missing_field:
        return "catalogue: a required field is missing";
      case catalogue_errc::wrong_type:
        return "catalogue: a field has the wrong type";
      case catalogue_errc::bad_value:
        return "catalogue: a field has an invalid value";
      case catalogue_errc::unknown_field:
        return "catalogue: unknown field";
      case catalogue_errc::duplicate:
        return "catalogue: duplicate entry";
    }
    return "catalogue: unknown error";
  }
};

// ---- small text helpers ----------------------------------------------------------------

using protocol::ascii::iequals;
std::string upper(std::string_view s) {
  return protocol::ascii::to_upper(s);
}

bool all_of_chars(std::string_view s, std::string_view extra, bool lower_ok) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    const bool upper_or_digit = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    const bool lower = c >= 'a' && c <= 'z';
    return upper_or_digit || (lower_ok && lower) || extra.find(c) != std::string_view::npos;
  });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start));
    if (pos == std::string_view::npos) return parts;
    start = pos + 1;
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 8 decimal digits, no leading zero (like the CL/QB change-list numbers of real names).
std::string digits8(std::uint64_t x) {
  return std::to_string(10000000 + x % 90000000);
}

// "R(Android 11)" -> "11"; "" when there is no number.
std::string android_major(std::string_view os) {
  const auto pos = os.find("Android ");
  if (pos == std::string_view::npos) return {};
  std::string out;
  for (auto i = pos + 8; i < os.size() && std::isdigit(static_cast<unsigned char>(os[i])); ++i)
    out.push_back(os[i]);
  return out;
}

// ---- validation --------------------------------------------------------------------------

struct failure {
  catalogue_errc code;
  std::string detail;
};

using check = std::optional<failure>;

check bad(std::string where, std::string what, catalogue_errc code = catalogue_errc::bad_value) {
  return failure{code, std::move(where) + ": " + std::move(what)};
}

bool valid_version(std::string_view v) {
  const auto parts = split(v, '/');
  if (parts.size() != 4 || v.size() < 16) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].empty() && i != 2) return false;  // PHONE is empty on Wi-Fi-only models
    if (!all_of_chars(parts[i], "", false)) return false;
  }
  return true;
}

bool valid_timestamp(std::string_view t) {
  if (t.size() != 14 ||
      !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto num = [&](std::size_t pos, std::size_t len) {
    return std::stoi(std::string(t.substr(pos, len)));
  };
  const int year = num(0, 4), month = num(4, 2), day = num(6, 2);
  const int hour = num(8, 2), minute = num(10, 2), second = num(12, 2);
  return year >= 1980 && year <= 2107 && month >= 1 && month <= 12 && day >= 1 && day <= 31 &&
         hour < 24 && minute < 60 && second < 60;
}

check validate_build(const build& b, const std::string& where) {
  if (!valid_version(b.version))
    return bad(where + ".version", "'" + b.version +
                                       "' is not a 4-part version PDA/CSC/PHONE/DATA of "
                                       "[A-Z0-9] (at least 16 characters)");
  if (b.binary_name.empty() || !all_of_chars(b.binary_name, "_.-", true))
    return bad(where + ".binary_name", "must be non-empty, of [A-Za-z0-9_.-]");
  const std::string_view want_suffix = b.enc == encryption::enc4 ? ".zip.enc4" : ".zip.enc2";
  if (!ends_with(b.binary_name, want_suffix))
    return bad(where + ".binary_name", "'" + b.binary_name + "' must end with " +
                                           std::string(want_suffix) + " (the build's encryption)");
  if (b.binary_name.find('.') < 16 || b.binary_name.size() < 25)
    return bad(where + ".binary_name",
               "needs at least 16 characters before its first dot (LOGIC_CHECK input)");
  if (b.model_path.size() < 2 || b.model_path.front() != '/' || b.model_path.back() != '/' ||
      !all_of_chars(b.model_path, "/_-", true) || b.model_path.find("//") != std::string::npos)
    return bad(where + ".model_path", "must look like /neofus/9/");
  if (b.logic_value.size() != 16 || !all_of_chars(b.logic_value, "", true))
    return bad(where + ".logic_value", "must be 16 characters of [A-Za-z0-9]");
  if (b.model_type.empty() || !std::all_of(b.model_type.begin(), b.model_type.end(),
                                           [](char c) { return c >= '0' && c <= '9'; }))
    return bad(where + ".model_type", "must be decimal digits");
  if (!valid_timestamp(b.last_modified))
    return bad(where + ".last_modified", "must be a YYYYMMDDhhmmss time from 1980 on");
  if (b.plain_size < min_plain_size || b.plain_size > max_plain_size)
    return bad(where + ".plain_size", "must be between " + std::to_string(min_plain_size) +
                                          " and " + std::to_string(max_plain_size));
  if (b.ap_deflated && b.plain_size > max_deflated_ap_plain_size)
    return bad(where + ".ap_deflated",
               "only for builds up to " + std::to_string(max_deflated_ap_plain_size) + " bytes");
  for (const auto& [field, md5] : {std::pair{".ap_md5", &b.ap_md5}, {".cp_md5", &b.cp_md5}})
    if (!md5->empty() && (md5->size() != 32 || !std::all_of(md5->begin(), md5->end(), [](char c) {
                            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                          })))
      return bad(where + field, "must be 32 lower-case hex digits");
  std::set<std::string_view> names;
  for (const auto* name : {&b.bl, &b.ap, &b.cp, &b.csc, &b.home_csc}) {
    if (name->empty() || name->size() > 255 || name->find('/') != std::string::npos ||
        name->find('\\') != std::string::npos || !names.insert(*name).second)
      return bad(where, "member names (bl, ap, cp, csc, home_csc) must be distinct file names");
  }
  if (!b.text_member.empty() &&
      (b.text_member.size() > 255 || b.text_member.find('/') != std::string::npos ||
       b.text_member.find('\\') != std::string::npos || !names.insert(b.text_member).second))
    return bad(where + ".text_member", "must be a file name distinct from the other members");
  for (const auto& [field, value] : {std::pair{".os", &b.os}, {".description", &b.description}})
    if (std::any_of(value->begin(), value->end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
      return bad(where + field, "must not hold control characters");
  return std::nullopt;
}

check validate_entries(std::vector<model_region>& entries) {
  std::set<std::string> pairs, binary_names;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto& mr = entries[i];
    const std::string where = "models[" + std::to_string(i) + "]";
    if (mr.model.empty() || mr.model.size() > 32 || !all_of_chars(mr.model, "-", false))
      return bad(where + ".model", "'" + mr.model + "' must be upper-case like SM-A207F");
    if (mr.region.size() != 3 || !all_of_chars(mr.region, "", false))
      return bad(where + ".region", "'" + mr.region + "' must be 3 upper-case characters");
    if (!pairs.insert(mr.model + "/" + mr.region).second)
      return bad(where, mr.model + "/" + mr.region + " appears twice", catalogue_errc::duplicate);
    if (mr.builds.empty()) return bad(where + ".builds", "must hold at least one build");
    std::set<std::string> versions;
    bool any_newest_wanted = false, has_newest = false;
    for (std::size_t j = 0; j < mr.builds.size(); ++j) {
      auto& b = mr.builds[j];
      const std::string bwhere = where + ".builds[" + std::to_string(j) + "]";
      if (b.model != mr.model || b.region != mr.region)
        return bad(bwhere, "model/region differ from the entry's");
      fill_member_names(b);
      if (auto f = validate_build(b, bwhere)) return f;
      if (!versions.insert(upper(b.version)).second)
        return bad(bwhere + ".version", b.version + " appears twice", catalogue_errc::duplicate);
      if (!binary_names.insert(b.binary_name).second)
        return bad(bwhere + ".binary_name", b.binary_name + " is used by another build",
                   catalogue_errc::duplicate);
      if (b.answers_with_newest) any_newest_wanted = true;
      if (b.hosted && !b.beta && !b.answers_with_newest) has_newest = true;
    }
    if (any_newest_wanted && !has_newest)
      return bad(where, "answers_with_newest needs a hosted non-beta build to answer with");
  }
  return std::nullopt;
}

// ---- JSON --------------------------------------------------------------------------------

namespace json = boost::json;

check reject_unknown(const json::object& o, std::initializer_list<std::string_view> known,
                     const std::string& where) {
  for (const auto& kv : o) {
    if (std::find(known.begin(), known.end(), kv.key()) == known.end())
      return bad(where + "." + std::string(kv.key()), "unknown field",
                 catalogue_errc::unknown_field);
  }
  return std::nullopt;
}

check get_string(const json::object& o, std::string_view key, const std::string& where,
                 std::string& out, bool required) {
  const auto* v = o.if_contains(key);
  if (!v) {
    if (required)
      return bad(where + "." + std::string(key), "missing", catalogue_errc::missing_field);
    return std::nullopt;
  }
  const auto* s = v->if_string();
  if (!s)
    return bad(where + "." + std::string(key), "must be a string", catalogue_errc::wrong_type);
  out.assign(s->data(), s->size());
  return std::nullopt;
}

check get_bool(const json::object& o, std::string_view key, const std::string& where, bool& out) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  const auto* b = v->if_bool();
  if (!b)
    return bad(where + "." + std::string(key), "must be true or false", catalogue_errc::wrong_type);
  out = *b;
  return std::nullopt;
}

// A non-negative integer given as a JSON number (20e9 is accepted: an integral double).
check get_uint(const json::object& o, std::string_view key, const std::string& where,
               std::optional<std::uint64_t>& out, bool required) {
  const auto* v = o.if_contains(key);
  const std::string field = where + "." + std::string(key);
  if (!v) {
    if (required) return bad(field, "missing", catalogue_errc::missing_field);
    return std::nullopt;
  }
  if (const auto* u = v->if_uint64()) {
    out = *u;
  } else if (const auto* i = v->if_int64()) {
    if (*i < 0) return bad(field, "must not be negative");
    out = static_cast<std::uint64_t>(*i);
  } else if (const auto* d = v->if_double()) {
    if (!(*d >= 0) || *d >= 18446744073709551616.0 || std::floor(*d) != *d)
      return bad(field, "must be a non-negative integer");
    out = static_cast<std::uint64_t>(*d);
  } else {
    return bad(field, "must be a number", catalogue_errc::wrong_type);
  }
  return std::nullopt;
}

check build_from_json(const json::value& v, const std::string& where, build& b) {
  const auto* o = v.if_object();
  if (!o) return bad(where, "must be an object", catalogue_errc::wrong_type);
  if (auto f = reject_unknown(*o,
                              {"version",
                               "os",
                               "beta",
                               "hosted",
                               "answers_with_newest",
                               "encryption",
                               "binary_name",
                               "model_path",
                               "logic_value",
                               "model_type",
                               "last_modified",
                               "description",
                               "plain_size",
                               "seed",
                               "crc_override",
                               "bl",
                               "ap",
                               "cp",
                               "csc",
                               "home_csc",
                               "ap_deflated",
                               "ap_md5",
                               "cp_md5",
                               "corrupt_lz4",
                               "text_member"},
                              where))
    return f;
  check f;
  if ((f = get_string(*o, "version", where, b.version, true))) return f;
  if ((f = get_string(*o, "binary_name", where, b.binary_name, true))) return f;
  if ((f = get_string(*o, "model_path", where, b.model_path, true))) return f;
  if ((f = get_string(*o, "logic_value", where, b.logic_value, true))) return f;
  if ((f = get_string(*o, "os", where, b.os, false))) return f;
  b.model_type = "9";
  if ((f = get_string(*o, "model_type", where, b.model_type, false))) return f;
  b.last_modified = "20240101000000";
  if ((f = get_string(*o, "last_modified", where, b.last_modified, false))) return f;
  b.description = "https://doc.samsungmobile.com/" + b.model + "/" + b.region + "/doc.html";
  if ((f = get_string(*o, "description", where, b.description, false))) return f;
  if ((f = get_bool(*o, "beta", where, b.beta))) return f;
  if ((f = get_bool(*o, "hosted", where, b.hosted))) return f;
  if ((f = get_bool(*o, "answers_with_newest", where, b.answers_with_newest))) return f;
  if ((f = get_bool(*o, "ap_deflated", where, b.ap_deflated))) return f;
  if ((f = get_string(*o, "ap_md5", where, b.ap_md5, false))) return f;
  if ((f = get_string(*o, "cp_md5", where, b.cp_md5, false))) return f;
  if ((f = get_bool(*o, "corrupt_lz4", where, b.corrupt_lz4))) return f;
  if ((f = get_string(*o, "text_member", where, b.text_member, false))) return f;

  b.enc = ends_with(b.binary_name, ".enc2") ? encryption::enc2 : encryption::enc4;
  std::string enc_text;
  if ((f = get_string(*o, "encryption", where, enc_text, false))) return f;
  if (enc_text == "enc2") {
    b.enc = encryption::enc2;
  } else if (enc_text == "enc4") {
    b.enc = encryption::enc4;
  } else if (!enc_text.empty()) {
    return bad(where + ".encryption", "must be \"enc4\" or \"enc2\"");
  }

  std::optional<std::uint64_t> number;
  if ((f = get_uint(*o, "plain_size", where, number, true))) return f;
  b.plain_size = *number;
  number.reset();
  if ((f = get_uint(*o, "seed", where, number, false))) return f;
  b.seed = number ? *number : fnv1a(b.binary_name);
  number.reset();
  if ((f = get_uint(*o, "crc_override", where, number, false))) return f;
  if (number) {
    if (*number > 0xFFFFFFFFu) return bad(where + ".crc_override", "must fit in 32 bits");
    b.crc_override = static_cast<std::uint32_t>(*number);
  }
  for (auto [key, field] : {std::pair{"bl", &b.bl},
                            {"ap", &b.ap},
                            {"cp", &b.cp},
                            {"csc", &b.csc},
                            {"home_csc", &b.home_csc}})
    if ((f = get_string(*o, key, where, *field, false))) return f;
  return std::nullopt;
}

check entries_from_json(std::string_view text, std::vector<model_region>& entries) {
  boost::system::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec) return failure{catalogue_errc::bad_json, "not valid JSON: " + ec.message()};
  const auto* top = root.if_object();
  if (!top)
    return bad("(top)", "must be an object {\"models\": [...]}", catalogue_errc::wrong_type);
  if (auto f = reject_unknown(*top, {"models"}, "(top)")) return f;
  const auto* models_value = top->if_contains("models");
  if (!models_value) return bad("models", "missing", catalogue_errc::missing_field);
  const auto* models = models_value->if_array();
  if (!models) return bad("models", "must be an array", catalogue_errc::wrong_type);

  for (std::size_t i = 0; i < models->size(); ++i) {
    const std::string where = "models[" + std::to_string(i) + "]";
    const auto* o = (*models)[i].if_object();
    if (!o) return bad(where, "must be an object", catalogue_errc::wrong_type);
    if (auto f = reject_unknown(*o, {"model", "region", "in_fota", "builds"}, where)) return f;
    model_region mr;
    check f;
    if ((f = get_string(*o, "model", where, mr.model, true))) return f;
    if ((f = get_string(*o, "region", where, mr.region, true))) return f;
    if ((f = get_bool(*o, "in_fota", where, mr.in_fota))) return f;
    const auto* builds_value = o->if_contains("builds");
    if (!builds_value) return bad(where + ".builds", "missing", catalogue_errc::missing_field);
    const auto* builds = builds_value->if_array();
    if (!builds) return bad(where + ".builds", "must be an array", catalogue_errc::wrong_type);
    for (std::size_t j = 0; j < builds->size(); ++j) {
      build b;
      b.model = mr.model;
      b.region = mr.region;
      if ((f = build_from_json((*builds)[j], where + ".builds[" + std::to_string(j) + "]", b)))
        return f;
      mr.builds.push_back(std::move(b));
    }
    entries.push_back(std::move(mr));
  }
  return std::nullopt;
}

json::object build_to_json(const build& b) {
  json::object o;
  o["version"] = b.version;
  o["os"] = b.os;
  o["beta"] = b.beta;
  o["hosted"] = b.hosted;
  o["answers_with_newest"] = b.answers_with_newest;
  o["encryption"] = b.enc == encryption::enc4 ? "enc4" : "enc2";
  o["binary_name"] = b.binary_name;
  o["model_path"] = b.model_path;
  o["logic_value"] = b.logic_value;
  o["model_type"] = b.model_type;
  o["last_modified"] = b.last_modified;
  o["description"] = b.description;
  o["plain_size"] = b.plain_size;
  o["seed"] = b.seed;
  if (b.crc_override) o["crc_override"] = *b.crc_override;
  o["bl"] = b.bl;
  o["ap"] = b.ap;
  o["cp"] = b.cp;
  o["csc"] = b.csc;
  o["home_csc"] = b.home_csc;
  o["ap_deflated"] = b.ap_deflated;
  if (!b.ap_md5.empty()) o["ap_md5"] = b.ap_md5;
  if (!b.cp_md5.empty()) o["cp_md5"] = b.cp_md5;
  o["corrupt_lz4"] = b.corrupt_lz4;
  if (!b.text_member.empty()) o["text_member"] = b.text_member;
  return o;
}

boost::system::result<catalogue> fail(const failure& f, std::string* detail) {
  if (detail) *detail = f.detail;
  return make_error_code(f.code);
}

// ---- the built-in catalogue ----------------------------------------------------------------

constexpr std::uint64_t MiB = 1024 * 1024;

struct build_spec {
  std::string_view version, os, binary_name, logic_value, last_modified;
  std::uint64_t plain_size;
  bool beta = false, hosted = true, answers_with_newest = false;
};

build make_build(std::string_view model, std::string_view region, std::string_view model_path,
                 const build_spec& s) {
  build b;
  b.model = model;
  b.region = region;
  b.version = s.version;
  b.os = s.os;
  b.beta = s.beta;
  b.hosted = s.hosted;
  b.answers_with_newest = s.answers_with_newest;
  b.enc = ends_with(s.binary_name, ".enc2") ? encryption::enc2 : encryption::enc4;
  b.binary_name = s.binary_name;
  b.model_path = model_path;
  b.logic_value = s.logic_value;
  b.model_type = "9";
  b.last_modified = s.last_modified;
  b.description = "https://doc.samsungmobile.com/" + b.model + "/" + b.region + "/doc.html";
  b.plain_size = s.plain_size;
  b.seed = fnv1a(s.binary_name);
  return b;
}

std::vector<model_region> builtin_entries() {
  std::vector<model_region> out;

  // The write-up's captured build (legacy fixtures), small so the demo downloads quickly.
  {
    model_region mr{"SM-A207F", "SER", {}, true};
    build newest = make_build(mr.model, mr.region, "/neofus/910/",
                              {"A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2",
                               "R(Android 11)", "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4",
                               "ehbkrulq43h44mqw", "20211007165909", 24 * MiB});
    newest.bl = "BL_A207FXXU2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5";
    newest.ap =
        "AP_A207FXXU2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT_meta_RKEY_OS11"
        ".tar.md5";
    newest.cp =
        "CP_A207FXXU2CUI2_CP20395837_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5";
    newest.csc =
        "CSC_OMC_OXM_A207FOXM2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5";
    newest.home_csc =
        "HOME_CSC_OMC_OXM_A207FOXM2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT"
        ".tar.md5";
    mr.builds.push_back(std::move(newest));
    mr.builds.push_back(
        make_build(mr.model, mr.region, "/neofus/910/",
                   {"A207FXXU2BUB3/A207FOXM2BUB3/A207FXXU2BUB3/A207FXXU2BUB3", "R(Android 11)",
                    "SM-A207F_2_20210219083012_x7gmq2p0ha_fac.zip.enc4", "k2fw9s0mxq7ar1tc",
                    "20210225101512", 24 * MiB, false, true, /*answers_with_newest=*/true}));
    mr.builds.push_back(
        make_build(mr.model, mr.region, "/neofus/910/",
                   {"A207FXXU1ATH3/A207FOXM1ATH3/A207FXXU1ATH3/A207FXXU1ATH3", "Q(Android 10)",
                    "SM-A207F_1_20200812173344_pz81hbw6de_fac.zip.enc4", "m3c8x0qa5tzl2wve",
                    "20200819120405", 24 * MiB, false, /*hosted=*/false}));
    out.push_back(std::move(mr));
  }

  // A small ENC4 model with a beta build above its newest stable one.
  {
    model_region mr{"SM-G990B", "BTU", {}, true};
    mr.builds.push_back(
        make_build(mr.model, mr.region, "/neofus/9/",
                   {"G990BXXU9ZZE4/G990BOXM9ZZE4/G990BXXU9CZE4/G990BXXU9ZZE4", "Z(Android 99)",
                    "SM-G990B_2_20260601081502_q0b7etfjn1_fac.zip.enc4", "5pnd2ikrw8a0yl3e",
                    "20260601082233", 1536 * 1024 + 123, /*beta=*/true}));
    build stable = make_build(mr.model, mr.region, "/neofus/9/",
                              {"G990BXXSDFYE1/G990BOXMDFYE1/G990BXXSDFYE1/G990BXXSDFYE1",
                               "V(Android 15)", "SM-G990B_2_20250521094410_r8vcu2hx5m_fac.zip.enc4",
                               "t1qo9dx7v0ah3gjb", "20250521095002", 2 * MiB});
    stable.ap_deflated = true;  // the built-in build whose AP member is deflated in the zip
    mr.builds.push_back(std::move(stable));
    mr.builds.push_back(
        make_build(mr.model, mr.region, "/neofus/9/",
                   {"G990BXXSCFYC2/G990BOXMCFYC2/G990BXXSCFYC2/G990BXXSCFYC2", "V(Android 15)",
                    "SM-G990B_2_20250318100212_yz4kq1v9op_fac.zip.enc4", "w6jhe2ln0bcx8d4r",
                    "20250318101130", 2 * MiB, false, /*hosted=*/false}));
    out.push_back(std::move(mr));
  }

  // A small ENC2 build of an old model FOTA no longer knows.
  {
    model_region mr{"SM-G900F", "DBT", {}, /*in_fota=*/false};
    mr.builds.push_back(
        make_build(mr.model, mr.region, "/neofus/2/",
                   {"G900FXXU1CRH1/G900FDBT1CRH1/G900FXXU1CRH1/G900FXXU1CRH1", "M(Android 6.0.1)",
                    "SM-G900F_1_20180822140301_ojd6wjs3d2_fac.zip.enc2", "a8fk2l0qz3mv7xen",
                    "20180822141502", 1200007}));
    out.push_back(std::move(mr));
  }

  // Versions from the captured SmartHistory answer (fixtures/smart-history-SM-S931U1-XAA.xml).
  {
    model_region mr{"SM-S931U1", "XAA", {}, true};
    const std::string_view path = "/neofus/9/";
    mr.builds.push_back(
        make_build(mr.model, mr.region, path,
                   {"S931U1UEUACZF1/S931U1OYMACZF1/S931U1UEUACZF1/S931U1UEUACZF1", "B(Android 16)",
                    "SM-S931U1_2_20260602051147_hq2l8vbx0c_fac.zip.enc4", "x9d0gm2kc7qwle4s",
                    "20260602051950", 48 * MiB}));
    mr.builds.push_back(
        make_build(mr.model, mr.region, path,
                   {"S931U1UESACZE1/S931U1OYMACZE1/S931U1UESACZE1/S931U1UESACZE1", "B(Android 16)",
                    "SM-S931U1_2_20260527050107_b5nqz7fe2u_fac.zip.enc4", "r4ux0w1pnk9hct6y",
                    "20260527050707", 48 * MiB, false, true, /*answers_with_newest=*/true}));
    mr.builds.push_back(
        make_build(mr.model, mr.region, path,
                   {"S931U1UEU9CZDP/S931U1OYM9CZDP/S931U1UEU9CZDP/S931U1UEU9CZDP", "B(Android 16)",
                    "SM-S931U1_2_20260512050110_c0mv5l2s8x_fac.zip.enc4", "f7hq2jo0ybn3ze5u",
                    "20260512051010", 48 * MiB, false, /*hosted=*/false}));
    mr.builds.push_back(
        make_build(mr.model, mr.region, path,
                   {"S931U1UEU9ZZDD/S931U1OYM9ZZDD/S931U1UEU9CZDD/S931U1UEU9ZZDD", "Z(Android 99)",
                    "SM-S931U1_2_20260420090018_vn3k8w0zjd_fac.zip.enc4", "e2bz8p1mr0xkq6ta",
                    "20260420090018", 8 * MiB, /*beta=*/true}));
    mr.builds.push_back(
        make_build(mr.model, mr.region, path,
                   {"S931U1UES9BZBH/S931U1OYM9BZBH/S931U1UES9BZBH/S931U1UES9BZBH", "B(Android 16)",
                    "SM-S931U1_2_20260414050107_l4t0xq8b1n_fac.zip.enc4", "s0k7d3nw9gq2ub8c",
                    "20260414050707", 48 * MiB, false, /*hosted=*/false}));
    out.push_back(std::move(mr));
  }

  // Bad input for the proxy's /files/ tests (issue 14): AP's boot.img.lz4 has a corrupt block
  // mid-frame, and the zip holds a member that is not a tar. Nothing else uses this pair.
  {
    model_region mr{"SM-A556E", "INS", {}, true};
    build bad = make_build(mr.model, mr.region, "/neofus/9/",
                           {"A556EXXU1AXB1/A556EODM1AXB1/A556EXXU1AXB1/A556EXXU1AXB1",
                            "U(Android 14)", "SM-A556E_2_20240215093000_c0rrupt4z4_fac.zip.enc4",
                            "badinputlz4tar16", "20240215093000", 4 * MiB});
    bad.corrupt_lz4 = true;
    bad.text_member = "release_notes.txt";
    mr.builds.push_back(std::move(bad));
    out.push_back(std::move(mr));
  }

  // 20 GB, zip64: memory and throughput benchmarks.
  {
    model_region mr{"SM-BIG00", "BIG", {}, true};
    mr.builds.push_back(
        make_build(mr.model, mr.region, "/neofus/9/",
                   {"BIG00XXU1AZA1/BIG00OXM1AZA1/BIG00XXU1AZA1/BIG00XXU1AZA1", "B(Android 16)",
                    "SM-BIG00_2_20260105120000_b1g0b1g0b1_fac.zip.enc4", "bigbuild20gbytes",
                    "20260105120000", 20'000'000'000}));
    out.push_back(std::move(mr));
  }
  // The AP and CP tars' MD5s, precomputed: making them costs a pass over the member (~30 s
  // for the 20 GB build, tens of ms for the small ones, which every test that lists
  // /_sim/builds would pay). Checked by the ctest sim_firmware_md5_precomputed, which prints
  // this table anew when the layout of the members changes.
  struct precomputed {
    std::string_view binary_name, ap, cp;
  };
  static constexpr precomputed md5s[] = {
      {"SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4", "42a9aa0719cc8e3bfcf88a9ce80d5143",
       "8c83d7daf40275bd676392030ea0e28b"},
      {"SM-A207F_2_20210219083012_x7gmq2p0ha_fac.zip.enc4", "ec19072411cf8f0ae53d58a7e66b8c9e",
       "3376801527da287a3f75858ef48e3ba5"},
      {"SM-A207F_1_20200812173344_pz81hbw6de_fac.zip.enc4", "5eec08472e7c8059ea7942f932475dcd",
       "d251253ae9765c27fb0bfeaa28dc228f"},
      {"SM-G990B_2_20260601081502_q0b7etfjn1_fac.zip.enc4", "36e27b4a5d0f00463c893525d5994d64",
       "da507881f9e75b360390ef07cfeb2b1a"},
      {"SM-G990B_2_20250521094410_r8vcu2hx5m_fac.zip.enc4", "ee559b595ccb34c18dc6c6212164c306",
       "59bc7a05ad08df33a1515deab7e55c8c"},
      {"SM-G990B_2_20250318100212_yz4kq1v9op_fac.zip.enc4", "0f4f3f7f0cc32525128bcdddfcf5f1f7",
       "7ecdd5ac35119dc427edcf1871aecbee"},
      {"SM-G900F_1_20180822140301_ojd6wjs3d2_fac.zip.enc2", "39a4d10104a1ef820802b04b27fac290",
       "24062c7540df36def35e92b79886ea2c"},
      {"SM-S931U1_2_20260602051147_hq2l8vbx0c_fac.zip.enc4", "99ffb6416cd69594bb8452cc602c8184",
       "586862f71efba965ff3f9c6d14ec8d86"},
      {"SM-S931U1_2_20260527050107_b5nqz7fe2u_fac.zip.enc4", "e1c5880b6acaa29f7d8947b4a0458702",
       "f776cca61b3229a9c6ff16d152ecb6ba"},
      {"SM-S931U1_2_20260512050110_c0mv5l2s8x_fac.zip.enc4", "bd4982d6067ea070296742f609a4bd50",
       "d833eab82e1f8b12db4a2a18a1c9d85a"},
      {"SM-S931U1_2_20260420090018_vn3k8w0zjd_fac.zip.enc4", "c28f39fdd86a045784ea2ca0d4c90241",
       "2ce795b5ab814691d6fb113d1c984048"},
      {"SM-S931U1_2_20260414050107_l4t0xq8b1n_fac.zip.enc4", "d9acea4e9e9365e6bc721bc684ac7029",
       "b3a13c73b1991366baf0653ab50405f7"},
      {"SM-A556E_2_20240215093000_c0rrupt4z4_fac.zip.enc4", "3a4dceee42f3b929a34636dafdfab8b7",
       "c621b020132f50efff8354550bfc8df4"},
      {"SM-BIG00_2_20260105120000_b1g0b1g0b1_fac.zip.enc4", "cf156aaa2ea4906d3810822f15fcbe60",
       "1af294c27f4b78b4f5516ac657ed46ec"},
  };
  for (auto& mr : out)
    for (auto& b : mr.builds)
      for (const auto& p : md5s)
        if (p.binary_name == b.binary_name) {
          b.ap_md5 = p.ap;
          b.cp_md5 = p.cp;
        }
  return out;
}

}  // namespace

const boost::system::error_category& catalogue_category() noexcept {
  static const catalogue_category_impl category;
  return category;
}

boost::system::error_code make_error_code(catalogue_errc e) noexcept {
  return {static_cast<int>(e), catalogue_category()};
}

void fill_member_names(build& b) {
  const auto parts = split(b.version, '/');
  const std::string pda(parts.empty() ? "UNKNOWN" : parts[0]);
  const std::string csc(parts.size() > 1 && !parts[1].empty() ? parts[1] : pda);
  const std::string phone(parts.size() > 2 && !parts[2].empty() ? parts[2] : pda);
  // The CSC code ("OXM") sits before the last 5 characters of the CSC version.
  const std::string csc_code = csc.size() >= 8 ? csc.substr(csc.size() - 8, 3) : "OXM";
  const std::string cl = "_CL" + digits8(mix(b.seed));
  const std::string qb = "_QB" + digits8(mix(b.seed + 1));
  const std::string tail = cl + qb + "_REV00_user_low_ship_MULTI_CERT";
  const std::string os = android_major(b.os);
  if (b.bl.empty()) b.bl = "BL_" + pda + tail + ".tar.md5";
  if (b.ap.empty())
    b.ap = "AP_" + pda + tail + "_meta" + (os.empty() ? "" : "_OS" + os) + ".tar.md5";
  if (b.cp.empty()) b.cp = "CP_" + phone + "_CP" + digits8(mix(b.seed + 2)) + tail + ".tar.md5";
  if (b.csc.empty()) b.csc = "CSC_OMC_" + csc_code + "_" + csc + tail + ".tar.md5";
  if (b.home_csc.empty()) b.home_csc = "HOME_CSC_OMC_" + csc_code + "_" + csc + tail + ".tar.md5";
}

catalogue catalogue::builtin() {
  catalogue c;
  c.entries_ = builtin_entries();
  // The built-in entries obey the same rules as a file; a failure here is a bug caught by tests.
  if (auto f = validate_entries(c.entries_))
    throw std::logic_error("built-in catalogue: " + f->detail);
  return c;
}

boost::system::result<catalogue> catalogue::from_json(std::string_view json) {
  return from_json(json, nullptr);
}

boost::system::result<catalogue> catalogue::from_json(std::string_view json, std::string* detail) {
  try {
    std::vector<model_region> entries;
    if (auto f = entries_from_json(json, entries)) return fail(*f, detail);
    return from_entries(std::move(entries), detail);
  } catch (const std::exception& e) {  // allocation failure: still no escaping exception
    return fail({catalogue_errc::bad_json, e.what()}, detail);
  }
}

boost::system::result<catalogue> catalogue::from_entries(std::vector<model_region> entries,
                                                         std::string* detail) {
  if (auto f = validate_entries(entries)) return fail(*f, detail);
  catalogue c;
  c.entries_ = std::move(entries);
  return c;
}

std::string catalogue::to_json() const {
  json::array models;
  for (const auto& mr : entries_) {
    json::object o;
    o["model"] = mr.model;
    o["region"] = mr.region;
    o["in_fota"] = mr.in_fota;
    json::array builds;
    for (const auto& b : mr.builds) builds.push_back(build_to_json(b));
    o["builds"] = std::move(builds);
    models.push_back(std::move(o));
  }
  json::object root;
  root["models"] = std::move(models);
  return json::serialize(root);
}

const model_region* catalogue::find(std::string_view model, std::string_view region) const {
  for (const auto& mr : entries_)
    if (iequals(mr.model, model) && iequals(mr.region, region)) return &mr;
  return nullptr;
}

const build* catalogue::find_build(std::string_view model, std::string_view region,
                                   std::string_view version) const {
  const auto* mr = find(model, region);
  if (!mr) return nullptr;
  for (const auto& b : mr->builds)
    if (iequals(b.version, version)) return &b;
  return nullptr;
}

const build* catalogue::find_by_binary_name(std::string_view binary_name) const {
  for (const auto& mr : entries_)
    for (const auto& b : mr.builds)
      if (b.binary_name == binary_name) return &b;
  return nullptr;
}

const build* catalogue::newest(std::string_view model, std::string_view region) const {
  const auto* mr = find(model, region);
  if (!mr) return nullptr;
  for (const auto& b : mr->builds)
    if (b.hosted && !b.beta && !b.answers_with_newest) return &b;
  return nullptr;
}

}  // namespace fusproxy::sim
