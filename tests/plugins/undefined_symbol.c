/* A plugin that calls a function no library defines: the loader (RTLD_NOW)
 * must refuse it at load time, naming the symbol, instead of crashing at its
 * first call. Linked with -z undefs to get past --no-undefined. */
#include <sluice/plugin.h>

#include <stddef.h>

extern void sluice_test_function_nobody_defines(void);

static sluice_status u_create(const sluice_create_args *args, void **instance) {
    (void)args;
    sluice_test_function_nobody_defines();
    *instance = NULL;
    return SLUICE_OK;
}
static void u_destroy(void *instance) { (void)instance; }

static const sluice_stage_descriptor u_stage = {
    sizeof(sluice_stage_descriptor), SLUICE_KIND_TRANSFORMER, "undefined_symbol", "1.0.0", "Needs a missing symbol",
    "{}", 0, NULL, 0, 0, u_create, NULL, NULL, NULL, NULL, NULL, u_destroy, NULL, NULL,
};

static const sluice_stage_descriptor *const stages[] = {&u_stage};
static const sluice_entry entry = {SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry), 1, stages};

SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) { return &entry; }
