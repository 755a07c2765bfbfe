#include "td_kernels.h"
