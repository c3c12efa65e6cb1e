// Keeps carina_cluster a real static library while its parts are added by CMake fragments.
namespace carina::cluster {
int clusterLibraryAnchor() { return 0; }
}  // namespace carina::cluster
