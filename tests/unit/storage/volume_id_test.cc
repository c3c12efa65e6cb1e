#include <catch2/catch.hpp>

#include "agent/storage/volume_backend.h"

TEST_CASE("volume ids are stable, distinct and fit a GPT partition name", "[unit][storage]") {
  std::string a = carina::storage::volumeIdForName("pvc-3b0f7c1e-2f4a-4c36-9a2d-5d8e1f0a7b21");
  std::string b = carina::storage::volumeIdForName("pvc-3b0f7c1e-2f4a-4c36-9a2d-5d8e1f0a7b22");
  CHECK(a == carina::storage::volumeIdForName("pvc-3b0f7c1e-2f4a-4c36-9a2d-5d8e1f0a7b21"));
  CHECK(a != b);
  CHECK(a.size() == 36);
  CHECK(a.rfind("carina-", 0) == 0);
  // SHA-256("demo") = 2a97516c354b68848cdbd8f54a226a0a55b21ed138e207ad6c5cbb9c00aa5aea
  CHECK(carina::storage::volumeIdForName("demo") == "carina-2a97516c354b68848cdbd8f54a226");
}
