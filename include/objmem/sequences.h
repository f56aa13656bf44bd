/* objmem/sequences.h — part of objmem.h; include <objmem.h>, not this file. */
#ifndef OBJMEM_SEQUENCES_H
#define OBJMEM_SEQUENCES_H

#endif /* OBJMEM_SEQUENCES_H */
