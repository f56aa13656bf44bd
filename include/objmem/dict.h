/* objmem/dict.h — part of objmem.h; include <objmem.h>, not this file. */
#ifndef OBJMEM_DICT_H
#define OBJMEM_DICT_H

#endif /* OBJMEM_DICT_H */
