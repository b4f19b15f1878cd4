#pragma once
// The JSON documents of the firmware routes (api.md field names), from plain data.
#include <ctime>
#include <string>
#include <vector>

#include "firmware/model/firmware_types.hpp"
#include "protocol/http_date.hpp"  // iso8601_utc

namespace fusproxy::server {

using http_date::iso8601_utc;

// {"model","region","latest","versions":[{"version","os","beta"}]}
std::string versions_json(const version_list& list);
// Every metadata field of api.md, version_id and download_url derived here.
std::string metadata_json(const firmware_metadata& m);
// [{"name","size","offset","method"}]
std::string files_json(const std::vector<zip_member>& members);
// [{"name","size","mtime","mode","offset","decoded_size","type"}] (decoded_size null when
// unknown or not an .lz4 entry)
std::string entries_json(const std::vector<tar_entry_info>& entries);

}  // namespace fusproxy::server
