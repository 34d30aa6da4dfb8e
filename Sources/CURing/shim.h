// liburing (Debian's liburing-dev) for the C wrappers of CUserSwapURing. Swift never imports
// this module directly: the helpers it needs are static inline, so CUserSwapURing wraps them.
#include <liburing.h>
