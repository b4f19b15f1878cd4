#include "protocol/messages.hpp"

#include <algorithm>
#include <charconv>

#include "crypto/logic_check.hpp"
#include "protocol/versions.hpp"

namespace fusproxy::protocol {
namespace {

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  });
  return out;
}

std::string_view trimmed(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// Multi-CSC regions are only answered when the request names a country and carrier too.
void append_multi_csc_extras(std::vector<xml_field>& put, std::string_view region) {
  if (region == "EUX") {
    put.insert(put.end(), {{"DEVICE_AID_CODE", "EUX"},
                           {"DEVICE_CC_CODE", "DE"},
                           {"MCC_NUM", "262"},
                           {"MNC_NUM", "01"}});
  } else if (region == "EUY") {
    put.insert(put.end(), {{"DEVICE_AID_CODE", "EUY"},
                           {"DEVICE_CC_CODE", "RS"},
                           {"MCC_NUM", "220"},
                           {"MNC_NUM", "01"}});
  }
}

// Put first (where FUS puts answers), then Results; the first non-empty value.
std::string_view answer_value(const fus_message& msg, std::string_view name) {
  if (auto v = msg.put_value(name); !v.empty()) return v;
  return msg.result_value(name);
}

template <class T>
result<T> unsigned_decimal(std::string_view text) {
  if (text.empty()) return make_error_code(errc::missing_field);
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // from_chars accepts no sign for unsigned types, but make "digits only" explicit.
  if (ec != std::errc() || end != text.data() + text.size() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return make_error_code(errc::bad_field);
  }
  return value;
}

// BINARY_CRC as upstream writes it: unsigned decimal, or (some servers) the same 32 bits as a
// signed decimal, negative from 2^31 on.
result<std::uint32_t> crc32_decimal(std::string_view text) {
  if (!text.empty() && text.front() == '-') {
    auto magnitude = unsigned_decimal<std::uint64_t>(text.substr(1));
    if (!magnitude || *magnitude == 0 || *magnitude > 0x80000000u)
      return make_error_code(errc::bad_field);
    return static_cast<std::uint32_t>(0x100000000ull - *magnitude);
  }
  auto value = unsigned_decimal<std::uint32_t>(text);
  if (!value && value.error() == make_error_code(errc::missing_field))
    return make_error_code(errc::bad_field);
  return value;
}

// The download URL is "?file=" + MODEL_PATH + BINARY_NAME, sent raw: anything beyond these
// characters could break the request line or escape the cache directory.
bool is_safe_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}
bool is_safe_binary_name(std::string_view name) {
  return name.front() != '.' && std::all_of(name.begin(), name.end(), is_safe_name_char);
}
bool is_safe_model_path(std::string_view path) {
  return path.find("..") == std::string_view::npos &&
         std::all_of(path.begin(), path.end(),
                     [](char c) { return c == '/' || is_safe_name_char(c); });
}

}  // namespace

std::string_view to_string(dialect d) {
  return d == dialect::smart2 ? "smart2" : "legacy";
}

const endpoints& endpoints_for(dialect d) {
  static constexpr endpoints smart2{
      "NF_SmartDownloadGenerateNonce.do", "NF_SmartDownloadBinaryInform.do",
      "NF_SmartDownloadBinaryInitForMass.do", "NF_SmartDownloadBinaryForMass.do", "SMART 2.0"};
  static constexpr endpoints legacy{"NF_DownloadGenerateNonce.do", "NF_DownloadBinaryInform.do",
                                    "NF_DownloadBinaryInitForMass.do",
                                    "NF_DownloadBinaryForMass.do", "Kies2.0_FUS"};
  return d == dialect::smart2 ? smart2 : legacy;
}

std::string authorization_header(dialect d, std::string_view nonce, std::string_view signature) {
  std::string out = "FUS nonce=\"";
  out += nonce;
  out += "\", signature=\"";
  out += signature;
  out += "\", nc=\"\", type=\"\", realm=\"\"";
  if (d == dialect::legacy) out += ", newauth=\"1\"";
  return out;
}

std::string smart_history_authorization(std::string_view client_nonce, std::string_view signature) {
  std::string out = "FUS nonce=\"";
  out += client_nonce;
  out += "\", signature=\"";
  out += signature;
  out += "\", nc=\"00000001\", type=\"auth\", realm=\"interface\"";
  return out;
}

result<std::string> build_binary_inform(dialect d, const inform_request& req,
                                        std::string_view nonce) {
  auto version = normalize_version(req.version);
  if (!version) return version.error();
  auto logic = crypto::logic_check(*version, nonce);
  if (!logic) return make_error_code(errc::bad_version);
  const std::string model = upper(trimmed(req.model));
  const std::string region = upper(trimmed(req.region));

  fus_message_spec spec;
  if (d == dialect::legacy) {
    spec.put = {{"ACCESS_MODE", "2"},
                {"BINARY_NATURE", "1"},
                {"CLIENT_PRODUCT", "Smart Switch"},
                {"CLIENT_VERSION", "4.3.23123_1"},
                {"DEVICE_FW_VERSION", *version},
                {"DEVICE_LOCAL_CODE", region},
                {"DEVICE_MODEL_NAME", model},
                {"DEVICE_IMEI_PUSH", std::string(trimmed(req.imei))},
                {"DEVICE_PLATFORM", "Android"},
                {"UPGRADE_VARIABLE", "0"},
                {"OBEX_SUPPORT", "0"},
                {"LOGIC_CHECK", *logic}};
    append_multi_csc_extras(spec.put, region);
  } else {
    spec.with_session_header = true;
    spec.put = {{"CmdID", "1"},
                {"ACCESS_MODE", "1"},
                {"BINARY_NATURE", "1"},
                {"REQUEST_TYPE", "2"},
                {"LOGIC_CHECK", *logic},
                {"BINARY_SW_VERSION", *version},
                {"BINARY_LOCAL_CODE", region},
                {"BINARY_MODEL_NAME", model},
                {"DEVICE_SN_NUMBER", ""}};
    spec.get = {{"CmdID", "2"}, {"BINARY_SW_VERSION", ""}};
  }
  return build_fus_message(spec);
}

bool is_success_status(std::string_view status) {
  return status == "200" || status == "S00";
}

result<inform_answer> parse_binary_inform(std::string_view xml) {
  auto msg = parse_fus_message(xml);
  if (!msg) return msg.error();
  if (!msg->has_status) return make_error_code(errc::missing_status);

  inform_answer answer;
  answer.status = msg->status;
  if (!is_success_status(answer.status)) return answer;

  answer.binary_name = answer_value(*msg, "BINARY_NAME");
  if (answer.binary_name.empty()) return make_error_code(errc::missing_field);
  if (!is_safe_binary_name(answer.binary_name)) return make_error_code(errc::bad_field);
  answer.model_path = answer_value(*msg, "MODEL_PATH");
  if (!is_safe_model_path(answer.model_path)) return make_error_code(errc::bad_field);

  auto size = unsigned_decimal<std::uint64_t>(answer_value(*msg, "BINARY_BYTE_SIZE"));
  if (!size) return size.error();
  answer.byte_size = *size;
  if (const auto crc_text = trimmed(answer_value(*msg, "BINARY_CRC")); !crc_text.empty()) {
    auto crc = crc32_decimal(crc_text);
    if (!crc) return crc.error();
    answer.crc = *crc;
  }

  for (const auto& [section, name] :
       {std::pair{&msg->put, "BINARY_SW_VERSION"}, std::pair{&msg->results, "LATEST_FW_VERSION"},
        std::pair{&msg->results, "BINARY_SW_VERSION"}}) {
    const auto it = section->find(std::string_view(name));
    if (it != section->end() && !it->second.empty()) {
      answer.served_version = it->second;
      break;
    }
  }
  answer.logic_value = answer_value(*msg, "LOGIC_VALUE_FACTORY");
  if (answer.logic_value.empty()) answer.logic_value = answer_value(*msg, "LOGIC_VALUE_HOME");
  answer.model_type = answer_value(*msg, "DEVICE_MODEL_TYPE");
  answer.local_code = answer_value(*msg, "BINARY_LOCAL_CODE");
  if (answer.local_code.empty()) answer.local_code = answer_value(*msg, "DEVICE_LOCAL_CODE");
  answer.model_name = answer_value(*msg, "DEVICE_MODEL_NAME");
  answer.os_version = answer_value(*msg, "CURRENT_OS_VERSION");
  answer.last_modified = answer_value(*msg, "LAST_MODIFIED");
  answer.description = answer_value(*msg, "DESCRIPTION");
  answer.files.bl = answer_value(*msg, "DEVICE_BOOT_FILE");
  answer.files.ap = answer_value(*msg, "DEVICE_PDA_CODE1_FILE");
  answer.files.cp = answer_value(*msg, "DEVICE_PHONE_FONT_FILE");
  answer.files.csc = answer_value(*msg, "DEVICE_CSC_FILE");
  answer.files.home_csc = answer_value(*msg, "DEVICE_CSC_HOME_FILE");
  return answer;
}

std::string build_init_for_mass(dialect d, const init_request& req, std::string_view nonce) {
  const std::string input = d == dialect::legacy ? crypto::legacy_init_logic_input(req.binary_name)
                                                 : crypto::smart2_init_logic_input(req.binary_name);
  // A name too short for LOGIC_CHECK cannot come from a real answer; the server then
  // refuses the empty value, which the caller sees as a failed authorisation.
  auto logic = crypto::logic_check(input, nonce);
  std::string logic_value = logic ? *logic : std::string();

  fus_message_spec spec;
  if (d == dialect::legacy) {
    spec.put = {{"BINARY_FILE_NAME", req.binary_name}, {"LOGIC_CHECK", logic_value}};
  } else {
    spec.with_session_header = true;
    spec.put = {{"BINARY_NAME", req.binary_name},
                {"BINARY_SW_VERSION", req.served_version},
                {"DEVICE_LOCAL_CODE", req.local_code},
                {"DEVICE_MODEL_TYPE", req.model_type},
                {"LOGIC_CHECK", logic_value}};
  }
  return build_fus_message(spec);
}

result<std::string> parse_status(std::string_view xml) {
  auto msg = parse_fus_message(xml);
  if (!msg) return msg.error();
  if (!msg->has_status) return make_error_code(errc::missing_status);
  return std::move(msg->status);
}

}  // namespace fusproxy::protocol
