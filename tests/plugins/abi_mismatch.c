/* Test plugins that must be refused: built for another ABI. SLUICE_TEST_ABI
 * selects the version the entry claims. */
#include <sluice/plugin.h>

#include <stddef.h>

static sluice_status create(const sluice_create_args *a, void **i) {
    (void)a;
    *i = NULL;
    return SLUICE_OK;
}
static void destroy(void *i) { (void)i; }
static sluice_status process(void *i, const sluice_record *r, uint32_t n, const sluice_emitter *o) {
    (void)i; (void)r; (void)n; (void)o;
    return SLUICE_OK;
}
static const sluice_stage_descriptor stage = {
    sizeof(sluice_stage_descriptor), SLUICE_KIND_TRANSFORMER, "from_elsewhere", "1.0.0", "wrong ABI", "{}", 0,
    NULL, 0, 0, create, NULL, NULL, process, NULL, NULL, destroy, NULL, NULL};
static const sluice_stage_descriptor *const stages[] = {&stage};
static const sluice_entry entry = {SLUICE_TEST_ABI_MAJOR, SLUICE_TEST_ABI_MINOR, sizeof(sluice_entry), 1, stages};
SLUICE_EXPORT const sluice_entry *sluice_plugin_entry(void) { return &entry; }
