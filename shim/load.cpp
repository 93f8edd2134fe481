// The load-time check of the OVERSUB_* settings (Note [Configuration errors]
// in config.cpp). Part of liboversub.so only, not of the engine library: unit
// tests link the engine and set variables of their own before they read the
// settings.
#include "config.h"

namespace {

// Runs when liboversub.so loads, before the program's main, so that a typo
// stops the job at once rather than at its first CUDA call. It reads the
// environment and inspects two paths; it touches no CUDA library (CONVENTIONS 4).
__attribute__((constructor)) void check_settings_at_load() { oversub::check_environment(); }

}  // namespace
