#pragma once

// A small OpenAPI v3 structural-schema validator for CRD tests, doing what kube-apiserver does
// with a CustomResourceDefinition's openAPIV3Schema where carina depends on it:
//
// - parseSchema(): reads the schema (YAML/JSON text) and checks it is STRUCTURAL as
//   apiextensions.k8s.io/v1 requires: every node has a type (unless it preserves unknown
//   fields), properties and additionalProperties are not both set, and only the keywords below
//   appear (others are an error here, so that the test never silently ignores a constraint).
//   Keywords: type, format, description, properties, required, items, enum, minimum, maximum,
//   minLength, maxLength, minItems, maxItems, nullable, additionalProperties (schema or bool),
//   x-kubernetes-preserve-unknown-fields.
// - validate(): the errors kube-apiserver would report for an object (JSON text), with their
//   field paths: wrong types, missing required fields, enum, bounds, integers (format int64:
//   fits in int64) -- and every field the schema does not define where unknown fields are not
//   preserved (kube-apiserver would silently PRUNE them, i.e. lose data: for carina that is an
//   error). At the root, apiVersion, kind and metadata are always allowed and metadata is not
//   pruned (ObjectMeta has its own validation).
// - findPath(): the schema node a printer column's simple JSONPath (".spec.pvc.name") names.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::test {

struct Schema {
  std::string type;  // object, array, string, integer, number, boolean ("" only when preserving)
  std::string format;
  std::map<std::string, Schema> properties;
  std::vector<std::string> required;
  std::shared_ptr<Schema> items;
  std::shared_ptr<Schema> additional_properties;  // schema for map values
  bool additional_properties_allowed = false;     // additionalProperties: true
  bool preserve_unknown_fields = false;
  bool nullable = false;
  std::vector<std::string> enum_values;  // canonical JSON text of each allowed value
  std::optional<double> minimum;
  std::optional<double> maximum;
  std::optional<uint64_t> min_length;
  std::optional<uint64_t> max_length;
  std::optional<uint64_t> min_items;
  std::optional<uint64_t> max_items;
};

/** Parses and checks a structural schema. InvalidArgument with the schema path on error. */
absl::StatusOr<Schema> parseSchema(std::string_view yaml_or_json);

/** Errors ("spec.sizeBytes: expected integer, got string", ...); empty when valid. */
std::vector<std::string> validate(const Schema& root, std::string_view json);

/** The schema node at a simple JSONPath (".a.b.c", no array notation); nullptr when the schema
 *  does not define it. */
const Schema* findPath(const Schema& root, std::string_view json_path);

}  // namespace carina::test
