# GPT partition engine (agent/storage/partition_engine.h).
target_sources(carina_storage PRIVATE ${CMAKE_CURRENT_LIST_DIR}/partition_engine.cc)
