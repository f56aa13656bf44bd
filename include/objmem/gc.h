/* objmem/gc.h — part of objmem.h; include <objmem.h>, not this file. */
#ifndef OBJMEM_GC_H
#define OBJMEM_GC_H

#endif /* OBJMEM_GC_H */
