# cython: language_level=3, binding=True
"""Compiled copies of a few hot loops of the kernel (Cython; optional, see
docs/performance.md "Compiled kernel").

Every function here has a pure Python original that stays the reference (named in its
docstring); tests/core/test_speedups.py checks that both give the same results on the same
inputs. ``STREAMDSL_PURE=1`` in the environment makes streamdsl ignore this module.
Timestamps and keys stay Python objects: the gain is the interpreter's dispatch and C-level
dict/list/tuple operations, not new arithmetic (a Python int timestamp of any size behaves
as in the pure code).
"""

cimport cython
from cpython.object cimport PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM

cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject* t, Py_ssize_t n)

from collections import deque
from heapq import heappop, heappush

# bound on first use (this module is imported while streamdsl.runtime is being imported)
cdef object Record = None
cdef object key_order = None
cdef object _emit_due = None
cdef object _NEG_INF = -(1 << 62)
cdef object _new = object.__new__


cdef int _bind() except -1:
    global Record, key_order, _emit_due
    if _emit_due is None:
        from streamdsl.runtime.records import Record as r
        from streamdsl.runtime.ordering import key_order as ko
        from streamdsl.runtime.joins import _emit_due as ed
        Record, key_order, _emit_due = r, ko, ed
    return 0


cdef inline object _record(object k, object v, object ts, object origin):
    # Record(k, v, ts, None, origin) without its __init__ call
    r = _new(Record)
    r.key = k
    r.value = v
    r.ts = ts
    r.window = None
    r.origin = origin
    return r


def _ts_key(e):
    return e[0]


# ---------------------------------------------------------------- partitioning

@cython.boundscheck(False)
@cython.wraparound(False)
def murmur2(const unsigned char[:] data):
    """``streamdsl.runtime.partitioning.murmur2``: Kafka's 32-bit MurmurHash2, signed."""
    cdef Py_ssize_t length = data.shape[0]
    cdef unsigned int m = 0x5BD1E995
    cdef unsigned int h = 0x9747B28C ^ <unsigned int>length
    cdef unsigned int k
    cdef Py_ssize_t i, n4 = length & ~3
    for i in range(0, n4, 4):
        k = (<unsigned int>data[i] | (<unsigned int>data[i + 1] << 8)
             | (<unsigned int>data[i + 2] << 16) | (<unsigned int>data[i + 3] << 24))
        k *= m
        k ^= k >> 24
        k *= m
        h = (h * m) ^ k
    cdef Py_ssize_t rest = length & 3
    if rest == 3:
        h ^= <unsigned int>data[n4 + 2] << 16
    if rest >= 2:
        h ^= <unsigned int>data[n4 + 1] << 8
    if rest >= 1:
        h ^= <unsigned int>data[n4]
        h *= m
    h ^= h >> 13
    h *= m
    h ^= h >> 15
    return <int>h


# ---------------------------------------------------------------- ingest

def ingest_fields(items, object pos0, object bad, object topic, object key_field,
                  object ts_field, object top, object slow, object missing):
    """The loop of ``make_ingest_items``'s ``ingest_fields`` (streamdsl/runtime/ingest.py):
    a plain dict with the key and an int timestamp in range becomes a Record without a
    call; anything else goes to ``slow(item, position, out, bad)``."""
    _bind()
    cdef list out = []
    cdef object i = pos0
    cdef object v, k, ts
    for v in items:
        if type(v) is dict and "value" not in <dict>v:
            k = (<dict>v).get(key_field, missing)
            ts = (<dict>v).get(ts_field)
            if k is not missing and type(ts) is int and 0 <= ts < top:
                out.append(_record(k, v, ts, (topic, i)))
                i += 1
                continue
        slow(v, i, out, bad)
        i += 1
    return out


def ingest_keyless(items, object pos0, object bad, object topic, object ts_field,
                   object top, object slow):
    """The loop of ``make_ingest_items``'s ``ingest_keyless`` (streamdsl/runtime/ingest.py)."""
    _bind()
    cdef list out = []
    cdef object i = pos0
    cdef object v, ts
    for v in items:
        if type(v) is dict and "value" not in <dict>v:
            ts = (<dict>v).get(ts_field)
            if type(ts) is int and 0 <= ts < top:
                out.append(_record(None, v, ts, (topic, i)))
                i += 1
                continue
        slow(v, i, out, bad)
        i += 1
    return out


# ---------------------------------------------------------------- stream-stream join

def stream_stream_join_run(self, items, fail):
    """``StreamStreamJoinProcessor._run`` (streamdsl/runtime/joins.py), line for line."""
    _bind()
    cdef dict meta, lbuf, rbuf, unmatched, mine, other, buf
    cdef list out, lst, olst, partners_l
    cdef tuple entry, e, x, item
    cdef bint is_left, outer_left, outer_right, eager
    cdef Py_ssize_t mark
    (before, after, lim_l, lim_r, joiner, outer_left, outer_right, eager, meta, lbuf, rbuf,
     unmatched) = self._bound
    ctx = self.ctx
    late_letters = self.late_letters
    lim = min(lim_l, lim_r)
    horizon_gap = before + lim_l
    fifo = meta.get("fifo")
    if fifo is None:
        fifo = meta["fifo"] = deque()
    popleft = fifo.popleft
    push_fifo = fifo.append
    last_t = fifo[-1][0] if fifo else _NEG_INF
    expiry = meta.get("expiry")
    held = meta.get("held")
    st = st0 = meta.get("stream_time", _NEG_INF)
    seq = seq0 = meta.get("seq", 0)
    horizon = st - horizon_gap
    out = []
    try:
        for port, rec in items:
            k = rec.key
            v = rec.value
            if k is None or v is None:
                ctx.skipped()
                continue
            t = rec.ts
            is_left = port == "left"
            if t > st:
                st = t
                horizon = st - horizon_gap
            elif t + (lim_l if is_left else lim_r) < st:
                ctx.late()
                if late_letters:
                    fail(rec, self._late(t, is_left, st))
                continue
            mark = len(out)
            try:
                if t == st and held and held[0][0] + lim < st:
                    if lim_l == lim_r:
                        while held and held[0][0] + lim < st:
                            ht, _, _, hseq = heappop(held)
                            item = unmatched.pop(hseq, None)
                            if item is None:
                                continue
                            hv = item[3]
                            out.append(Record(item[2], joiner(hv, None) if item[1] == "left"
                                              else joiner(None, hv), ht))
                    else:
                        _emit_due(held, unmatched, st, lim_l, lim_r, joiner, out.append)
                if is_left:
                    mine, other = lbuf, rbuf
                else:
                    mine, other = rbuf, lbuf
                n = seq
                seq = n + 1
                entry = (t, n, port, k, v)
                lst = mine.get(k)
                if lst is None:
                    mine[k] = [entry]
                else:
                    lst.append(entry)
                if t >= last_t:
                    push_fifo(entry)
                    last_t = t
                else:
                    if expiry is None:
                        expiry = meta["expiry"] = []
                    heappush(expiry, entry)
                olst = other.get(k)
                partners = ()
                if olst:
                    if is_left:
                        lo = t - before
                        hi = t + after
                    else:
                        lo = t - after
                        hi = t + before
                    if len(olst) == 1:
                        if lo <= (<tuple>olst[0])[0] <= hi:
                            partners = olst
                    else:
                        partners_l = [e for e in olst if lo <= e[0] <= hi]
                        if len(partners_l) > 1:
                            partners_l.sort(key=_ts_key)
                        partners = partners_l
                if partners:
                    origin = rec.origin
                    for e in partners:
                        if unmatched:
                            unmatched.pop(e[1], None)
                        et = e[0]
                        ov = e[4]
                        out.append(_record(k, joiner(v, ov) if is_left else joiner(ov, v),
                                           et if et > t else t, origin))
                elif outer_left if is_left else outer_right:
                    if eager:
                        out.append(_record(k, joiner(v, None) if is_left else joiner(None, v),
                                           t, rec.origin))
                    else:
                        unmatched[n] = (t, port, k, v)
                        if held is None:
                            held = meta["held"] = []
                        heappush(held, (t, 1 if is_left else 0, key_order(k), n))
                if fifo[0][0] < horizon:
                    while fifo and fifo[0][0] < horizon:
                        x = popleft()
                        s = x[1]
                        if unmatched and s in unmatched:
                            continue
                        kk = x[3]
                        buf = lbuf if x[2] == "left" else rbuf
                        lst = buf.get(kk)
                        if lst is None:
                            continue
                        if (<tuple>lst[0])[1] == s:
                            del lst[0]
                        else:
                            lst[:] = [e for e in lst if e[1] != s]
                        if not lst:
                            del buf[kk]
                    if not fifo:
                        last_t = _NEG_INF
                if expiry and expiry[0][0] < horizon:
                    while expiry and expiry[0][0] < horizon:
                        x = heappop(expiry)
                        s = x[1]
                        if unmatched and s in unmatched:
                            continue
                        kk = x[3]
                        buf = lbuf if x[2] == "left" else rbuf
                        lst = buf.get(kk)
                        if lst is None:
                            continue
                        lst[:] = [e for e in lst if e[1] != s]
                        if not lst:
                            del buf[kk]
            except Exception as exc:
                del out[mark:]
                fail(rec, exc)
    finally:
        if st != st0:
            meta["stream_time"] = st
        if seq != seq0:
            meta["seq"] = seq
    return out


# ---------------------------------------------------------------- tumbling window, emit-final count

@cython.boundscheck(False)
@cython.wraparound(False)
def tumbling_count_final(list keys, list values, list timestamps, object mask, dict windows,
                         list starts,
                         long long st, long long size, long long grace, long long top,
                         object late, object expire, object failed, object insort):
    """The call-free loop of ``_tumbling`` (backends/local/fastpaths.py: an emit-final count
    over rows without a null key or value), line for line: returns the new stream time, or
    None, having done nothing, when some key or value is None or some timestamp is not an
    ``int`` in ``[0, top)`` (the pure code then decides). ``mask``: the rows to take (None: all). ``late()`` counts a late
    row; ``expire(close)`` closes the windows due; ``failed(i, stream time, exc)`` reports
    row ``i`` whose key could not be hashed (the loop goes on after it)."""
    cdef Py_ssize_t i, n = len(keys)
    cdef long long ts, close, start, first_close, last_start = 0
    cdef bint have_last = False
    cdef bint masked = mask is not None
    cdef dict bucket = None
    cdef object k, tso, cur, m
    cdef tuple c
    if len(timestamps) != n or len(values) != n or (masked and len(mask) != n):
        return None
    for k in keys:
        if k is None:
            return None
    for k in values:
        if k is None:
            return None
    for tso in timestamps:
        if type(tso) is not int or not 0 <= tso < top:
            return None
    close = st - grace
    first_close = <long long>starts[0] + size if starts else (1 << 62)
    for i in range(n):
        if masked and not mask[i]:
            continue
        k = keys[i]
        tso = timestamps[i]
        ts = tso
        try:
            if ts > st:
                st = ts
                close = st - grace
            start = ts - ts % size
            if start + size <= close:
                late()
            else:
                if not have_last or start != last_start:
                    bucket = windows.get(start)
                    if bucket is None:
                        bucket = {}
                        windows[start] = bucket
                        insort(starts, start)
                        first_close = <long long>starts[0] + size
                    last_start = start
                    have_last = True
                cur = bucket.get(k)
                if cur is None:
                    bucket[k] = (1, tso)
                else:
                    c = <tuple>cur
                    m = c[1]
                    bucket[k] = (c[0] + 1, m if m > tso else tso)
            if first_close <= close:
                expire(close)
                first_close = <long long>starts[0] + size if starts else (1 << 62)
                have_last = False
        except TypeError as e:
            failed(i, st, e)
    return st


cdef inline object _row_of(object cls, object k, object v, object ts, object w):
    # tuple.__new__(cls, (k, v, ts, w)) for a tuple subclass (OutputRecord): the allocation
    # tuple's own __new__ makes for a subclass, without the intermediate tuple
    cdef object r = PyType_GenericAlloc(<PyTypeObject*>cls, 4)
    Py_INCREF(k)
    PyTuple_SET_ITEM(r, 0, k)
    Py_INCREF(v)
    PyTuple_SET_ITEM(r, 1, v)
    Py_INCREF(ts)
    PyTuple_SET_ITEM(r, 2, ts)
    Py_INCREF(w)
    PyTuple_SET_ITEM(r, 3, w)
    return r


def closed_filter_to_sink(object closed, object pred, bint kv, object fail, object null_count,
                          object output_record, object record):
    """``codegen.compile_tail(chain, rows="closed")`` for a table filter followed only by
    pass-through kinds down to a sink (backends/local/codegen.py, the ``window-close-tail``
    fast path), line for line: the rows of each closed window, ``(window, keys, bucket)``,
    key by key, a row failing ``pred`` (``pred(k, v)`` with ``kv``, else ``pred(v)``) made
    a tombstone, ``null_count(v)`` (when not None) counting a None result, a raising
    predicate reported by ``fail(record(k, v, ts, w, None), exc)``; the sink's records."""
    cdef list out = []
    cdef list keys
    cdef dict bucket
    cdef tuple e
    cdef object w, k, v, ts, r
    for w, keys, bucket in closed:
        for k in keys:
            e = <tuple>bucket[k]
            v = e[0]
            ts = e[1]
            if v is not None:
                try:
                    r = pred(k, v) if kv else pred(v)
                except Exception as exc:
                    fail(record(k, v, ts, w, None), exc)
                    continue
                if r is None or not r:
                    if r is None and null_count is not None:
                        null_count(v)
                    v = None
            out.append(_row_of(output_record, k, v, ts, w))
    return out


def stream_table_to_sink(list keys, list values, list timestamps, list rows, object joiner,
                         object failed, object output_record):
    """The inner-join loop of ``_stream_table_sink`` (backends/local/fastpaths.py, the
    ``stream-table-join-to-sink`` fast path), line for line, over rows already looked up
    (``rows[i]``: the table's row for ``keys[i]``, or None): ``(the sink's records, how many
    records were skipped)``, a raising joiner reported by ``failed(i, exc)``; None, having
    done nothing, when the columns' lengths differ."""
    cdef Py_ssize_t i, n = len(keys)
    cdef Py_ssize_t skipped = 0
    cdef list out = []
    cdef object k, v, row, j
    if len(values) != n or len(timestamps) != n or len(rows) != n:
        return None
    for i in range(n):
        row = rows[i]
        k = keys[i]
        v = values[i]
        if row is not None:
            if v is None:
                skipped += 1
                continue
            try:
                j = joiner(v, row)
            except Exception as e:
                failed(i, e)
                continue
            out.append(_row_of(output_record, k, j, timestamps[i], None))
        elif k is None or v is None:
            skipped += 1
    return out, skipped


def all_of_type(object xs, type t):
    """``list(map(type, xs)).count(t) == len(xs)``: whether every item's type is ``t``
    (the columnar ingest's checks, backends/local/codegen.py)."""
    cdef object x
    for x in xs:
        if type(x) is not t:
            return False
    return True


def ints_below(object xs, object top):
    """``list(map(type, xs)).count(int) == len(xs) and min(xs) >= 0 and max(xs) < top`` for
    a non-empty ``xs``: every item an ``int`` in ``[0, top)`` (timestamps in range)."""
    cdef object x
    cdef long long t = top, v
    if not xs:
        return False
    for x in xs:
        if type(x) is not int:
            return False
        try:
            v = x
        except OverflowError:  # too large for a C long long: not below top either
            return False
        if v < 0 or v >= t:
            return False
    return True
