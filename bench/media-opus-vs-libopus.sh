#!/usr/bin/env bash
# CPU per 20 ms Opus frame: our codec (opus-rs, pure Rust) against libopus (C,
# Debian libopus0, which baresip pulls in), same settings, same run: 16 kHz
# mono, VOIP, 24 kbit/s, complexity 5, in-band FEC with 10 % expected loss.
# Prints both and the ratio. Usage: bench/media-opus-vs-libopus.sh [frames]
set -euo pipefail
cd "$(dirname "$0")/.."
frames="${1:-500}"
ours=$(cargo run --quiet --release -p media --example opus_speed -- "$frames")
theirs=$(python3 - "$frames" <<'PY'
import ctypes, math, sys, time
frames = int(sys.argv[1])
lib = ctypes.CDLL("libopus.so.0")
lib.opus_get_version_string.restype = ctypes.c_char_p
lib.opus_encoder_create.restype = ctypes.c_void_p
lib.opus_decoder_create.restype = ctypes.c_void_p
err = ctypes.c_int()
enc = ctypes.c_void_p(lib.opus_encoder_create(16000, 1, 2048, ctypes.byref(err)))
dec = ctypes.c_void_p(lib.opus_decoder_create(16000, 1, ctypes.byref(err)))
for request, value in ((4002, 24000), (4010, 5), (4012, 1), (4014, 10)):  # bitrate, complexity, FEC, loss %
    lib.opus_encoder_ctl(enc, request, ctypes.c_int(value))
pcm = []
for i in range(frames):
    samples = []
    for n in range(320):
        t = (i * 320 + n) / 16000.0
        samples.append(int(8000 * math.sin(2 * math.pi * 220 * t) + 3000 * math.sin(2 * math.pi * 1330 * t + math.sin(5 * t))))
    pcm.append((ctypes.c_int16 * 320)(*samples))
packets = []
buf = (ctypes.c_ubyte * 1500)()
start = time.perf_counter()
for frame in pcm:
    n = lib.opus_encode(enc, frame, 320, buf, 1500)
    packets.append(bytes(buf[:n]))
encode = (time.perf_counter() - start) / frames
out = (ctypes.c_int16 * 1920)()
start = time.perf_counter()
for p in packets:
    lib.opus_decode(dec, p, len(p), out, 1920, 0)
decode = (time.perf_counter() - start) / frames
print(f"{lib.opus_get_version_string().decode()} encode_us={encode * 1e6:.1f} decode_us={decode * 1e6:.1f}")
PY
)
echo "$ours"
echo "$theirs"
value() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
awk -v oe="$(value encode_us "$ours")" -v od="$(value decode_us "$ours")" \
    -v te="$(value encode_us "$theirs")" -v td="$(value decode_us "$theirs")" 'BEGIN {
    printf "ratio opus-rs / libopus: encode %.1fx, decode %.1fx, frame %.1fx\n", oe / te, od / td, (oe + od) / (te + td)
    printf "calls per core on codec time alone: opus-rs %.0f, libopus %.0f\n", 20000 / (oe + od), 20000 / (te + td)
}'
