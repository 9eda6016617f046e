/* A perfectly good shared library that is not a Sluice plugin. */
#include <sluice/plugin.h>
SLUICE_EXPORT int not_the_entry(void) { return 42; }
