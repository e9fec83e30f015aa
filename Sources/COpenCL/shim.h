// Every kernel targets OpenCL C 1.2; the host API is used at the 1.2 level too.
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
