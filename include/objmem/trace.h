/* objmem/trace.h — part of objmem.h; include <objmem.h>, not this file. */
#ifndef OBJMEM_TRACE_H
#define OBJMEM_TRACE_H

#endif /* OBJMEM_TRACE_H */
