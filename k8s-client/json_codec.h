#pragma once

// JSON <-> typed objects (types.h), on strings: no JSON headers here. decodeObject() keeps the
// input text in object.raw; encodeObject() writes the modelled fields over a copy of raw, so
// fields this client does not model are preserved on update.

#include <string>
#include <string_view>

#include <absl/status/statusor.h>

#include "k8s-client/types.h"

namespace carina::k8s {

/** InvalidArgument (with the field path) when @p json is not a JSON object of the right shape. */
absl::Status decodeObject(std::string_view json, Node& out);
absl::Status decodeObject(std::string_view json, PersistentVolumeClaim& out);
absl::Status decodeObject(std::string_view json, PersistentVolume& out);
absl::Status decodeObject(std::string_view json, StorageClass& out);
absl::Status decodeObject(std::string_view json, Pod& out);
absl::Status decodeObject(std::string_view json, Event& out);
absl::Status decodeObject(std::string_view json, NodeStorageResource& out);
absl::Status decodeObject(std::string_view json, LogicVolume& out);

/** The object as JSON (apiVersion and kind set), modelled fields merged over object.raw. */
std::string encodeObject(const Node& object);
std::string encodeObject(const PersistentVolumeClaim& object);
std::string encodeObject(const PersistentVolume& object);
std::string encodeObject(const StorageClass& object);
std::string encodeObject(const Pod& object);
std::string encodeObject(const Event& object);
std::string encodeObject(const NodeStorageResource& object);
std::string encodeObject(const LogicVolume& object);

/** A JSON merge patch (RFC 7386) that sets metadata.ownerReferences to exactly @p refs. */
std::string ownerReferencesPatch(const std::vector<OwnerReference>& refs);

template <class T>
absl::StatusOr<T> decodeAs(std::string_view json) {
  T out;
  if (absl::Status s = decodeObject(json, out); !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace carina::k8s
