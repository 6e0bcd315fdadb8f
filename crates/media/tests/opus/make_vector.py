#!/usr/bin/env python3
"""Makes libopus-1k-16k.bin: 1 s of a 1000 Hz tone encoded by the system's
libopus (Debian libopus0, pulled in by baresip), so the pure-Rust decoder is
tested on packets it did not make.

Format: for each 20 ms packet, a 2-byte big-endian length and the packet.
Encoder: 16 kHz mono, OPUS_APPLICATION_VOIP, 24 kbit/s, in-band FEC on.
Run once: python3 make_vector.py (writes next to this script)."""
import ctypes, math, os, struct

lib = ctypes.CDLL("libopus.so.0")
lib.opus_get_version_string.restype = ctypes.c_char_p
RATE, FRAME, VOIP = 16000, 320, 2048
SET_BITRATE, SET_INBAND_FEC = 4002, 4012

error = ctypes.c_int()
lib.opus_encoder_create.restype = ctypes.c_void_p
enc = lib.opus_encoder_create(RATE, 1, VOIP, ctypes.byref(error))
assert error.value == 0, error.value
lib.opus_encoder_ctl(ctypes.c_void_p(enc), SET_BITRATE, ctypes.c_int(24000))
lib.opus_encoder_ctl(ctypes.c_void_p(enc), SET_INBAND_FEC, ctypes.c_int(1))

out = bytearray()
n = 0
for _ in range(50):
    pcm = (ctypes.c_int16 * FRAME)(*[int(12000 * math.sin(2 * math.pi * 1000 * (n + i) / RATE)) for i in range(FRAME)])
    n += FRAME
    packet = (ctypes.c_ubyte * 1500)()
    length = lib.opus_encode(ctypes.c_void_p(enc), pcm, FRAME, packet, 1500)
    assert length > 0, length
    out += struct.pack(">H", length) + bytes(packet[:length])

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libopus-1k-16k.bin")
open(path, "wb").write(out)
print(lib.opus_get_version_string().decode(), "->", path, len(out), "bytes")
