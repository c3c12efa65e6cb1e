#include "extender/cluster_view.h"

#include <algorithm>
#include <mutex>

namespace carina::extender {

void InMemoryClusterView::unindexLocked(const Claim& claim) {
  if (claim.selected_node.empty()) {
    return;
  }
  auto it = promised_.find(claim.selected_node);
  if (it == promised_.end()) {
    return;
  }
  std::erase(it->second, claim.key());
  if (it->second.empty()) {
    promised_.erase(it);
  }
}

void InMemoryClusterView::upsertClaim(Claim claim) {
  std::unique_lock lock(mu_);
  std::string key = claim.key();
  if (auto it = claims_.find(key); it != claims_.end()) {
    unindexLocked(it->second);
  }
  if (!claim.bound() && !claim.selected_node.empty()) {
    promised_[claim.selected_node].push_back(key);
  }
  claims_[key] = std::move(claim);
}

void InMemoryClusterView::removeClaim(const std::string& ns, const std::string& name) {
  std::unique_lock lock(mu_);
  auto it = claims_.find(ns + "/" + name);
  if (it == claims_.end()) {
    return;
  }
  unindexLocked(it->second);
  claims_.erase(it);
}

void InMemoryClusterView::upsertStorageClass(StorageClass sc) {
  std::unique_lock lock(mu_);
  std::string name = sc.name;
  classes_[name] = std::move(sc);
}

void InMemoryClusterView::removeStorageClass(const std::string& name) {
  std::unique_lock lock(mu_);
  classes_.erase(name);
}

void InMemoryClusterView::upsertVolume(Volume volume) {
  std::unique_lock lock(mu_);
  std::string name = volume.name;
  volumes_[name] = std::move(volume);
}

void InMemoryClusterView::removeVolume(const std::string& name) {
  std::unique_lock lock(mu_);
  volumes_.erase(name);
}

void InMemoryClusterView::setNodeSupply(NodeSupply supply) {
  auto ptr = std::make_shared<const NodeSupply>(std::move(supply));
  std::unique_lock lock(mu_);
  nodes_[ptr->node] = std::move(ptr);
}

void InMemoryClusterView::removeNode(const std::string& node) {
  std::unique_lock lock(mu_);
  nodes_.erase(node);
}

std::optional<Claim> InMemoryClusterView::claim(const std::string& ns,
                                                const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = claims_.find(ns + "/" + name);
  if (it == claims_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<StorageClass> InMemoryClusterView::storageClass(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = classes_.find(name);
  if (it == classes_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<Volume> InMemoryClusterView::volume(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = volumes_.find(name);
  if (it == volumes_.end()) {
    return std::nullopt;
  }
  return it->second;
}

NodeSupplyPtr InMemoryClusterView::nodeSupply(const std::string& node) const {
  std::shared_lock lock(mu_);
  auto it = nodes_.find(node);
  return it == nodes_.end() ? nullptr : it->second;
}

std::vector<Claim> InMemoryClusterView::promisedClaims(const std::string& node) const {
  std::shared_lock lock(mu_);
  std::vector<Claim> out;
  auto it = promised_.find(node);
  if (it == promised_.end()) {
    return out;
  }
  out.reserve(it->second.size());
  for (const std::string& key : it->second) {
    auto c = claims_.find(key);
    if (c != claims_.end()) {
      out.push_back(c->second);
    }
  }
  return out;
}

NodeSupply supplyFromInventory(const std::string& node, const storage::InventorySnapshot& inv) {
  NodeSupply out;
  out.node = node;
  for (const storage::GroupSnapshot& g : inv.groups) {
    GroupSupply gs;
    gs.name = g.name;
    gs.policy = g.policy;
    if (g.policy == core::DiskPolicy::Raw) {
      for (const storage::DiskSnapshot& d : g.disks) {
        if (d.info.eligible) {
          gs.disks.push_back(d.space);
        }
      }
    } else {
      gs.vg_size_bytes = g.total_bytes;
      gs.vg_free_bytes = g.free_bytes;
    }
    out.groups.push_back(std::move(gs));
  }
  return out;
}

}  // namespace carina::extender
