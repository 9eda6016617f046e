/* A plugin that lies about the sizes of its structs: its descriptor claims
 * to be 16 bytes, so the host must refuse it (before anything is called),
 * in process and isolated alike. */
#include <sluice/plugin.h>

#include <stddef.h>

static sluice_status liar_create(const sluice_create_args *args, void **instance) {
    (void)args;
    *instance = NULL;
    return SLUICE_OK;
}
static void liar_destroy(void *instance) { (void)instance; }

static const sluice_stage_descriptor liar_stage = {
    16, /* the lie */
    SLUICE_KIND_TRANSFORMER, "liar", "1.0.0", "Lies about its struct sizes", "{}", 0, NULL, 0, 0,
    liar_create, NULL, NULL, NULL, NULL, NULL, liar_destroy, NULL, NULL,
};

static const sluice_stage_descriptor *const stages[] = {&liar_stage};
static const sluice_entry entry = {SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, sizeof(sluice_entry), 1, stages};

SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) { return &entry; }
