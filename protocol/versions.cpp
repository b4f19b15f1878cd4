#include "protocol/versions.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>

#include "protocol/ascii.hpp"
#include "protocol/detail/xml_document.hpp"
#include "protocol/xml.hpp"

namespace fusproxy::protocol {
namespace {

using detail::xml_node;

using ascii::to_upper;

bool is_version_part(std::string_view part) {
  return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
}

std::string_view value_of(const field_map& fields, std::string_view name) {
  const auto it = fields.find(name);
  return it == fields.end() ? std::string_view() : std::string_view(it->second);
}

std::optional<long long> decimal(std::string_view text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

result<std::string> normalize_version(std::string_view version) {
  const std::string upper_case = to_upper(ascii::trim(version));
  // "%2F" (a URL-encoded '/') and '_' (version ids) both separate parts.
  std::string text;
  for (std::size_t i = 0; i < upper_case.size(); ++i) {
    if (upper_case.compare(i, 3, "%2F") == 0) {
      text += '/';
      i += 2;
    } else {
      text += upper_case[i] == '_' ? '/' : upper_case[i];
    }
  }

  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const auto slash = text.find('/', start);
    parts.push_back(text.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() == 3) parts.push_back(parts[0]);  // FOTA omits the DATA part
  if (parts.size() != 4) return make_error_code(errc::bad_version);
  if (parts[2].empty()) parts[2] = parts[0];  // some FOTA entries omit PHONE too
  if (!std::all_of(parts.begin(), parts.end(), is_version_part)) {
    return make_error_code(errc::bad_version);
  }
  return parts[0] + '/' + parts[1] + '/' + parts[2] + '/' + parts[3];
}

std::string version_id(std::string_view version) {
  std::string out(version);
  if (out.find('/') != std::string::npos) {
    std::replace(out.begin(), out.end(), '/', '_');
  } else {
    std::replace(out.begin(), out.end(), '_', '/');
  }
  return out;
}

std::string build_smart_history(std::string_view model, std::string_view region) {
  fus_message_spec spec;
  spec.with_session_header = true;
  spec.put = {{"CmdID", "1"},
              {"ACCESS_MODE", "1"},
              {"BINARY_LOCAL_CODE", to_upper(ascii::trim(region))},
              {"BINARY_MODEL_NAME", to_upper(ascii::trim(model))}};
  return build_fus_message(spec);
}

result<std::vector<version_entry>> parse_smart_history(std::string_view xml) {
  auto msg = parse_fus_message(xml);
  if (!msg) return msg.error();

  struct item {
    version_entry entry;
    std::string key;                    // version, index and sequence
    std::optional<long long> sequence;  // absent or garbled: sorts last
  };
  std::vector<item> items;
  for (const field_map& info : msg->binary_info) {
    auto version = normalize_version(value_of(info, "BINARY_SW_VERSION"));
    if (!version) continue;  // an entry without a usable version cannot be offered
    const auto index = value_of(info, "BINARY_INDEX");
    const auto sequence = value_of(info, "BINARY_SEQUENCE");
    const auto os = value_of(info, "BINARY_OS_NAME");
    const bool beta = index == "90" || os.substr(0, 13) == "Z(Android 99)";
    std::string key = *version + '|' + std::string(index) + '|' + std::string(sequence);

    // The answer repeats each build once per BINARY_NATURE: merge those.
    const auto same =
        std::find_if(items.begin(), items.end(), [&](const item& i) { return i.key == key; });
    if (same != items.end()) {
      if (same->entry.os.empty()) same->entry.os = os;
      same->entry.beta = same->entry.beta || beta;
      continue;
    }
    items.push_back(
        {{std::move(*version), std::string(os), beta}, std::move(key), decimal(sequence)});
  }
  std::stable_sort(items.begin(), items.end(), [](const item& a, const item& b) {
    return a.sequence.value_or(-1) > b.sequence.value_or(-1);
  });

  std::vector<version_entry> out;
  out.reserve(items.size());
  for (auto& i : items) out.push_back(std::move(i.entry));
  return out;
}

result<fota_versions> parse_fota_versions(std::string_view xml) {
  auto doc = detail::xml_document::parse(xml);
  if (!doc) return doc.error();
  if (!detail::name_is(doc->root(), "versioninfo")) return make_error_code(errc::not_fus_message);

  fota_versions out;
  const xml_node* firmware = detail::child(doc->root(), "firmware");
  const xml_node* version = firmware ? detail::child(*firmware, "version") : nullptr;
  if (!version) return out;

  std::set<std::string, std::less<>> seen;
  if (const xml_node* latest = detail::child(*version, "latest")) {
    if (auto v = normalize_version(detail::text_of(*latest))) {
      out.latest = *v;
      out.latest_os = detail::trim(detail::attribute(*latest, "o"));
      seen.insert(out.latest);
    }
  }
  if (const xml_node* upgrade = detail::child(*version, "upgrade")) {
    detail::for_each_element(*upgrade, [&](const xml_node& value) {
      if (!detail::name_is(value, "value")) return;
      auto v = normalize_version(detail::text_of(value));
      if (v && seen.insert(*v).second) out.upgrades.push_back(std::move(*v));
    });
  }
  return out;
}

bool is_fota_access_denied(std::string_view body) {
  auto doc = detail::xml_document::parse(body);
  if (!doc || !detail::name_is(doc->root(), "Error")) return false;
  const xml_node* code = detail::child(doc->root(), "Code");
  return code && detail::text_of(*code) == "AccessDenied";
}

std::vector<version_entry> merge_versions(const std::vector<version_entry>& history,
                                          const fota_versions& fota) {
  std::vector<version_entry> merged = history;
  std::set<std::string, std::less<>> seen;
  for (const auto& e : history) seen.insert(e.version);
  if (!fota.latest.empty() && seen.insert(fota.latest).second) {
    merged.push_back({fota.latest, fota.latest_os, false});
  }
  for (const auto& v : fota.upgrades) {
    if (seen.insert(v).second) merged.push_back({v, "", false});
  }
  return merged;
}

std::string newest_stable(const std::vector<version_entry>& merged) {
  const auto it = std::find_if(merged.begin(), merged.end(), [](const auto& e) { return !e.beta; });
  return it == merged.end() ? std::string() : it->version;
}

}  // namespace fusproxy::protocol
