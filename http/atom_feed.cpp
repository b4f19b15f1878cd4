#include "http/atom_feed.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <iterator>
#include <rapidxml/rapidxml.hpp>
#include <rapidxml/rapidxml_print.hpp>

#include "http/json_views.hpp"
#include "http/routes.hpp"

namespace fusproxy::server {
namespace {

using document = rapidxml::xml_document<char>;
using node = rapidxml::xml_node<char>;

// RapidXML keeps pointers: every string is copied into the document's pool.
const char* keep(document& doc, std::string_view s) {
  return doc.allocate_string(s.data(), s.size());
}

node* element(document& doc, node* parent, std::string_view name, std::string_view text = {}) {
  const auto safe = xml_safe_text(text);
  auto* n = doc.allocate_node(rapidxml::node_element, keep(doc, name), nullptr, name.size());
  if (!safe.empty()) {
    n->value(keep(doc, safe), safe.size());
  }
  parent->append_node(n);
  return n;
}

void attribute(document& doc, node* n, std::string_view name, std::string_view value) {
  const auto safe = xml_safe_text(value);
  n->append_attribute(
      doc.allocate_attribute(keep(doc, name), keep(doc, safe), name.size(), safe.size()));
}

void link(document& doc, node* parent, std::string_view rel, std::string_view type,
          const std::string& href) {
  auto* l = element(doc, parent, "link");
  attribute(doc, l, "rel", rel);
  if (!type.empty()) attribute(doc, l, "type", type);
  attribute(doc, l, "href", href);
}

std::string pda_of(std::string_view version) {
  return std::string(version.substr(0, version.find('/')));
}

}  // namespace

std::optional<std::time_t> build_month(std::string_view version) {
  const auto pda = pda_of(version);
  if (pda.size() < 4) return std::nullopt;
  const char year = pda[pda.size() - 3];
  const char month = pda[pda.size() - 2];
  if (year < 'A' || year > 'Z' || month < 'A' || month > 'L') return std::nullopt;
  std::tm tm{};
  tm.tm_year = 2001 + (year - 'A') - 1900;
  tm.tm_mon = month - 'A';
  tm.tm_mday = 1;
  return timegm(&tm);
}

std::string xml_safe_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned c = *p;
    if (c < 0x80) {
      if (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') out += static_cast<char>(c);
      ++p;
      continue;
    }
    // A well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF).
    int len = 0;
    char32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len > 0 && end - p >= len;
    for (int i = 1; ok && i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
               (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
      ok = false;
    if (!ok) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++p;
      continue;
    }
    if (cp != 0xFFFE && cp != 0xFFFF) out.append(reinterpret_cast<const char*>(p), len);
    p += len;
  }
  return out;
}

std::string name_uuid_urn(std::string_view name) {
  // RFC 4122 appendix C: the URL namespace, 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
  static constexpr unsigned char url_namespace[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad,
                                                      0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0,
                                                      0x4f, 0xd4, 0x30, 0xc8};
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  auto* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  EVP_DigestUpdate(ctx, url_namespace, sizeof url_namespace);
  EVP_DigestUpdate(ctx, name.data(), name.size());
  EVP_DigestFinal_ex(ctx, digest.data(), &size);
  EVP_MD_CTX_free(ctx);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0F) | 0x50);  // version 5
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3F) | 0x80);  // RFC 4122 variant
  std::string out = "urn:uuid:";
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    std::snprintf(hex, sizeof hex, "%02x", digest[i]);
    out += hex;
  }
  return out;
}

std::string atom_feed(const version_list& list, const feed_options& options) {
  const auto base = options.base_url;
  const auto pair_path = "/firmware/" + list.model + "/" + list.region;

  // Every entry needs a date: the build month where the PDA reads as one, else the oldest
  // such date in the list (else the epoch), so that a date never changes between requests.
  std::vector<std::time_t> dates;
  std::optional<std::time_t> oldest;
  for (const auto& v : list.versions) {
    const auto d = build_month(v.version);
    dates.push_back(d.value_or(-1));
    if (d && (!oldest || *d < *oldest)) oldest = d;
  }
  std::time_t feed_updated = oldest.value_or(0);
  for (auto& d : dates) {
    if (d < 0) d = oldest.value_or(0);
    feed_updated = std::max(feed_updated, d);
  }

  document doc;
  auto* decl = doc.allocate_node(rapidxml::node_declaration);
  decl->append_attribute(doc.allocate_attribute("version", "1.0"));
  decl->append_attribute(doc.allocate_attribute("encoding", "utf-8"));
  doc.append_node(decl);
  auto* feed = element(doc, &doc, "feed");
  attribute(doc, feed, "xmlns", "http://www.w3.org/2005/Atom");
  element(doc, feed, "id", name_uuid_urn("fusproxy:" + pair_path));
  element(doc, feed, "title", "Firmware for " + list.model + " (" + list.region + ")");
  element(doc, feed, "subtitle",
          "Samsung firmware builds of " + list.model + " in region " + list.region +
              ", newest first, as served by this fusproxy mirror");
  element(doc, feed, "updated", iso8601_utc(feed_updated));
  auto* author = element(doc, feed, "author");
  element(doc, author, "name", "fusproxy");
  auto* generator = element(doc, feed, "generator", "fusproxy");
  attribute(doc, generator, "version", options.generator_version);
  link(doc, feed, "self", "application/atom+xml", base + pair_path + "/feed.atom");
  link(doc, feed, "alternate", "application/json", base + pair_path);

  for (std::size_t i = 0; i < list.versions.size(); ++i) {
    const auto& v = list.versions[i];
    const auto pda = pda_of(v.version);
    const bool latest = v.version == list.latest;
    auto* entry = element(doc, feed, "entry");
    std::string title = list.model + " " + list.region + " " + pda;
    if (!v.os.empty()) title += " (" + v.os + ")";
    if (v.beta) title += " beta";
    element(doc, entry, "title", title);
    element(doc, entry, "id",
            name_uuid_urn("fusproxy:" + firmware_path(list.model, list.region, v.version)));
    element(doc, entry, "updated", iso8601_utc(dates[i]));
    link(doc, entry, "alternate", "application/json",
         base + firmware_path(list.model, list.region, v.version));
    link(doc, entry, "enclosure", "application/zip",
         base + firmware_path(list.model, list.region, v.version, "download"));
    if (latest) {
      auto* c = element(doc, entry, "category");
      attribute(doc, c, "term", "latest");
    }
    if (v.beta) {
      auto* c = element(doc, entry, "category");
      attribute(doc, c, "term", "beta");
    }
    std::string summary = "Version " + v.version;
    if (!v.os.empty()) summary += ", OS " + v.os;
    if (latest) summary += "; the newest stable build";
    if (v.beta) summary += "; a beta build";
    auto* s = element(doc, entry, "summary", summary);
    attribute(doc, s, "type", "text");
  }

  std::string out;
  rapidxml::print(std::back_inserter(out), doc, 0);
  return out;
}

}  // namespace fusproxy::server
