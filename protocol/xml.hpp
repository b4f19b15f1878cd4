#pragma once
// A tolerant, owning view of a FUSMsg document: every value of FUSBody/Results and
// FUSBody/Put (and Get) by element name, whether it sits in <Data>, <DATA> or as text, with
// surrounding whitespace trimmed. Shared by the client (answers) and the simulator (requests).
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.hpp"

namespace fusproxy::protocol {

using field_map = std::map<std::string, std::string, std::less<>>;

struct fus_message {
  std::string status;  // FUSBody/Results/Status ("" when present but empty)
  bool has_status = false;
  field_map results;                   // FUSBody/Results/*
  field_map put;                       // FUSBody/Put/* (single-valued)
  field_map get;                       // FUSBody/Get/*
  std::vector<field_map> binary_info;  // FUSBody/Put/BINARY_INFO entries (SmartHistory)
  field_map header;                    // FUSHdr/* (ProtoVer, SessionID, MsgID)

  // The value of a Put field, or "" when absent.
  std::string_view put_value(std::string_view name) const;
  std::string_view result_value(std::string_view name) const;
};

// Never throws: malformed_xml, firewall_page, not_fus_message, too_large. Element names are
// matched case-insensitively; map keys keep the document's spelling. Nesting deeper than 64
// levels is refused as malformed_xml, more than 200000 elements as too_large.
result<fus_message> parse_fus_message(std::string_view xml);

// Builds a FUSMsg with FUSHdr (ProtoVer and optional SessionID/MsgID) and FUSBody/Put
// (and Get) fields, each value in <Data>, XML-escaped. Order is preserved. A field named
// CmdID is written as direct text (<CmdID>1</CmdID>), as FUS clients and servers do.
struct xml_field {
  std::string name;
  std::string value;
};
struct fus_message_spec {
  std::string proto_ver = "1.0";
  bool with_session_header = false;  // <SessionID>0</SessionID><MsgID>1</MsgID>
  std::vector<xml_field> put;
  std::vector<xml_field> get;  // empty: no <Get>
};
std::string build_fus_message(const fus_message_spec& spec);

std::string xml_escape(std::string_view text);

}  // namespace fusproxy::protocol
