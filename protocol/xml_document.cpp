#include "protocol/detail/xml_document.hpp"

#include <algorithm>
#include <new>

namespace fusproxy::protocol::detail {
namespace {

using tables = rapidxml::internal::lookup_tables<0>;

unsigned char byte(char c) {
  return static_cast<unsigned char>(c);
}
// RapidXML's own character classes, so the pre-scan below reads tags exactly as it does.
bool is_space(char c) {
  return tables::lookup_whitespace[byte(c)] != 0;
}
bool is_node_name(char c) {
  return tables::lookup_node_name[byte(c)] != 0;
}
bool is_attribute_name(char c) {
  return tables::lookup_attribute_name[byte(c)] != 0;
}

using ascii::istarts_with;

// Whether "<html" (any case) occurs: a memchr-speed hop from '<' to '<'.
bool contains_html_tag(std::string_view text) {
  for (auto at = text.find('<'); at != std::string_view::npos; at = text.find('<', at + 1)) {
    if (istarts_with(text.substr(at), "<html")) return true;
  }
  return false;
}

// A web firewall or error page: "<!DOCTYPE html" or "<html" at the start (after whitespace
// and a UTF-8 BOM), or an <html> element anywhere.
bool looks_like_html(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  text = trim(text);
  return istarts_with(text, "<!doctype html") || contains_html_tag(text);
}

enum class shape { ok, too_deep, too_many_elements };

// Measures element nesting and count by walking the markup the way RapidXML's recursive
// parser does (same character classes, same skipping of comments, CDATA, PIs, DOCTYPE and
// attribute values). Where RapidXML would throw, the walk stops: the parse fails there too,
// so it never recurses deeper than what was measured up to that point.
shape measure(std::string_view s) {
  const std::size_t n = s.size();
  std::size_t depth = 0, elements = 0, i = 0;
  auto skip_space = [&](std::size_t j) {
    while (j < n && is_space(s[j])) ++j;
    return j;
  };
  auto at = [&](std::size_t j) { return j < n ? s[j] : '\0'; };
  auto starts = [&](std::size_t j, std::string_view p) { return s.substr(j, p.size()) == p; };
  constexpr auto npos = std::string_view::npos;

  while (i < n) {
    if (s[i] != '<') {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    if (at(j) == '/') {  // closing tag: name, whitespace, '>'
      if (depth == 0) return shape::ok;
      j += 1;
      while (j < n && is_node_name(s[j])) ++j;
      j = skip_space(j);
      if (at(j) != '>') return shape::ok;
      --depth;
      i = j + 1;
      continue;
    }
    if (at(j) == '?') {  // XML declaration or processing instruction
      const auto end = s.find("?>", j + 1);
      if (end == npos) return shape::ok;
      i = end + 2;
      continue;
    }
    if (at(j) == '!') {
      std::size_t end = npos, skip = 1;
      if (starts(j, "!--")) {
        end = s.find("-->", j + 3), skip = 3;
      } else if (starts(j, "![CDATA[")) {
        end = s.find("]]>", j + 8), skip = 3;
      } else if (starts(j, "!DOCTYPE") && is_space(at(j + 8))) {
        std::size_t k = j + 9;
        while (k < n && s[k] != '>') {
          if (s[k] == '[') {
            int brackets = 1;
            ++k;
            while (brackets > 0 && k < n) {
              if (s[k] == '[') ++brackets;
              if (s[k] == ']') --brackets;
              ++k;
            }
          } else {
            ++k;
          }
        }
        end = k < n ? k : npos;
      } else {
        end = s.find('>', j + 1);
      }
      if (end == npos) return shape::ok;
      i = end + skip;
      continue;
    }
    // An element: name, attributes (name = 'value' or "value"), then '>' or "/>".
    const std::size_t name = j;
    while (j < n && is_node_name(s[j])) ++j;
    if (j == name) return shape::ok;
    if (++elements > max_xml_elements) return shape::too_many_elements;
    j = skip_space(j);
    while (j < n && is_attribute_name(s[j])) {
      while (j < n && is_attribute_name(s[j])) ++j;
      j = skip_space(j);
      if (at(j) != '=') return shape::ok;
      j = skip_space(j + 1);
      const char quote = at(j);
      if (quote != '"' && quote != '\'') return shape::ok;
      const auto close = s.find(quote, j + 1);
      if (close == npos) return shape::ok;
      j = skip_space(close + 1);
    }
    if (at(j) == '>') {
      if (++depth > max_xml_depth) return shape::too_deep;
      i = j + 1;
    } else if (at(j) == '/' && at(j + 1) == '>') {
      i = j + 2;
    } else {
      return shape::ok;
    }
  }
  return shape::ok;
}

}  // namespace

result<xml_document> xml_document::parse(std::string_view xml) {
  if (xml.size() > max_answer_size) return make_error_code(errc::too_large);
  if (looks_like_html(xml)) return make_error_code(errc::firewall_page);
  // RapidXML stops at a NUL; XML cannot contain one anyway.
  if (xml.find('\0') != std::string_view::npos) return make_error_code(errc::malformed_xml);
  switch (measure(xml)) {
    case shape::ok:
      break;
    case shape::too_deep:
      return make_error_code(errc::malformed_xml);
    case shape::too_many_elements:
      return make_error_code(errc::too_large);
  }

  xml_document doc;
  try {
    // RapidXML parses in place: it gets a private, NUL-terminated copy. The document (with
    // its 64 KiB static pool) lives on the heap, not on a coroutine's or caller's stack.
    doc.buffer_ = std::make_unique<std::string>(xml);
    doc.document_ = std::make_unique<rapidxml::xml_document<char>>();
    doc.document_->parse<rapidxml::parse_validate_closing_tags>(doc.buffer_->data());
  } catch (const rapidxml::parse_error&) {
    return make_error_code(errc::malformed_xml);
  } catch (const std::bad_alloc&) {
    return make_error_code(errc::too_large);
  } catch (...) {
    return make_error_code(errc::malformed_xml);
  }
  for (const xml_node* n = doc.document_->first_node(); n; n = n->next_sibling()) {
    if (n->type() == rapidxml::node_element) {
      doc.root_ = n;
      break;
    }
  }
  // Nothing but whitespace, a declaration or comments: an empty or truncated answer.
  if (!doc.root_) return make_error_code(errc::malformed_xml);
  return doc;
}

std::string_view name_of(const xml_node& node) {
  return {node.name(), node.name_size()};
}

bool name_is(const xml_node& node, std::string_view name) {
  return iequals(name_of(node), name);
}

const xml_node* child(const xml_node& node, std::string_view name) {
  for (const xml_node* c = node.first_node(); c; c = c->next_sibling()) {
    if (c->type() == rapidxml::node_element && name_is(*c, name)) return c;
  }
  return nullptr;
}

std::string text_of(const xml_node& node) {
  std::string text;
  for (const xml_node* c = node.first_node(); c; c = c->next_sibling()) {
    if (c->type() == rapidxml::node_data || c->type() == rapidxml::node_cdata) {
      text.append(c->value(), c->value_size());
    }
  }
  return std::string(trim(text));
}

std::string field_value(const xml_node& node) {
  if (const xml_node* data = child(node, "Data")) return text_of(*data);
  return text_of(node);
}

std::string_view attribute(const xml_node& node, std::string_view name) {
  for (const auto* a = node.first_attribute(); a; a = a->next_attribute()) {
    if (iequals({a->name(), a->name_size()}, name)) return {a->value(), a->value_size()};
  }
  return {};
}

}  // namespace fusproxy::protocol::detail
