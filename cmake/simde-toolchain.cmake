# Points WAMR's FetchContent at Debian's libsimde-dev headers so the QuickJS
# backend of deno_core builds without cloning simde from GitHub.
if(EXISTS "/usr/include/simde/simde-common.h")
  set(FETCHCONTENT_SOURCE_DIR_SIMDE "/usr/include" CACHE PATH "")
endif()
