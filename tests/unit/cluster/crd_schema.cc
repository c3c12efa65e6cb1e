#include "tests/unit/cluster/crd_schema.h"

#include <cmath>
#include <exception>
#include <limits>
#include <set>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <yaml-cpp/yaml.h>

namespace carina::test {
namespace {

namespace json = boost::json;

const std::set<std::string>& knownKeywords() {
  static const std::set<std::string> k{"type",
                                       "format",
                                       "description",
                                       "properties",
                                       "required",
                                       "items",
                                       "enum",
                                       "minimum",
                                       "maximum",
                                       "minLength",
                                       "maxLength",
                                       "minItems",
                                       "maxItems",
                                       "nullable",
                                       "additionalProperties",
                                       "x-kubernetes-preserve-unknown-fields"};
  return k;
}

const std::set<std::string>& knownTypes() {
  static const std::set<std::string> t{"object", "array", "string", "integer", "number", "boolean"};
  return t;
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

/** YAML scalar as canonical JSON text (quoted scalars are strings; plain ones may be numbers or
 *  booleans, as YAML 1.2's core schema reads them). */
std::string canonicalYaml(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() != "!") {
    if (s == "true" || s == "false" || s == "null") {
      return s;
    }
    try {
      std::size_t pos = 0;
      long long v = std::stoll(s, &pos);  // NOLINT(runtime/int)
      if (pos == s.size()) {
        return std::to_string(v);
      }
    } catch (const std::exception&) {
    }
  }
  return json::serialize(json::value(json::string_view(s.data(), s.size())));
}

bool scalarBool(const YAML::Node& n, const std::string& path, std::vector<std::string>& errors) {
  if (!n.IsScalar() || (n.Scalar() != "true" && n.Scalar() != "false")) {
    errors.push_back(path + ": expected a boolean");
    return false;
  }
  return n.Scalar() == "true";
}

template <class T>
std::optional<T> scalarNumber(const YAML::Node& n, const std::string& path,
                              std::vector<std::string>& errors) {
  try {
    return n.as<T>();
  } catch (const std::exception&) {
    errors.push_back(path + ": expected a number");
    return std::nullopt;
  }
}

Schema parseNode(const YAML::Node& n, const std::string& path, std::vector<std::string>& errors) {
  Schema s;
  if (!n.IsMap()) {
    errors.push_back(path + ": schema is not a map");
    return s;
  }
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    std::string at = join(path, key);
    if (knownKeywords().count(key) == 0) {
      errors.push_back(at + ": keyword not supported by this validator");
    } else if (key == "type") {
      s.type = v.as<std::string>();
      if (knownTypes().count(s.type) == 0) {
        errors.push_back(at + ": unknown type " + s.type);
      }
    } else if (key == "format") {
      s.format = v.as<std::string>();
    } else if (key == "properties") {
      if (!v.IsMap()) {
        errors.push_back(at + ": not a map");
        continue;
      }
      for (const auto& p : v) {
        std::string name = p.first.as<std::string>();
        s.properties.emplace(name, parseNode(p.second, join(at, name), errors));
      }
    } else if (key == "required") {
      if (!v.IsSequence()) {
        errors.push_back(at + ": not a list");
        continue;
      }
      for (const auto& r : v) {
        s.required.push_back(r.as<std::string>());
      }
    } else if (key == "items") {
      s.items = std::make_shared<Schema>(parseNode(v, at, errors));
    } else if (key == "enum") {
      if (!v.IsSequence() || v.size() == 0) {
        errors.push_back(at + ": not a non-empty list");
        continue;
      }
      for (const auto& e : v) {
        s.enum_values.push_back(canonicalYaml(e));
      }
    } else if (key == "minimum") {
      s.minimum = scalarNumber<double>(v, at, errors);
    } else if (key == "maximum") {
      s.maximum = scalarNumber<double>(v, at, errors);
    } else if (key == "minLength") {
      s.min_length = scalarNumber<uint64_t>(v, at, errors);
    } else if (key == "maxLength") {
      s.max_length = scalarNumber<uint64_t>(v, at, errors);
    } else if (key == "minItems") {
      s.min_items = scalarNumber<uint64_t>(v, at, errors);
    } else if (key == "maxItems") {
      s.max_items = scalarNumber<uint64_t>(v, at, errors);
    } else if (key == "nullable") {
      s.nullable = scalarBool(v, at, errors);
    } else if (key == "x-kubernetes-preserve-unknown-fields") {
      s.preserve_unknown_fields = scalarBool(v, at, errors);
    } else if (key == "additionalProperties") {
      if (v.IsScalar()) {
        s.additional_properties_allowed = scalarBool(v, at, errors);
      } else {
        s.additional_properties = std::make_shared<Schema>(parseNode(v, at, errors));
      }
    }
  }
  // Structural-schema rules (apiextensions.k8s.io/v1).
  std::string where = path.empty() ? "<root>" : path;
  if (s.type.empty() && !s.preserve_unknown_fields) {
    errors.push_back(where + ": type is required in a structural schema");
  }
  if (!s.properties.empty() && (s.additional_properties || s.additional_properties_allowed)) {
    errors.push_back(where + ": properties and additionalProperties are mutually exclusive");
  }
  if (s.type == "array" && !s.items) {
    errors.push_back(where + ": items is required for arrays");
  }
  if (s.type != "array" && s.items) {
    errors.push_back(where + ": items on a non-array");
  }
  if (s.type != "object" && !s.type.empty() &&
      (!s.properties.empty() || !s.required.empty() || s.additional_properties)) {
    errors.push_back(where + ": properties/required on a non-object");
  }
  for (const std::string& r : s.required) {
    if (s.properties.count(r) == 0 && !s.preserve_unknown_fields && !s.additional_properties) {
      errors.push_back(where + ": required field " + r + " is not defined");
    }
  }
  if (s.format == "int64" && s.type != "integer") {
    errors.push_back(where + ": format int64 on a non-integer");
  }
  return s;
}

/** RFC 3339 date-time: 2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm). */
bool isDateTime(std::string_view t) {
  auto digits = [&](std::size_t pos, std::size_t n) {
    if (pos + n > t.size()) {
      return false;
    }
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (t[i] < '0' || t[i] > '9') {
        return false;
      }
    }
    return true;
  };
  if (t.size() < 20 || !digits(0, 4) || t[4] != '-' || !digits(5, 2) || t[7] != '-' ||
      !digits(8, 2) || (t[10] != 'T' && t[10] != 't') || !digits(11, 2) || t[13] != ':' ||
      !digits(14, 2) || t[16] != ':' || !digits(17, 2)) {
    return false;
  }
  std::size_t i = 19;
  if (t[i] == '.') {
    ++i;
    std::size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      ++i;
    }
    if (i == start) {
      return false;
    }
  }
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    return i + 1 == t.size();
  }
  return i + 6 == t.size() && (t[i] == '+' || t[i] == '-') && digits(i + 1, 2) && t[i + 3] == ':' &&
         digits(i + 4, 2);
}

std::string typeOf(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "?";
}

void validateNode(const Schema& s, const json::value& v, const std::string& path, bool root,
                  std::vector<std::string>& errors) {
  std::string where = path.empty() ? "<root>" : path;
  if (v.is_null()) {
    if (!s.nullable) {
      errors.push_back(where + ": null is not allowed");
    }
    return;
  }
  if (!s.type.empty()) {
    std::string actual = typeOf(v);
    bool ok = actual == s.type || (s.type == "number" && actual == "integer");
    if (!ok) {
      errors.push_back(where + ": expected " + s.type + ", got " + actual);
      return;
    }
  }
  if (!s.enum_values.empty()) {
    std::string text = json::serialize(v);
    bool found = false;
    for (const auto& e : s.enum_values) {
      found = found || e == text;
    }
    if (!found) {
      errors.push_back(where + ": " + text + " is not one of the enum values");
    }
  }
  if (v.is_number()) {
    if (v.is_uint64() &&
        v.get_uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      errors.push_back(where + ": integer does not fit in int64");
      return;
    }
    double d = v.to_number<double>();
    if (s.minimum && d < *s.minimum) {
      errors.push_back(where + ": below the minimum");
    }
    if (s.maximum && d > *s.maximum) {
      errors.push_back(where + ": above the maximum");
    }
  }
  if (const json::string* str = v.if_string()) {
    if (s.format == "date-time" && !isDateTime(std::string_view(str->data(), str->size()))) {
      errors.push_back(where + ": not an RFC 3339 date-time");
    }
    if (s.min_length && str->size() < *s.min_length) {
      errors.push_back(where + ": shorter than minLength");
    }
    if (s.max_length && str->size() > *s.max_length) {
      errors.push_back(where + ": longer than maxLength");
    }
  }
  if (const json::array* arr = v.if_array()) {
    if (s.min_items && arr->size() < *s.min_items) {
      errors.push_back(where + ": fewer than minItems");
    }
    if (s.max_items && arr->size() > *s.max_items) {
      errors.push_back(where + ": more than maxItems");
    }
    if (s.items) {
      for (std::size_t i = 0; i < arr->size(); ++i) {
        validateNode(*s.items, (*arr)[i], path + "[" + std::to_string(i) + "]", false, errors);
      }
    }
  }
  if (const json::object* obj = v.if_object()) {
    for (const std::string& r : s.required) {
      if (!obj->contains(r)) {
        errors.push_back(join(path, r) + ": required field missing");
      }
    }
    for (const auto& kv : *obj) {
      std::string key(kv.key());
      std::string at = join(path, key);
      if (root && (key == "apiVersion" || key == "kind" || key == "metadata")) {
        if (key == "metadata") {
          if (!kv.value().is_object()) {
            errors.push_back("metadata: expected object");
          }
        } else if (!kv.value().is_string()) {
          errors.push_back(at + ": expected string");
        }
        continue;
      }
      auto p = s.properties.find(key);
      if (p != s.properties.end()) {
        validateNode(p->second, kv.value(), at, false, errors);
      } else if (s.additional_properties) {
        validateNode(*s.additional_properties, kv.value(), at, false, errors);
      } else if (!s.preserve_unknown_fields && !s.additional_properties_allowed) {
        errors.push_back(at + ": unknown field (kube-apiserver would prune it)");
      }
    }
  }
}

}  // namespace

absl::StatusOr<Schema> parseSchema(std::string_view yaml_or_json) {
  YAML::Node n;
  try {
    n = YAML::Load(std::string(yaml_or_json));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("schema: ") + e.what());
  }
  std::vector<std::string> errors;
  Schema s;
  try {
    s = parseNode(n, "", errors);
  } catch (const std::exception& e) {
    errors.push_back(std::string("schema: ") + e.what());
  }
  if (s.type != "object") {
    errors.push_back("<root>: the root of a CRD schema must be type: object");
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) {
      all += e + "; ";
    }
    return absl::InvalidArgumentError(all);
  }
  return s;
}

std::vector<std::string> validate(const Schema& root, std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) {
    return {"invalid JSON: " + ec.message()};
  }
  std::vector<std::string> errors;
  validateNode(root, v, "", true, errors);
  return errors;
}

const Schema* findPath(const Schema& root, std::string_view json_path) {
  static const Schema kMetadataField = [] {
    Schema s;
    s.type = "string";
    return s;
  }();
  if (json_path.empty() || json_path[0] != '.' || json_path.find('[') != std::string_view::npos) {
    return nullptr;
  }
  const Schema* cur = &root;
  std::string_view rest = json_path.substr(1);
  bool first = true;
  while (!rest.empty()) {
    std::size_t dot = rest.find('.');
    std::string key(rest.substr(0, dot));
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    if (first && key == "metadata") {
      // ObjectMeta is not part of the CRD schema; its fields (creationTimestamp, ...) exist.
      return rest.empty() ? &root : &kMetadataField;
    }
    first = false;
    auto it = cur->properties.find(key);
    if (it == cur->properties.end()) {
      return nullptr;
    }
    cur = &it->second;
  }
  return cur;
}

}  // namespace carina::test
