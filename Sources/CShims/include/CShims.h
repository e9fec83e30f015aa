#ifndef REFINESEG_CSHIMS_H
#define REFINESEG_CSHIMS_H
// C helpers that Swift cannot express. Filled by the IO layer (libpng error recovery).
int refineseg_shims_version(void);
#endif
