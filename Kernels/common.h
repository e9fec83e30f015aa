// common.h: prepended to every kernel file. OpenCL C 1.2.
// Sizes travel as int; element counts stay below 2^31 by construction (checked on the host).
#define IDX4(n, c, h, w, C, H, W) ((((n) * (C) + (c)) * (H) + (h)) * (W) + (w))
