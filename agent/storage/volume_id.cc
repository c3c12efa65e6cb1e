#include <openssl/evp.h>

#include "agent/storage/volume_backend.h"

namespace carina::storage {

std::string volumeIdForName(const std::string& name) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(name.data(), name.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "carina-";
  // 29 hex digits (116 bits) keep the id within GPT's 36-character partition names.
  for (unsigned int i = 0; id.size() < 36 && i < len; ++i) {
    id.push_back(kHex[digest[i] >> 4]);
    if (id.size() < 36) {
      id.push_back(kHex[digest[i] & 0xF]);
    }
  }
  return id;
}

}  // namespace carina::storage
