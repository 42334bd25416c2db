#!/usr/bin/env python3
"""st.py: the safetensors helper of the command-level tests (standard library
only), reading files independently of the C reader.

  st.py tensors FILE          name, dtype, shape and a hash of each tensor's
                              bytes, then the step and data position: what
                              training computed, without the run's paths
  st.py meta FILE KEY         one __metadata__ value
  st.py damage MODE FILE      FILE damaged by MODE (see damage()) to stdout
  st.py spec EXPORT CKPT      EXPORT follows the safetensors spec and holds
                              CKPT's parameters byte for byte (exit 1 if not)
"""
import hashlib
import json
import math
import struct
import sys


def read(path, strict=False):
    """(file bytes, header length, header dict); strict checks the header's
    padding rules of the spec."""
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    text = b[8:8 + n].decode('utf-8')
    if strict:
        assert n % 8 == 0, 'header length %d not a multiple of 8' % n
        assert text.rstrip(' ') == text.rstrip(), 'padding must be spaces'
    return b, n, json.loads(text)


def write(header, data):
    """A file from a header dict and the data bytes, padded as we write it."""
    j = json.dumps(header, separators=(',', ':')).encode()
    j += b' ' * (-len(j) % 8)
    return struct.pack('<Q', len(j)) + j + bytes(data)


def data_of(b, n, entry):
    s, e = entry['data_offsets']
    return b[8 + n + s:8 + n + e]


def tensors(path):
    b, n, h = read(path)
    for k in sorted(x for x in h if x != '__metadata__'):
        print(k, h[k]['dtype'], h[k]['shape'], hashlib.sha256(data_of(b, n, h[k])).hexdigest())
    print('step', h['__metadata__']['step'], h['__metadata__']['data_position'])


def damage(mode, path):
    b, n, h = read(path)
    data = bytearray(b[8 + n:])
    names = [k for k in h if k != '__metadata__']
    order = sorted(names, key=lambda k: h[k]['data_offsets'][0])
    first, second, last = order[0], order[1], order[-1]
    meta = h['__metadata__']
    raw = {
        'tiny': lambda: b[:5],
        'cut': lambda: b[:8 + n + len(data) // 2],
        'hlen-huge': lambda: struct.pack('<Q', 1 << 40) + b[8:],
        'hlen-short': lambda: struct.pack('<Q', n - 16) + b[8:],
        'json': lambda: b[:8] + b[8:8 + n].replace(b'{', b'[', 2) + b[8 + n:],
    }
    if mode in raw:
        return raw[mode]()
    if mode == 'bounds': h[last]['data_offsets'] = [o + 4 for o in h[last]['data_offsets']]
    elif mode == 'overlap': h[second]['data_offsets'] = [o - 4 for o in h[second]['data_offsets']]
    elif mode == 'dtype': h[first]['dtype'] = 'F31'
    elif mode == 'int-dtype': h[first]['dtype'] = 'I32'
    elif mode == 'nan':
        s = h[first]['data_offsets'][0]; data[s:s + 4] = struct.pack('<f', math.nan)
    elif mode == 'inf':
        s = h[second]['data_offsets'][0]; data[s:s + 4] = struct.pack('<f', -math.inf)
    elif mode == 'rename': h['renamed'] = h.pop(first)
    elif mode == 'config': meta['config'] = meta['config'].replace('d_ff = 32', 'd_ff = 48')
    elif mode == 'no-config': del meta['config']
    elif mode == 'vocab': meta['vocab'] = 'tapeformer-vocab x y\n'
    elif mode == 'step': meta['step'] = '-3'
    elif mode == 'position': meta['data_position'] = '1,2,3'
    else: raise SystemExit('st.py: unknown damage ' + mode)
    return write(h, data)


def spec(export, checkpoint):
    """The spec, checked independently of our reader: 8-byte LE header size,
    JSON header padded with spaces to a multiple of 8, F32 tensors whose byte
    ranges tile the data area in order and match dtype x shape, string
    metadata; then every tensor equal, byte for byte, to the checkpoint's."""
    b, n, h = read(export, strict=True)
    meta = h.pop('__metadata__')
    assert meta['format'] == 'tapeformer-weights-1', meta['format']
    assert all(isinstance(v, str) for v in meta.values())
    assert {'format', 'config', 'vocab'} <= set(meta), sorted(meta)
    assert not any(k.startswith('optimizer') or k in ('step', 'data_position') for k in meta)
    end = 0
    for name, t in sorted(h.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        s, e = t['data_offsets']
        assert t['dtype'] == 'F32', (name, t['dtype'])
        size = 4
        for d in t['shape']: size *= d
        assert s == end and e - s == size, (name, s, e, size)
        end = e
    assert 8 + n + end == len(b), 'file size %d, expected %d' % (len(b), 8 + n + end)
    assert not any(k.startswith('optimizer') for k in h)
    cb, cn, ch = read(checkpoint)
    cmeta = ch.pop('__metadata__')
    assert meta['config'] == cmeta['config'] and meta['vocab'] == cmeta['vocab']
    params = {k for k in ch if not k.startswith('optimizer')}
    assert params == set(h), params ^ set(h)
    for k in h:
        assert ch[k]['shape'] == h[k]['shape']
        assert data_of(b, n, h[k]) == data_of(cb, cn, ch[k]), k + ' differs'


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'tensors': tensors(*args)
    elif cmd == 'meta': print(read(args[0])[2]['__metadata__'][args[1]])
    elif cmd == 'damage': sys.stdout.buffer.write(damage(*args))
    elif cmd == 'spec': spec(*args)
    else: raise SystemExit(__doc__)
