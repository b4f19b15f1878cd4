#include "http/json_views.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/throw_exception.hpp>
#include <cstdio>
#include <stdexcept>

#include "http/http_range.hpp"
#include "http/routes.hpp"

namespace fusproxy::server {

void throw_exception_from_error(const service_error& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.message), loc);
}

std::string versions_json(const version_list& list) {
  boost::json::array versions;
  for (const auto& v : list.versions)
    versions.push_back(boost::json::object{{"version", v.version}, {"os", v.os}, {"beta", v.beta}});
  boost::json::object o{{"model", list.model},
                        {"region", list.region},
                        {"latest", list.latest},
                        {"versions", std::move(versions)}};
  return boost::json::serialize(o);
}

std::string metadata_json(const firmware_metadata& m) {
  std::string version_id = m.version;
  for (auto& c : version_id)
    if (c == '/') c = '_';
  boost::json::object o{
      {"model", m.model},
      {"region", m.region},
      {"version", m.version},
      {"version_id", version_id},
      {"os_version", m.os_version},
      {"filename", m.filename},
      {"plain_filename", m.plain_filename},
      {"encryption", m.encryption},
      {"size", m.size},
      {"plain_size", m.plain_size},
      {"crc32", m.crc32 ? boost::json::value(static_cast<std::uint64_t>(*m.crc32))
                        : boost::json::value(nullptr)},
      // How a fetch of this build is verified: the CRC-32 upstream gave, else the exact size
      // and the final block's padding (and Content-MD5 when upstream sends one).
      {"integrity", m.crc32 ? "crc32" : "size+pad"},
      {"last_modified", iso8601_utc(m.last_modified)},
      {"changelog_url", m.changelog_url},
      {"files", boost::json::object{{"bl", m.files.bl},
                                    {"ap", m.files.ap},
                                    {"cp", m.files.cp},
                                    {"csc", m.files.csc},
                                    {"home_csc", m.files.home_csc}}},
      {"download_url", firmware_path(m.model, m.region, m.version, "download")},
  };
  return boost::json::serialize(o);
}

std::string files_json(const std::vector<zip_member>& members) {
  boost::json::array a;
  for (const auto& m : members)
    a.push_back(boost::json::object{
        {"name", m.name}, {"size", m.size}, {"offset", m.offset}, {"method", m.method}});
  return boost::json::serialize(a);
}

std::string entries_json(const std::vector<tar_entry_info>& entries) {
  boost::json::array a;
  for (const auto& e : entries) {
    boost::json::object o{{"name", e.name},     {"size", e.size},
                          {"mtime", e.mtime},   {"mode", e.mode},
                          {"offset", e.offset}, {"type", std::string(1, e.type ? e.type : '0')}};
    if (e.decoded_size)
      o["decoded_size"] = *e.decoded_size;
    else
      o["decoded_size"] = nullptr;
    a.push_back(std::move(o));
  }
  return boost::json::serialize(a);
}

}  // namespace fusproxy::server
