#pragma once

// Private to k8s-client (and the test server): the Boost.JSON side of json_codec.h.

#include <string>
#include <string_view>

#include <absl/status/statusor.h>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "k8s-client/types.h"

namespace carina::k8s::internal {

/** Parses @p text; InvalidArgument with the parser's message on error. */
absl::StatusOr<boost::json::value> parseJson(std::string_view text);
std::string serialize(const boost::json::value& v);

/** Decodes the modelled fields (raw is left untouched). */
absl::Status decodeValue(const boost::json::value& v, Node& out);
absl::Status decodeValue(const boost::json::value& v, PersistentVolumeClaim& out);
absl::Status decodeValue(const boost::json::value& v, PersistentVolume& out);
absl::Status decodeValue(const boost::json::value& v, StorageClass& out);
absl::Status decodeValue(const boost::json::value& v, Pod& out);
absl::Status decodeValue(const boost::json::value& v, Event& out);
absl::Status decodeValue(const boost::json::value& v, NodeStorageResource& out);
absl::Status decodeValue(const boost::json::value& v, LogicVolume& out);

/** RFC 7386 JSON merge patch: @p patch applied to @p target in place. */
void applyMergePatch(boost::json::value& target, const boost::json::value& patch);

/** metadata.resourceVersion of an object ("" when absent). */
std::string resourceVersionOf(const boost::json::value& v);

}  // namespace carina::k8s::internal
