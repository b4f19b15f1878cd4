#pragma once
// Internal to protocol/ (not part of the module's interface): the one place that runs
// RapidXML, behind the checks that make it safe on hostile input, and small helpers to walk
// the resulting tree tolerantly.
#include <memory>
#include <string>
#include <string_view>

#include <rapidxml/rapidxml.hpp>

#include "protocol/ascii.hpp"
#include "protocol/error.hpp"

namespace fusproxy::protocol::detail {

using xml_node = rapidxml::xml_node<char>;

// Nesting deeper than this is refused before RapidXML (which recurses per level) sees it.
inline constexpr std::size_t max_xml_depth = 64;
// More elements than this are refused before parsing: RapidXML allocates a node for each,
// so an 8 MiB answer of "<a/>" would otherwise cost hundreds of MiB.
inline constexpr std::size_t max_xml_elements = 200'000;

// An owning parsed document: the private copy RapidXML parsed in place, and its tree.
class xml_document {
 public:
  // Never throws: too_large, firewall_page, malformed_xml; root() is the first element.
  static result<xml_document> parse(std::string_view xml);

  const xml_node& root() const { return *root_; }

 private:
  std::unique_ptr<std::string> buffer_;
  std::unique_ptr<rapidxml::xml_document<char>> document_;
  const xml_node* root_ = nullptr;
};

// Case-insensitive ASCII name comparison (FUS mixes <Data> and <DATA>).
bool name_is(const xml_node& node, std::string_view name);
std::string_view name_of(const xml_node& node);
// The first element child called `name` (case-insensitive), or nullptr.
const xml_node* child(const xml_node& node, std::string_view name);
// The node's own text (data and CDATA children), surrounding whitespace trimmed.
std::string text_of(const xml_node& node);
// A FUS field's value: the text of its <Data>/<DATA> child, else its own text.
std::string field_value(const xml_node& node);
// An attribute's value ("" when absent).
std::string_view attribute(const xml_node& node, std::string_view name);

// For each element child: f(const xml_node&).
template <class F>
void for_each_element(const xml_node& node, F&& f) {
  for (const xml_node* c = node.first_node(); c; c = c->next_sibling()) {
    if (c->type() == rapidxml::node_element) f(*c);
  }
}

using ascii::iequals;
using ascii::trim;

}  // namespace fusproxy::protocol::detail
