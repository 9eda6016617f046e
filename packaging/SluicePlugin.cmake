# Hardening, as Debian builds its packages: stack canaries, stack clash
# protection and fortified libc calls (outside Debug builds, which do not
# optimise); the linker makes relocations read-only and binds every symbol
# at load (full RELRO) and marks the stack non-executable. Code is position
# independent. Set SLUICE_HARDEN to OFF to build a plugin without them
# (sanitizer builds do).
set(SLUICE_HARDENING_COMPILE_OPTIONS -fstack-protector-strong -fstack-clash-protection
    $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
set(SLUICE_HARDENING_LINK_OPTIONS -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

# sluice_harden(TARGET): the flags above on one target.
function(sluice_harden target)
  target_compile_options(${target} PRIVATE ${SLUICE_HARDENING_COMPILE_OPTIONS})
  target_link_options(${target} PRIVATE ${SLUICE_HARDENING_LINK_OPTIONS})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# sluice_add_plugin(NAME SOURCES... [LIBRARIES libs...])
# Builds a stage plugin as a MODULE library named sluice-NAME.so, with hidden
# visibility so that only sluice_plugin_entry is exported. Used by the
# project's plugins and shipped with the SDK package for third parties.
function(sluice_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES;LIBRARIES" ${ARGN})
  set(target sluice-plugin-${name})
  add_library(${target} MODULE ${ARG_SOURCES} ${ARG_UNPARSED_ARGUMENTS})
  if(TARGET sluice::sdk)
    target_link_libraries(${target} PRIVATE sluice::sdk)
  endif()
  target_link_libraries(${target} PRIVATE ${ARG_LIBRARIES})
  set(out "${ARG_OUTPUT_DIR}")
  if(NOT out AND DEFINED SLUICE_PLUGIN_OUTPUT_DIR)
    set(out "${SLUICE_PLUGIN_OUTPUT_DIR}")
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "sluice-${name}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(out)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${out}")
  endif()
  # A plugin must resolve everything at load time, not at first call.
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  if(NOT DEFINED SLUICE_HARDEN OR SLUICE_HARDEN)
    sluice_harden(${target})
  endif()
endfunction()
