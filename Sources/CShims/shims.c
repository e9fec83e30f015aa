#include "CShims.h"
int refineseg_shims_version(void) { return 1; }
