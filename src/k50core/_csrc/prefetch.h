/* Software prefetch for the batch calls (heartbeat_many).
 *
 * A batch of tokens built long before the call is cold: each item costs a cache miss
 * on its object and another on the slot it leads to, one after the other. The batch loop
 * asks for item k + D's memory while it works on item k, so those misses overlap. A prefetch
 * never faults and changes no result; on a compiler without the builtin it is nothing.
 * Declared for Cython in prefetch.pxd.
 */
#ifndef K50_PREFETCH_H
#define K50_PREFETCH_H

#if defined(__GNUC__) || defined(__clang__)
#define k50_prefetch(p) __builtin_prefetch((const void*)(p), 0, 3)
#define k50_prefetch_write(p) __builtin_prefetch((const void*)(p), 1, 3)
#else
#define k50_prefetch(p) ((void)(p))
#define k50_prefetch_write(p) ((void)(p))
#endif

/* An object's first two cache lines: a short str's header and characters, a dict's header. */
#define k50_prefetch_object(o) do { k50_prefetch(o); k50_prefetch((const char*)(o) + 64); } while (0)

#endif
