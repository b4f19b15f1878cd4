#include "protocol/xml.hpp"

#include "protocol/detail/xml_document.hpp"

namespace fusproxy::protocol {
namespace {

using detail::xml_node;

std::string_view lookup(const field_map& map, std::string_view name) {
  const auto it = map.find(name);
  return it == map.end() ? std::string_view() : std::string_view(it->second);
}

// Simple fields of a section; the first occurrence of a name wins.
void read_fields(const xml_node& section, field_map& into) {
  detail::for_each_element(section, [&](const xml_node& field) {
    into.emplace(std::string(detail::name_of(field)), detail::field_value(field));
  });
}

void append_field(std::string& out, const xml_field& field) {
  out += '<';
  out += field.name;
  out += '>';
  // CmdID is a plain counter in every FUS message, never wrapped in <Data>.
  if (field.name == "CmdID") {
    out += xml_escape(field.value);
  } else {
    out += "<Data>";
    out += xml_escape(field.value);
    out += "</Data>";
  }
  out += "</";
  out += field.name;
  out += '>';
}

}  // namespace

std::string_view fus_message::put_value(std::string_view name) const {
  return lookup(put, name);
}

std::string_view fus_message::result_value(std::string_view name) const {
  return lookup(results, name);
}

result<fus_message> parse_fus_message(std::string_view xml) {
  auto doc = detail::xml_document::parse(xml);
  if (!doc) return doc.error();
  const xml_node& root = doc->root();
  if (!detail::name_is(root, "FUSMsg")) return make_error_code(errc::not_fus_message);

  fus_message msg;
  if (const xml_node* header = detail::child(root, "FUSHdr")) read_fields(*header, msg.header);
  const xml_node* body = detail::child(root, "FUSBody");
  if (!body) return msg;
  if (const xml_node* results = detail::child(*body, "Results")) {
    read_fields(*results, msg.results);
    if (const xml_node* status = detail::child(*results, "Status")) {
      msg.has_status = true;
      msg.status = detail::field_value(*status);
    }
  }
  if (const xml_node* put = detail::child(*body, "Put")) {
    detail::for_each_element(*put, [&](const xml_node& field) {
      if (detail::name_is(field, "BINARY_INFO")) {
        read_fields(field, msg.binary_info.emplace_back());
      } else {
        msg.put.emplace(std::string(detail::name_of(field)), detail::field_value(field));
      }
    });
  }
  if (const xml_node* get = detail::child(*body, "Get")) read_fields(*get, msg.get);
  return msg;
}

std::string build_fus_message(const fus_message_spec& spec) {
  std::string out = "<FUSMsg><FUSHdr><ProtoVer>";
  out += xml_escape(spec.proto_ver);
  out += "</ProtoVer>";
  if (spec.with_session_header) out += "<SessionID>0</SessionID><MsgID>1</MsgID>";
  out += "</FUSHdr><FUSBody><Put>";
  for (const auto& field : spec.put) append_field(out, field);
  out += "</Put>";
  if (!spec.get.empty()) {
    out += "<Get>";
    for (const auto& field : spec.get) append_field(out, field);
    out += "</Get>";
  }
  out += "</FUSBody></FUSMsg>";
  return out;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace fusproxy::protocol
