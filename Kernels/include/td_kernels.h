#ifndef TD_KERNELS_H
#define TD_KERNELS_H
#endif
