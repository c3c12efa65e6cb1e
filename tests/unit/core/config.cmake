# Config parser tests (agent/core/config.cc). Sample files live in tests/testdata/config.
list(APPEND UNIT_CORE_SOURCES config_test.cc)
set_source_files_properties(config_test.cc PROPERTIES
  COMPILE_DEFINITIONS "CARINA_CONFIG_TESTDATA=\"${PROJECT_SOURCE_DIR}/tests/testdata/config\"")
