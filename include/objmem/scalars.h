/* objmem/scalars.h — part of objmem.h; include <objmem.h>, not this file. */
#ifndef OBJMEM_SCALARS_H
#define OBJMEM_SCALARS_H

#endif /* OBJMEM_SCALARS_H */
