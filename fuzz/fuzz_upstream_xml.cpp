// libFuzzer target: the upstream XML parsers (everything Samsung's servers, or anything
// pretending to be them, can send): FUS messages, BinaryInform answers, SmartHistory and
// FOTA version.xml, and the version normalisation they feed. Typed errors only.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/messages.hpp"
#include "protocol/versions.hpp"
#include "protocol/xml.hpp"

using namespace fusproxy::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  (void)parse_fus_message(xml);
  (void)parse_status(xml);
  if (auto inform = parse_binary_inform(xml)) (void)is_success_status(inform->status);
  auto history = parse_smart_history(xml);
  auto fota = parse_fota_versions(xml);
  (void)is_fota_access_denied(xml);
  if (history && fota) (void)newest_stable(merge_versions(*history, *fota));
  if (history)
    for (const auto& v : *history) (void)version_id(v.version);
  (void)normalize_version(xml.substr(0, 256));
  return 0;
}
