# Writes the status page's files into a C++ source as raw string literals,
# so that the page is part of the sluice binary (nothing to install, nothing
# fetched). Run by the build: cmake -DOUTPUT=file.cpp -DDIR=dir -P embed.cmake
set(assets
  "/|index.html|text/html"
  "/status_page.css|status_page.css|text/css"
  "/status_page.js|status_page.js|text/javascript")
set(body "// Generated from host/status_page by embed.cmake: do not edit.\n#include \"status_page.hpp\"\n\nnamespace sluice {\n\nconst StatusPageAsset kStatusPageAssets[] = {\n")
foreach(asset IN LISTS assets)
  string(REPLACE "|" ";" parts "${asset}")
  list(GET parts 0 path)
  list(GET parts 1 file)
  list(GET parts 2 type)
  file(READ "${DIR}/${file}" content)
  string(FIND "${content}" ")sluice_asset\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${DIR}/${file} contains the raw string's delimiter")
  endif()
  string(APPEND body "    {\"${path}\", \"${type}; charset=utf-8\", R\"sluice_asset(${content})sluice_asset\"},\n")
endforeach()
string(APPEND body "};\nconst size_t kStatusPageAssetCount = sizeof kStatusPageAssets / sizeof kStatusPageAssets[0];\n\n} // namespace sluice\n")
file(WRITE "${OUTPUT}.tmp" "${body}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
