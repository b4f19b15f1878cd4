#include "http/atom_feed.hpp"
#include "http/handler.hpp"

#include <catch2/catch.hpp>
#include <rapidxml/rapidxml.hpp>
#include <string>
#include <vector>

using namespace fusproxy::server;

namespace {
version_list sample() {
  version_list l;
  l.model = "SM-A207F";
  l.region = "SER";
  l.latest = "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2";
  l.versions = {{"A207FXXU3ZZZ9/A207FOXM3ZZZ9/A207FXXU3ZZZ9/A207FXXU3ZZZ9", "Z(Android 99)", true},
                {l.latest, "R(Android 11)", false},
                {"A207FXXU2BUB3/A207FOXM2BUB3/A207FXXU2BUB3/A207FXXU2BUB3", "", false}};
  return l;
}

// Parses with RapidXML (throws on malformed XML) and returns the text of every <tag>.
std::vector<std::string> texts(std::string xml, const char* tag) {
  rapidxml::xml_document<> doc;
  doc.parse<0>(xml.data());
  std::vector<std::string> out;
  auto* feed = doc.first_node("feed");
  REQUIRE(feed);
  for (auto* e = feed->first_node("entry"); e; e = e->next_sibling("entry"))
    out.emplace_back(e->first_node(tag)->value(), e->first_node(tag)->value_size());
  return out;
}
}  // namespace

TEST_CASE("build_month reads the PDA's year and month letters") {
  CHECK(build_month("A207FXXU2CUI2/A/B/C") == 1630454400);  // 2021-09-01
  CHECK(build_month("G990BXXSDFYE1") == 1746057600);        // 2025-05-01
  CHECK(build_month("A207FXXU2CUZ2") == std::nullopt);      // Z is no month
  CHECK(build_month("AB") == std::nullopt);
}

TEST_CASE("atom feed: entries in order, stable ids, dates") {
  feed_options o;
  o.base_url = "http://mirror:8080";
  const auto xml = atom_feed(sample(), o);
  CHECK(xml.find("<feed xmlns=\"http://www.w3.org/2005/Atom\">") != std::string::npos);
  const auto titles = texts(xml, "title");
  REQUIRE(titles.size() == 3);
  CHECK(titles[0] == "SM-A207F SER A207FXXU3ZZZ9 (Z(Android 99)) beta");
  CHECK(titles[1] == "SM-A207F SER A207FXXU2CUI2 (R(Android 11))");
  const auto ids = texts(xml, "id");
  CHECK(ids == texts(atom_feed(sample(), {}), "id"));  // the host does not change them
  CHECK(ids[1].starts_with("urn:uuid:"));
  CHECK(ids[1].substr(9 + 14, 1) == "5");  // version 5
  const auto updated = texts(xml, "updated");
  CHECK(updated[1] == "2021-09-01T00:00:00Z");
  CHECK(updated[0] == "2021-02-01T00:00:00Z");  // no month in the PDA: the oldest date
  CHECK(xml.find("href=\"http://mirror:8080/firmware/SM-A207F/SER/A207FXXU2CUI2_A207FOXM2CUI2_"
                 "A207FXXU2CUI2_A207FXXU2CUI2/download\"") != std::string::npos);
  CHECK(xml.find("<category term=\"latest\"/>") != std::string::npos);
}

TEST_CASE("atom feed: hostile text is escaped and made valid XML 1.0") {
  auto l = sample();
  l.versions[1].os = "R<&>\"'\x01\x1f\xff\xc3(Android 11)\xe2\x82\xac";
  const auto xml = atom_feed(l, {});
  const auto titles = texts(xml, "title");  // parses
  CHECK(titles[1] ==
        "SM-A207F SER A207FXXU2CUI2 (R<&>\"'\xEF\xBF\xBD\xEF\xBF\xBD(Android 11)\xE2\x82\xAC)");
  CHECK(xml.find('\x01') == std::string::npos);
  CHECK(xml.find("R&lt;&amp;&gt;") != std::string::npos);
}

TEST_CASE("name_uuid_urn: RFC 4122 v5 in the URL namespace") {
  // Python: uuid.uuid5(uuid.NAMESPACE_URL, "http://example.com/")
  CHECK(name_uuid_urn("http://example.com/") == "urn:uuid:0a300ee9-f9e4-5697-a51a-efc7fafaba67");
}

TEST_CASE("feed_reply: absolute links for a plain Host, ETag, 304, Vary") {
  feed_request in;
  in.host = "mirror:8080";
  in.cache_control = "public, max-age=60";
  in.generator_version = "1.2.3";
  const auto r = feed_reply(sample(), in);
  CHECK(r.status == 200);
  CHECK(r.content_type == "application/atom+xml; charset=utf-8");
  CHECK(r.body.find("http://mirror:8080/firmware/SM-A207F/SER") != std::string::npos);
  std::string etag;
  for (const auto& [k, v] : r.headers)
    if (k == "ETag") etag = v;
  REQUIRE(etag.size() > 2);
  CHECK(r.headers ==
        header_fields{{"ETag", etag}, {"Cache-Control", "public, max-age=60"}, {"Vary", "Host"}});

  in.secure = true;
  CHECK(feed_reply(sample(), in).body.find("https://mirror:8080/") != std::string::npos);

  in.secure = false;
  in.if_none_match = etag;
  const auto again = feed_reply(sample(), in);
  CHECK(again.status == 304);
  CHECK(again.body.empty());

  in.host = "evil\"><x";  // not a plain host: links stay relative
  in.if_none_match = {};
  CHECK(feed_reply(sample(), in).body.find("evil") == std::string::npos);
}
