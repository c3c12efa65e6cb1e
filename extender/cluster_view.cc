#include "extender/cluster_view.h"

#include <algorithm>
#include <mutex>

namespace carina::extender {

void InMemoryClusterView::unindexLocked(const Claim& claim) {
  if (claim.selected_node.empty()) {
    return;
  }
  auto it = nodes_.find(claim.selected_node);
  if (it == nodes_.end()) {
    return;
  }
  std::erase(it->second.promised, claim.key());
  if (it->second.promised.empty() && !it->second.supply) {
    nodes_.erase(it);
  }
}

void InMemoryClusterView::upsertClaim(Claim claim) {
  std::unique_lock lock(mu_);
  std::string key = claim.key();
  if (auto it = claims_.find(key); it != claims_.end()) {
    unindexLocked(it->second);
  }
  if (!claim.bound() && !claim.selected_node.empty()) {
    nodes_[claim.selected_node].promised.push_back(key);
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
  std::string name = ptr->node;
  nodes_[name].supply = std::move(ptr);
}

void InMemoryClusterView::removeNode(const std::string& node) {
  std::unique_lock lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) {
    return;
  }
  it->second.supply.reset();
  if (it->second.promised.empty()) {
    nodes_.erase(it);
  }
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
  return it == nodes_.end() ? nullptr : it->second.supply;
}

void InMemoryClusterView::promisedLocked(const NodeEntry& entry, std::vector<Claim>& out) const {
  out.clear();
  out.reserve(entry.promised.size());
  for (const std::string& key : entry.promised) {
    auto c = claims_.find(key);
    if (c != claims_.end()) {
      out.push_back(c->second);
    }
  }
}

std::vector<Claim> InMemoryClusterView::promisedClaims(const std::string& node) const {
  std::shared_lock lock(mu_);
  std::vector<Claim> out;
  auto it = nodes_.find(node);
  if (it != nodes_.end()) {
    promisedLocked(it->second, out);
  }
  return out;
}

std::vector<std::string> InMemoryClusterView::nodeNames() const {
  std::vector<std::string> out;
  {
    std::shared_lock lock(mu_);
    out.reserve(nodes_.size());
    for (const auto& [name, entry] : nodes_) {
      if (entry.supply) {
        out.push_back(name);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void InMemoryClusterView::nodeStates(std::span<const std::string> nodes,
                                     std::vector<NodeState>& out) const {
  out.resize(nodes.size());
  std::shared_lock lock(mu_);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    NodeState& st = out[i];
    auto it = nodes_.find(nodes[i]);
    if (it == nodes_.end()) {
      st.supply.reset();
      st.promised.clear();
      continue;
    }
    st.supply = it->second.supply;
    if (it->second.promised.empty()) {
      st.promised.clear();
    } else {
      promisedLocked(it->second, st.promised);
    }
  }
}

void ClusterView::nodeStates(std::span<const std::string> nodes,
                             std::vector<NodeState>& out) const {
  out.resize(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    out[i].supply = nodeSupply(nodes[i]);
    out[i].promised = promisedClaims(nodes[i]);
  }
}

void OverlayClusterView::addClaim(Claim claim) {
  std::string key = claim.key();
  claims_[key] = std::move(claim);
}

void OverlayClusterView::addStorageClass(StorageClass sc) {
  std::string name = sc.name;
  classes_[name] = std::move(sc);
}

std::optional<Claim> OverlayClusterView::claim(const std::string& ns,
                                               const std::string& name) const {
  if (auto it = claims_.find(ns + "/" + name); it != claims_.end()) {
    return it->second;
  }
  return base_.claim(ns, name);
}

std::optional<StorageClass> OverlayClusterView::storageClass(const std::string& name) const {
  if (auto it = classes_.find(name); it != classes_.end()) {
    return it->second;
  }
  return base_.storageClass(name);
}

std::optional<Volume> OverlayClusterView::volume(const std::string& name) const {
  return base_.volume(name);
}

NodeSupplyPtr OverlayClusterView::nodeSupply(const std::string& node) const {
  return base_.nodeSupply(node);
}

std::vector<Claim> OverlayClusterView::promisedClaims(const std::string& node) const {
  std::vector<Claim> out = base_.promisedClaims(node);
  std::erase_if(out, [&](const Claim& c) { return claims_.contains(c.key()); });
  for (const auto& [key, c] : claims_) {
    if (!c.bound() && c.selected_node == node) {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> OverlayClusterView::nodeNames() const { return base_.nodeNames(); }

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
