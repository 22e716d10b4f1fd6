// Journal rows as a mongodump folder, so mongorestore can take them back.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/journal/entry.h"

namespace mongoguard::journal {

struct ExportResult {
  bool ok = false;
  std::string error;
  std::size_t documents = 0;       // before-images written
  std::vector<std::string> files;  // every file written, .bson and .metadata.json
};

// Writes DIR/<db>/<collection>.bson (the before-images, concatenated, oldest
// first, one per _id: the oldest, as a restore would put back) and
// DIR/<db>/<collection>.metadata.json (mongodump's shape, without indexes) for
// each namespace among `rows`. Collection names are escaped in file names as
// mongodump escapes them. Files are created owner-only: they hold documents.
ExportResult export_dump(const std::vector<Row>& rows, const std::string& dir);

// mongodump's file-name form of a collection name (Go's url.PathEscape).
std::string escape_collection_name(std::string_view name);
// {"indexes":[],"collectionName":"<name>","type":"collection"}
std::string collection_metadata_json(std::string_view collection);

}  // namespace mongoguard::journal
