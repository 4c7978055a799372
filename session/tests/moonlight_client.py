"""A stock Moonlight client (moonlight-python, which bundles moonlight-common-c) against a
running `punktfunk serve`, driven by tests/moonlight.rs. Prints one JSON object with what it
saw; the Rust test makes the assertions.

usage: moonlight_client.py PORT API_PORT CLIENT_DIR APP_TITLE [full|loss|audio|soak|beside|probe|driven|gamepad|catalog] …

`full` (the default) walks through pairing, streaming, input, resume and quit; `loss` pairs
and streams 300 frames over a lossy link, reporting what FEC recovered; `audio` pairs,
streams with sound and reports the strongest frequency the client decoded; `soak` launches
and quits for a while. For several clients at once (each its own process and identity,
coordinated through files): `beside WxHxFPS DIR` streams while others do (see
`stream_beside`); `probe` pairs and tries to take over or end the others' sessions;
`driven DIR` streams while the test types into it and marks stages (see `stream_driven`);
`gamepad DIR` plugs in a controller, presses a button and records rumble; `catalog TITLE…`
lists the apps with their box art and streams each title; `console CONSOLE_PORT PASSWORD
SHOTS` sets the web console's password in a real browser (Chromium driven by Playwright),
tries the console as an attacker would, then pairs through the page, streams while it
plots, and is removed there; `pair_only PIN` only asks to pair, showing PIN.
"""
import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import cffi
import numpy as np
import requests
import urllib3
import moonlight_python.decoder

# moonlight-python decodes with frame threads, which hold pictures back (two frames on two
# cores) and hand each one out with a newer decode unit's number and receive time. Real
# Moonlight clients decode with low delay: slice threads, one frame in, one out.
_decoder_init = moonlight_python.decoder.Decoder.__init__


def _low_delay_init(self, *args, **kwargs):
    _decoder_init(self, *args, **kwargs)
    self._codec_ctx.thread_type = "SLICE"


moonlight_python.decoder.Decoder.__init__ = _low_delay_init

# The launch key (rikey) moonlight-python draws: recorded, so the test can replay a sealed
# RTSP request under it as an attacker who captured one would.
import secrets
_token_bytes = secrets.token_bytes
drawn_keys = []


def _recorded_token_bytes(n=None):
    b = _token_bytes(n)
    drawn_keys.append(b)
    return b


secrets.token_bytes = _recorded_token_bytes
from moonlight_python import MoonlightClient
from moonlight_python.config import CODEC_MAP
from moonlight_python.discovery import connect_to_server
from moonlight_python.http_client import HARDCODED_UNIQUE_ID, NvHTTP
from moonlight_python.stream import _find_shared_lib

urllib3.disable_warnings()
HOST = "127.0.0.1"
port, api_port, client_dir, app_title = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else "full"
# The management API wants the token from the host's state directory.
with open(os.path.join(os.environ["XDG_STATE_HOME"], "punktfunk", "api-token")) as f:
    API = {"Authorization": "Bearer " + f.read().strip()}
out = {}

# The package binds only mouse motion; bind the rest of LiSend* from the same library (the
# second dlopen returns the same handle, so these act on the package's connection).
ffi = cffi.FFI()
ffi.cdef("""
int LiSendMouseButtonEvent(signed char action, int button);
int LiSendKeyboardEvent(short keyCode, signed char keyAction, signed char modifiers);
int LiSendMousePositionEvent(short x, short y, short referenceWidth, short referenceHeight);
int LiSendUtf8TextEvent(const char *text, unsigned int length);
int LiSendHighResScrollEvent(short scrollAmount);
typedef struct { uint32_t packetCountVideo, packetCountFec, packetCountFecRecovered,
  packetCountFecFailed, packetCountOOS, packetCountInvalid, packetCountFecInvalid; } RTP_VIDEO_STATS;
const RTP_VIDEO_STATS* LiGetRTPVideoStats(void);
uint64_t LiGetMicroseconds(void);
int LiSendControllerArrivalEvent(uint8_t controllerNumber, uint16_t activeGamepadMask, uint8_t type,
  uint32_t supportedButtonFlags, uint16_t capabilities);
int LiSendMultiControllerEvent(short controllerNumber, short activeGamepadMask, int buttonFlags,
  unsigned char leftTrigger, unsigned char rightTrigger, short leftStickX, short leftStickY,
  short rightStickX, short rightStickY);
int LiSendControllerMotionEvent(uint8_t controllerNumber, uint8_t motionType, float x, float y, float z);
int LiSendControllerBatteryEvent(uint8_t controllerNumber, uint8_t batteryState, uint8_t batteryPercentage);
int LiSendControllerTouchEvent(uint8_t controllerNumber, uint8_t eventType, uint32_t pointerId, float x, float y, float pressure);
""")
lib = ffi.dlopen(_find_shared_lib())

# The package leaves the controller callbacks unset: record what the host asks the pads to do.
import moonlight_python.stream as _stream
rumbles, leds, motion_requests, trigger_effects = [], [], [], []
_connection_callbacks = _stream.StreamingSession._make_connection_callbacks


def _with_rumble(self):
    cl = _connection_callbacks(self)

    @self._ffi.callback("void(unsigned short, unsigned short, unsigned short)")
    def rumble(number, low, high):
        rumbles.append([number, low, high])

    @self._ffi.callback("void(uint16_t, uint8_t, uint8_t, uint8_t)")
    def led(number, r, g, b):
        leds.append([number, r, g, b])

    @self._ffi.callback("void(uint16_t, uint8_t, uint16_t)")
    def motion(number, motion_type, rate_hz):
        motion_requests.append([number, motion_type, rate_hz])

    @self._ffi.callback("void(uint16_t, uint8_t, uint8_t, uint8_t, uint8_t *, uint8_t *)")
    def adaptive(number, flags, type_left, type_right, left, right):
        trigger_effects.append([number, flags, type_left, type_right, list(left[0:10]), list(right[0:10])])

    self._callbacks.extend([rumble, led, motion, adaptive])
    cl.rumble, cl.setControllerLED, cl.setMotionEventState = rumble, led, motion
    cl.setAdaptiveTriggers = adaptive
    return cl


_stream.StreamingSession._make_connection_callbacks = _with_rumble

# PUNKTFUNK_TEST_RFI: a decoder that takes reference frame invalidation (as Moonlight's
# software decoder and most hardware ones say): a lost frame is reported for the host to
# repair, and the client drops what follows until the repair, instead of asking for a key frame.
if os.environ.get("PUNKTFUNK_TEST_RFI"):
    _video_callbacks = _stream.StreamingSession._make_video_callbacks

    def _with_rfi(self):
        dr = _video_callbacks(self)
        dr.capabilities |= 0x2  # CAPABILITY_REFERENCE_FRAME_INVALIDATION_AVC
        return dr

    _stream.StreamingSession._make_video_callbacks = _with_rfi


def give_pin(pin, result, cli):
    """What the user does on the host, once the client waits for its PIN: `punktfunk pair
    PIN`, or the management API."""
    deadline = time.monotonic() + 30
    while not requests.get(f"http://{HOST}:{api_port}/api/v1/pairing", headers=API, timeout=5).json()["devices"]:
        assert time.monotonic() < deadline, "the client never asked to pair"
        time.sleep(0.05)
    if cli:
        r = subprocess.run([os.environ["PUNKTFUNK_BIN"], "pair", pin], capture_output=True, text=True, timeout=120)
        result["cli_rc"] = r.returncode
        result["cli_out"] = r.stdout.strip()
        return
    r = requests.post(f"http://{HOST}:{api_port}/api/v1/pin", json={"pin": pin}, headers=API, timeout=120)
    result["status"] = r.status_code
    result["body"] = r.json()


def meddle():
    """A third party on another address during a real pairing, between its stages: aborts it
    (/unpair) and sends a garbage stage, both with the client's uniqueid (a constant in
    Moonlight clients). Returns the status lines it got."""
    import socket
    answers = []
    for query in (f"unpair?uniqueid={HARDCODED_UNIQUE_ID}",
                  f"pair?uniqueid={HARDCODED_UNIQUE_ID}&devicename=roth&updateState=1&clientchallenge=00"):
        with socket.create_connection((HOST, port), timeout=10, source_address=("127.0.0.2", 0)) as s:
            s.sendall(f"GET /{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answers.append(s.recv(4096).split(b"\r\n")[0].decode())
    return answers


# Set while a pairing should be meddled with right after its first stage.
meddling = {"on": False, "answers": None}
_open_http = NvHTTP.open_http


def _open_http_meddled(self, command, arguments=None, **kwargs):
    answer = _open_http(self, command, arguments, **kwargs)
    if meddling["on"] and "phrase=getservercert" in (arguments or ""):
        meddling["answers"] = meddle()
    return answer


NvHTTP.open_http = _open_http_meddled


def pair(client, server, client_pin, host_pin, cli=False):
    result = {}
    t = threading.Thread(target=give_pin, args=(host_pin, result, cli))
    t.start()
    try:
        client.pair(server, pin=client_pin)
        result["client"] = "paired"
    except Exception as e:  # the package raises WrongPinError / PairingError
        result["client"] = type(e).__name__
    t.join()
    return result


def https_xml(client, server, path):
    """The answer to an HTTPS request made with this client's certificate."""
    cert, key = f"{client_dir}/cert.pem", f"{client_dir}/key.pem"
    r = requests.get(f"https://{HOST}:{server.https_port}/{path}", cert=(cert, key), verify=False, timeout=10)
    return ET.fromstring(r.text)


def https_status(client, server, path):
    """`status_code` of an HTTPS request made with this client's certificate."""
    return int(https_xml(client, server, path).get("status_code"))


def fingerprint():
    """What the host knows this client by: SHA-256 of its certificate."""
    import hashlib
    import ssl
    with open(f"{client_dir}/cert.pem") as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def band(frame):
    """Mean RGB of the colour band (away from the counter digits)."""
    h, w = frame.data.shape[:2]
    return [round(float(c)) for c in frame.data[h // 2 : h - 20, w // 2 : w - 20].reshape(-1, 3).mean(axis=0)]


def stamp(frame):
    """The test pattern's (counter, draw time in µs of CLOCK_MONOTONIC) read from a decoded
    picture, or None where its check bits do not match (see the test-pattern crate)."""
    data = frame.data
    cell = data.shape[1] // 64

    def row(r):
        px = data[r * cell + cell // 2, cell // 2 :: cell][:64].astype(int)
        lit = (px[:, 0] * 3 + px[:, 1] * 6 + px[:, 2]) // 10 > 128
        return int("".join("1" if b else "0" for b in lit), 2)

    # The pointer may cover the first cells: the counter comes from its inverted copy (the
    # right half), checked against the first copy's low 24 bits, and the first 8 bits of
    # the stamp are zero for centuries yet.
    bits = row(0)
    counter = ~bits & 0xFFFFFFFF
    low = (1 << 56) - 1
    return (counter, row(1) & low) if (bits >> 32) & 0xFFFFFF == counter & 0xFFFFFF else None


def bars_match(frame, counter):
    """Whether the test pattern's moving strip (`--moving`) shows frame `counter`'s bars, as
    the test-pattern crate's `bars_match` reads them: each bar's centre within 12 levels of
    its grey. A frame decoded from the wrong reference shows another frame's bars."""
    data = frame.data
    h, w = data.shape[:2]
    xs = np.arange(w // 16) * 16 + 8
    px = data[(h * 3 // 8 + h // 2) // 2, xs].astype(int)
    luma = (px[:, 0] * 3 + px[:, 1] * 6 + px[:, 2]) // 10
    want = ((xs // 16 + counter) % 8) * 32 + 16
    return bool(np.all(np.abs(luma - want) <= 12))


def rtsp_replay(key, rtsp_port):
    """Sends one sealed OPTIONS twice, as a replay would, and returns the sequence numbers of
    the two sealed answers (each checked to open under the key with that number's IV)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    import socket
    import struct
    gcm = AESGCM(key)
    plain = b"OPTIONS rtsp://127.0.0.1 RTSP/1.0\r\nCSeq: 1\r\nX-GS-ClientVersion: 14\r\n\r\n"
    iv = struct.pack("<I", 1) + bytes(6) + b"CR"
    sealed = gcm.encrypt(iv, plain, None)
    request = struct.pack(">II", 0x80000000 | len(plain), 1) + sealed[-16:] + sealed[:-16]
    seqs = []
    for _ in range(2):
        with socket.create_connection((HOST, rtsp_port), timeout=10) as s:
            s.sendall(request)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        length, seq = struct.unpack(">II", answer[:8])
        body = gcm.decrypt(struct.pack("<I", seq) + bytes(6) + b"HR", answer[24:] + answer[8:24], None)
        assert body.startswith(b"RTSP/1.0 200"), body
        seqs.append(seq)
    return seqs


def percentiles(samples):
    s = sorted(samples)
    return {"n": len(s), "p50": s[len(s) // 2], "p99": s[min(len(s) - 1, len(s) * 99 // 100)]} if s else None


def frames_until(client, want, seconds):
    """Decoded frames until the band is within 40 of `want` (RGB), or the time is up."""
    seen = []
    deadline = time.monotonic() + seconds
    for f in client.frames():
        seen.append((f.frame_number, band(f)))
        if max(abs(a - b) for a, b in zip(seen[-1][1], want)) < 40 or time.monotonic() > deadline:
            break
    return seen


def video_stats():
    s = lib.LiGetRTPVideoStats()
    return {k: getattr(s, k) for k in ("packetCountVideo", "packetCountFec", "packetCountFecRecovered", "packetCountFecFailed", "packetCountInvalid")}


client = MoonlightClient(config_dir=client_dir)
server = connect_to_server(HOST, client._identity, port)

if mode == "loss":
    out["pair"] = pair(client, server, "4321", "4321")
    client.start_stream(app=app_title, width=1280, height=720, fps=60, bitrate_kbps=10000, codec="h264",
                        output_format="rgb24", ready_timeout=30.0, record_audio=False)
    # "moving": the test pattern's moving strip is checked on every stamped picture, and the
    # longest run of pictures in a row that showed other bars than their own is reported.
    moving = len(sys.argv) > 6 and sys.argv[6] == "moving"
    numbers, decoded_at, checked, wrong, run, longest = [], [], 0, [], 0, 0
    deadline = time.monotonic() + 30
    for f in client.frames():
        numbers.append(f.frame_number)
        decoded_at.append(time.monotonic())
        drawn = stamp(f) if moving else None
        if drawn is not None:
            checked += 1
            run = 0 if bars_match(f, drawn[0]) else run + 1
            if run:
                wrong.append(f.frame_number)
            longest = max(longest, run)
        if len(numbers) >= 300 or time.monotonic() > deadline:
            break
    out["pictures_checked"], out["pictures_wrong"], out["longest_wrong_run"] = checked, wrong, longest
    out["frames"] = len(numbers)
    out["frame_gaps"] = sum(max(0, b - a - 1) for a, b in zip(numbers, numbers[1:]))
    # A frame lost beyond FEC freezes the picture until a clean one decodes (without
    # reference frame invalidation, the key frame the client asks for): how long each did.
    out["freezes_ms"] = [round((t1 - t0) * 1000, 1) for (a, t0), (b, t1) in
                         zip(zip(numbers, decoded_at), zip(numbers[1:], decoded_at[1:])) if b - a > 1]
    out["video_stats"] = video_stats()
    out["live_status"] = requests.get(f"http://{HOST}:{api_port}/api/v1/status", headers=API, timeout=5).json()
    client.stop_stream()
    client.quit_app()
    time.sleep(0.5)
    out["status"] = requests.get(f"http://{HOST}:{api_port}/api/v1/status", headers=API, timeout=5).json()
    print(json.dumps(out))
    sys.exit(0)

if mode == "soak":
    # Launch, stream a second, quit, again and again for argv[6] seconds: what a day of use
    # does to the host, in minutes.
    out["pair"] = pair(client, server, "4321", "4321")
    cycles, failures, end = 0, [], time.monotonic() + float(sys.argv[6])
    while time.monotonic() < end:
        try:
            client.start_stream(app=app_title, width=640, height=360, fps=30, bitrate_kbps=4000, codec="h264",
                                output_format="rgb24", ready_timeout=30.0, record_audio=False)
            n = 0
            for f in client.frames():
                n += 1
                if n >= 30:
                    break
            client.stop_stream()
            client.quit_app()
            cycles += 1
        except Exception as e:
            failures.append(repr(e))
            try:
                client.stop_stream()
                client.quit_app()
            except Exception:
                pass
    out["soak"] = {"cycles": cycles, "failures": failures}
    print(json.dumps(out))
    sys.exit(0)

def loudest_hz(data):
    """The strongest frequency (10 Hz bins) of each 100 ms of the last second of `data`."""
    if data.shape[0] < 48000:
        return []
    windows = data[-48000:, 0].astype(np.float64).reshape(10, 4800)
    return [float(np.argmax(s) * 10) for s in np.abs(np.fft.rfft(windows * np.hanning(4800), axis=1))]


def stream_beside(width, height, fps, signals):
    """One of several clients streaming at once: streams the app at its own mode, says so
    (`DIR/NAME.streaming`; `DIR/NAME.fingerprint` before), presses a key once `DIR/NAME.press`
    exists (waiting as many seconds as it says for the colour to flip), and streams until it
    has decoded 30 frames after `DIR/NAME.until` appeared; then quits its app and says so
    (`DIR/NAME.quit`). Reports the colours and shapes it decoded."""
    name = os.path.basename(client_dir)
    at = lambda what: os.path.join(signals, f"{name}.{what}")
    out["pair"] = pair(client, server, "4321", "4321")
    with open(at("fingerprint"), "w") as f:
        f.write(fingerprint())
    client.start_stream(app=app_title, width=width, height=height, fps=fps, bitrate_kbps=3000, codec="h264",
                        output_format="rgb24", ready_timeout=60.0, record_audio=True)
    sub, pcm, listening = client._stream_manager.subscribe_audio(), [], [True]

    def listen():
        while listening[0]:
            chunk = sub.get(timeout=0.5)
            if chunk is not None:
                pcm.append(chunk.data)

    listener = threading.Thread(target=listen)
    listener.start()
    open(at("streaming"), "w").close()
    out["band_before"] = frames_until(client, [999, 999, 999], 1)[-1][1]
    bands, shapes, frames, after, pressed = [], set(), 0, 0, False
    deadline = time.monotonic() + 300
    for f in client.frames():
        frames += 1
        shapes.add(tuple(f.data.shape))
        if frames % 5 == 0:
            bands.append(band(f))
        if not pressed and os.path.exists(at("press")):
            pressed = True
            out["send_key"] = [lib.LiSendKeyboardEvent(0x41, 0x03, 0), lib.LiSendKeyboardEvent(0x41, 0x04, 0)]
            with open(at("press")) as f:
                wait = float(f.read() or "10")
            flipped = frames_until(client, [255 - c for c in out["band_before"]], wait)
            out["band_after_key"] = flipped[-1][1]
            open(at("pressed"), "w").close()
        if os.path.exists(at("until")):
            after += 1
        if after >= 30 or time.monotonic() > deadline:
            break
    listening[0] = False
    listener.join()
    client._stream_manager.unsubscribe_audio(sub)
    out.update(frames=frames, frames_after_until=after, bands=bands, shapes=sorted(shapes), video_stats=video_stats())
    out["audio_hz"] = loudest_hz(np.concatenate(pcm) if pcm else np.zeros((0, 2), dtype=np.float32))
    client.stop_stream()
    client.quit_app()
    open(at("quit"), "w").close()


def stream_driven(signals):
    """A stream the test drives through files (a login, attach mode): streams while it types what the test puts
    in `DIR/type` (each line, then Enter; the file is removed once typed), notes how many
    frames it had when `DIR/mark` names a stage (removed once noted), and stops when
    `DIR/stop` appears (quitting the app) or the host ends the stream. Reports the frame
    numbers' order, the marks (and the sound's frequencies in the second before each), the
    colours seen (every fifth frame's, and when, on CLOCK_MONOTONIC, the colour changed) and
    the longest wait for a frame (the hand-overs between processes)."""
    at = lambda what: os.path.join(signals, what)
    out["pair"] = pair(client, server, "4321", "4321")
    client.start_stream(app=app_title, width=640, height=360, fps=30, bitrate_kbps=3000, codec="h264",
                        output_format="rgb24", ready_timeout=60.0, record_audio=True)
    numbers, bands, marks, heard, deadline = [], [], {}, {}, time.monotonic() + 300
    last, gap, changes, previous = time.monotonic(), 0.0, [], None
    sub, sound, pcm, listening = client._stream_manager.subscribe(), client._stream_manager.subscribe_audio(), [], [True]

    def listen():
        while listening[0]:
            chunk = sound.get(timeout=0.5)
            if chunk is not None:
                pcm.append(chunk.data)

    listener = threading.Thread(target=listen)
    listener.start()
    while time.monotonic() < deadline and not os.path.exists(at("stop")) and not client._session.is_terminated:
        # Typing and marks are answered whether or not frames come (a still screen).
        f = sub.get(timeout=0.5)
        now = time.monotonic()
        if f is not None:
            gap, last = max(gap, now - last), now
            numbers.append(f.frame_number)
            colour = band(f)
            if len(numbers) % 5 == 1:
                bands.append(colour)
            if previous is None or max(abs(a - b) for a, b in zip(colour, previous)) > 60:
                changes.append([round(now, 3), colour])
            previous = colour
        if os.path.exists(at("type")):
            with open(at("type")) as t:
                lines = t.read().splitlines()
            for line in lines:
                text = line.encode()
                lib.LiSendUtf8TextEvent(text, len(text))
                lib.LiSendKeyboardEvent(0x0D, 0x03, 0)
                lib.LiSendKeyboardEvent(0x0D, 0x04, 0)
            os.remove(at("type"))
        if os.path.exists(at("mark")):
            with open(at("mark")) as m:
                name = m.read().strip()
            marks[name] = len(numbers)
            # The strongest frequency of each 100 ms of the last second heard.
            heard[name] = loudest_hz(np.concatenate(pcm) if pcm else np.zeros((0, 2), dtype=np.float32))
            os.remove(at("mark"))
    listening[0] = False
    listener.join()
    client._stream_manager.unsubscribe_audio(sound)
    client._stream_manager.unsubscribe(sub)
    out.update(frames=len(numbers), numbers_rise=all(b > a for a, b in zip(numbers, numbers[1:])), marks=marks,
               longest_gap_ms=round(gap * 1000), bands=bands, heard=heard, terminated=client._session.is_terminated,
               colour_changes=changes,
               video_stats=video_stats())
    client.stop_stream()
    if not out["terminated"]:
        client.quit_app()


if mode == "driven":
    stream_driven(sys.argv[6])
    print(json.dumps(out))
    sys.exit(0)

if mode == "beside":
    w, h, fps = (int(v) for v in sys.argv[6].split("x"))
    stream_beside(w, h, fps, sys.argv[7])
    print(json.dumps(out))
    sys.exit(0)

if mode == "probe":
    # A paired client while the host streams as many sessions as it allows: its launch is
    # refused as busy, and the others' sessions are not its to resume or end.
    out["pair"] = pair(client, server, "4321", "4321")
    key = "rikey=00112233445566778899aabbccddeeff&rikeyid=1"
    out["currentgame"] = int(https_xml(client, server, "serverinfo?uniqueid=0123456789ABCDEF").findtext("currentgame"))
    out["launch"] = https_status(client, server, f"launch?uniqueid=0123456789ABCDEF&appid=1&mode=640x360x30&{key}&corever=1")
    out["resume"] = https_status(client, server, f"resume?uniqueid=0123456789ABCDEF&{key}&corever=1")
    out["cancel"] = https_status(client, server, "cancel?uniqueid=0123456789ABCDEF")
    out["status"] = requests.get(f"http://{HOST}:{api_port}/api/v1/status", headers=API, timeout=5).json()
    # Permissions, kept with the client: the apps it may launch and see, and whether it may
    # act on others' sessions (then it sees the oldest one as its current game).
    permit = lambda p: requests.put(f"http://{HOST}:{api_port}/api/v1/clients/{fingerprint()}/permissions", json=p,
                                    headers=API, timeout=5).status_code
    out["permit_unknown_app"] = permit({"apps": ["Nope"]})
    out["permit"] = permit({"apps": ["Blue"], "view_only": False, "others": True})
    out["apps_permitted"] = [a.name for a in client.apps()]
    out["currentgame_others"] = int(https_xml(client, server, "serverinfo?uniqueid=0123456789ABCDEF").findtext("currentgame"))
    out["launch_forbidden"] = https_status(client, server, f"launch?uniqueid=0123456789ABCDEF&appid=4&mode=640x360x30&{key}")
    permit({})
    print(json.dumps(out))
    sys.exit(0)

if mode == "gamepad":
    # A controller, as a Moonlight client with an Xbox pad in hand: it arrives (`DIR/arrived`
    # once sent), then, when `DIR/press` appears, A is pressed and released 20 times, 50 ms
    # apart, each call's CLOCK_MONOTONIC time kept (`DIR/pressed` after); the rumble the
    # host sends back is recorded until `DIR/stop`.
    signals = sys.argv[6]
    at = lambda what: os.path.join(signals, what)

    def wait_for(what, limit=120):
        deadline = time.monotonic() + limit
        while not os.path.exists(at(what)):
            assert time.monotonic() < deadline, f"never told to {what}"
            time.sleep(0.02)

    out["pair"] = pair(client, server, "4321", "4321")
    client.start_stream(app=app_title, width=320, height=180, fps=30, bitrate_kbps=1000, codec="h264",
                        output_format="rgb24", ready_timeout=120.0, record_audio=False)
    # Xbox (1), analog triggers and rumble, all buttons; then what else the pad reports.
    out["arrival"] = lib.LiSendControllerArrivalEvent(0, 1, 1, 0xffff, 0x03)
    out["battery"] = lib.LiSendControllerBatteryEvent(0, 2, 80)
    out["motion"] = lib.LiSendControllerMotionEvent(0, 1, 0.0, 9.8, 0.0)
    open(at("arrived"), "w").close()
    wait_for("press")
    sent = []
    for i in range(40):
        sent.append(time.monotonic())
        lib.LiSendMultiControllerEvent(0, 1, 0x1000 if i % 2 == 0 else 0, 0, 0, 0, 0, 0, 0)
        time.sleep(0.05)
    out["sent"] = sent
    open(at("pressed"), "w").close()
    # A DualSense as the second pad: once the host asks for its motion readings, a gyro turn
    # and a finger on its touchpad (`DIR/ps-sent` after); the trigger effects a game sets.
    wait_for("dualsense")
    out["ps_arrival"] = lib.LiSendControllerArrivalEvent(1, 3, 2, 0x1fffff, 0xff)
    deadline = time.monotonic() + 60
    while not any(m[0] == 1 for m in motion_requests):
        assert time.monotonic() < deadline, "the host never asked for motion readings"
        time.sleep(0.02)
    out["ps_motion"] = lib.LiSendControllerMotionEvent(1, 2, 90.0, 0.0, 0.0)
    out["ps_touch"] = lib.LiSendControllerTouchEvent(1, 1, 0, 0.5, 0.25, 1.0)
    with open(at("ps-sent"), "w") as f:
        json.dump({k: out[k] for k in ("ps_arrival", "ps_motion", "ps_touch")}, f)
    # A game sets the DualSense's adaptive triggers: the host passes them on (`DIR/triggers`
    # once they came).
    deadline = time.monotonic() + 60
    while not trigger_effects:
        assert time.monotonic() < deadline, "no adaptive trigger effects came"
        time.sleep(0.02)
    open(at("triggers"), "w").close()
    wait_for("stop")
    out["rumbles"], out["leds"], out["motion_requests"] = list(rumbles), list(leds), list(motion_requests)
    out["trigger_effects"] = list(trigger_effects)
    client.stop_stream()
    client.quit_app()
    print(json.dumps(out))
    sys.exit(0)

if mode == "catalog":
    # The app list as Moonlight gets it, each app's box art, then a stream of each title
    # named after the mode: the colour it shows.
    out["pair"] = pair(client, server, "4321", "4321")
    listed = https_xml(client, server, "applist?uniqueid=0123456789ABCDEF")
    out["apps"] = {a.findtext("AppTitle"): int(a.findtext("ID")) for a in listed.iter("App")}
    out["art"] = {}
    for title, app_id in out["apps"].items():
        r = requests.get(f"https://{HOST}:{server.https_port}/appasset?uniqueid=0123456789ABCDEF&appid={app_id}&AssetType=2&AssetIdx=0",
                         cert=(f"{client_dir}/cert.pem", f"{client_dir}/key.pem"), verify=False, timeout=10)
        out["art"][title] = {"status": r.status_code, "type": r.headers.get("content-type"), "bytes": r.content.hex()}
    out["bands"] = {}
    for title in sys.argv[6:]:
        client.start_stream(app=title, width=640, height=360, fps=30, bitrate_kbps=3000, codec="h264",
                            output_format="rgb24", ready_timeout=30.0, record_audio=False)
        out["bands"][title] = frames_until(client, [999, 999, 999], 1)[-1][1]
        client.stop_stream()
        client.quit_app()
    print(json.dumps(out))
    sys.exit(0)

def console_requests(console_port, source):
    """A raw HTTPS client of the console from `source` (another 127/8 address: another
    machine as the host sees it): (status, headers, body) of each request."""
    import http.client
    import ssl

    def send(method, path, body=None, headers=None):
        c = http.client.HTTPSConnection(HOST, console_port, context=ssl._create_unverified_context(),
                                        source_address=(source, 0), timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        answer = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        c.close()
        return answer
    return send


def console_hostile(console_port, password):
    """What a browser never sends, and a stranger guessing: each answer's status."""
    import re
    from urllib.parse import quote
    origin = f"https://{HOST}:{console_port}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    guess = console_requests(console_port, "127.0.0.2")
    h = {"api_without_login": guess("GET", "/api/v1/clients")[0],
         "login_from_another_site": guess("POST", "/login", "password=x", {**form, "Origin": "https://evil.example"})[0],
         "login_without_origin": guess("POST", "/login", "password=x", form)[0],
         "wrong_passwords": [guess("POST", "/login", "password=wrong-guess", {**form, "Origin": origin})[0] for _ in range(6)]}
    h["right_password_while_waiting"] = guess("POST", "/login", "password=" + quote(password), {**form, "Origin": origin})[0]
    me = console_requests(console_port, "127.0.0.3")
    status, headers, _ = me("POST", "/login", "password=" + quote(password), {**form, "Origin": origin})
    h["login"], h["set_cookie"] = status, headers.get("set-cookie", "")
    cookie = h["set_cookie"].split(";")[0]
    _, headers, page = me("GET", "/", headers={"Cookie": cookie})
    h["page_headers"] = {k: headers.get(k) for k in ("content-security-policy", "x-frame-options", "x-content-type-options")}
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.decode()).group(1)
    api = {"Cookie": cookie, "Origin": origin, "Content-Type": "application/json"}
    name = "/api/v1/clients/abcdef/name"
    h["change_without_csrf"] = me("PUT", name, '{"name":"x"}', api)[0]
    h["change_with_a_wrong_csrf"] = me("PUT", name, '{"name":"x"}', {**api, "X-CSRF-Token": "0" * 32})[0]
    h["change_from_another_site"] = me("PUT", name, '{"name":"x"}', {**api, "X-CSRF-Token": csrf, "Origin": "https://evil.example"})[0]
    h["bad_json"] = me("PUT", name, '{"name":', {**api, "X-CSRF-Token": csrf})[0]
    h["oversized_body"] = me("PUT", name, json.dumps({"name": "x" * 100_000}), {**api, "X-CSRF-Token": csrf})[0]
    h["control_characters"] = me("PUT", name, '{"name":"a\\u0007b"}', {**api, "X-CSRF-Token": csrf})[0]
    h["unknown_client"] = me("PUT", name, '{"name":"x"}', {**api, "X-CSRF-Token": csrf})[0]
    # A body that never comes holds its connection only so long.
    import socket
    import ssl
    raw = ssl._create_unverified_context().wrap_socket(socket.create_connection((HOST, console_port), source_address=("127.0.0.4", 0)))
    raw.sendall(f"POST /login HTTP/1.1\r\nHost: {HOST}:{console_port}\r\nOrigin: {origin}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\npass".encode())
    raw.settimeout(30)
    started = time.monotonic()
    h["trickled_body"] = raw.recv(4096).split(b"\r\n")[0].decode()
    h["trickled_body_held_s"] = round(time.monotonic() - started)
    raw.close()
    h["logout"] = me("POST", "/logout", "", {"Cookie": cookie, "Origin": origin})[0]
    h["api_after_logout"] = me("GET", "/api/v1/clients", headers={"Cookie": cookie})[0]
    return h


def until(read, done, page, seconds=30):
    """`read()` once `done` says so, read again as the page goes on (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    while not done(value := read()):
        assert time.monotonic() < deadline, f"still {value!r}"
        page.wait_for_timeout(200)
    return value


def console_browser(console_port, password, shots):
    """The user's way: Chromium logs in, a Moonlight client asks to pair and the PIN goes in
    through the page, the client is listed and renamed, its stream plotted live, and it is
    removed, after which the host refuses it."""
    from playwright.sync_api import sync_playwright
    os.makedirs(shots, exist_ok=True)
    b = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("PUNKTFUNK_CHROMIUM", "/usr/bin/chromium"),
                                    args=["--no-sandbox"])
        page = browser.new_context(ignore_https_errors=True, viewport={"width": 900, "height": 1100}).new_page()
        shot = lambda name: page.screenshot(path=os.path.join(shots, name + ".png"), full_page=True)
        try:
            console_steps(page, shot, console_port, password, b)
        except Exception:
            shot("failed")
            print("the page when it failed:", page.url, page.inner_text("body"), file=sys.stderr)
            raise
        browser.close()
    return b


def png_size(png):
    """(width, height) from a PNG's header."""
    return [int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")] if png[:8] == b"\x89PNG\r\n\x1a\n" else None


def console_steps(page, shot, console_port, password, b):
    """The browser's steps (see `console_browser`), what it saw into `b`."""
    import re
    from playwright.sync_api import expect
    # First use, on the host itself: the page asks for a password to set.
    page.goto(f"https://{HOST}:{console_port}/")
    page.fill('input[name="password"]', password)
    page.fill('input[name="again"]', password)
    shot("0-set-password")
    page.click('button[type="submit"]')
    page.wait_for_selector("#pairing")
    shot("1-logged-in")
    b["hostile"] = console_hostile(console_port, password)
    paired = {}

    def pair_with_pin():
        try:
            client.pair(server, pin="5678")
            paired["client"] = "paired"
        except Exception as e:
            paired["client"] = type(e).__name__
    t = threading.Thread(target=pair_with_pin)
    t.start()
    page.wait_for_selector("#waiting li.device", timeout=30_000)
    b["waiting"] = page.inner_text("#waiting li.device .name")
    shot("2-device-waits")
    page.fill('#waiting input[name="pin"]', "5678")
    page.click("#waiting button")
    # Locators and CDP evaluation, not wait_for_function: the page's policy forbids eval.
    expect(page.locator("#pair-result")).to_have_text(re.compile("^Paired"), timeout=60_000)
    t.join(60)
    b["pair_result"], b["client"] = page.inner_text("#pair-result"), paired.get("client")
    page.wait_for_selector("#client-list li.client", timeout=10_000)
    b["listed"] = page.input_value("#client-list li.client input")
    page.fill("#client-list li.client input", "Living room TV")
    page.click("#client-list li.client form.rename button")
    names = "fetch('/api/v1/clients').then(r => r.json()).then(l => l.map(c => c.name))"
    b["renamed"] = until(lambda: page.evaluate(names), lambda n: "Living room TV" in n, page)
    page.wait_for_selector('#client-list li.client[data-name="Living room TV"]', timeout=10_000)
    # What it may do: view only, and only the app it is about to stream.
    page.click("#client-list li.client details.permissions summary")
    page.check('#client-list li.client input[name="view_only"]')
    page.uncheck('#client-list li.client input[name="every_app"]')
    page.locator("#client-list li.client fieldset.apps label", has_text=app_title).locator("input").check()
    shot("2b-permissions")
    page.click("#client-list li.client form.permissions button")
    permissions = "fetch('/api/v1/clients').then(r => r.json()).then(l => l[0].permissions)"
    b["permissions"] = until(lambda: page.evaluate(permissions), lambda p: p["view_only"], page)
    checks = page.locator("#check-list li.check")
    expect(checks.first).to_be_visible(timeout=30_000)
    b["health"] = [checks.nth(i).inner_text() for i in range(checks.count())]
    logged_in = page.locator("#log-lines .line", has_text="console: logged in")
    expect(logged_in.first).to_be_attached(timeout=10_000)
    b["log"] = {"logins": logged_in.count(),
                "guesses": page.locator("#log-lines .line", has_text="console: wrong password").count()}
    # The catalog: an app added, tried (it starts), renamed and moved up, all in the page.
    add = page.locator("#add-app")
    add.locator('input[name="title"]').fill("Clock")
    add.locator('input[name="command"]').fill("sleep 60")
    # Box art from the phone's gallery: a picture larger than Moonlight's poster.
    picture = page.screenshot()
    add.locator('input[name="art"]').set_input_files(files=[{"name": "clock.png", "mimeType": "image/png", "buffer": picture}])
    add.locator("button").click()
    clock = page.locator('#app-list li.app[data-title="Clock"]')
    expect(clock).to_be_visible(timeout=10_000)
    size = "(img) => img.complete && img.naturalWidth ? [img.naturalWidth, img.naturalHeight] : null"
    b["uploaded"] = png_size(picture)
    b["clock_art"] = until(lambda: clock.locator("img.art").evaluate(size), lambda s: s, page)
    # The app the client streams gets art too: Moonlight shows it in its list.
    listed = page.locator(f'#app-list li.app[data-title="{app_title}"]')
    listed.locator('input[name="art"]').set_input_files(files=[{"name": "game.png", "mimeType": "image/png", "buffer": picture}])
    listed.locator('button[type="submit"]').click()
    until(lambda: listed.locator("img.art").evaluate(size), lambda s: s, page)
    app_id = page.evaluate(f"fetch('/api/v1/apps').then(r => r.json()).then(l => l.find(a => a.title === {json.dumps(app_title)}).id)")
    r = requests.get(f"https://{HOST}:{server.https_port}/appasset?uniqueid=0123456789ABCDEF&appid={app_id}&AssetType=2&AssetIdx=0",
                     cert=(f"{client_dir}/cert.pem", f"{client_dir}/key.pem"), verify=False, timeout=10)
    b["appasset"] = {"status": r.status_code, "type": r.headers.get("content-type"), "size": png_size(r.content)}
    clock.locator("button.test").click()
    expect(clock.locator('[role="status"]')).to_have_text("started", timeout=60_000)
    clock.locator('input[name="title"]').fill("Green clock")
    clock.locator('button[type="submit"]').click()
    green = page.locator('#app-list li.app[data-title="Green clock"]')
    expect(green).to_be_visible(timeout=10_000)
    green.locator("button.up").click()
    expect(page.locator("#app-list li.app").nth(1)).to_have_attribute("data-title", "Green clock", timeout=10_000)
    shot("2c-apps")
    green.locator("button.remove-art").click()
    expect(green.locator("span.art.none")).to_be_visible(timeout=10_000)
    b["art_removed"] = True
    b["apps"] = page.evaluate("fetch('/api/v1/apps').then(r => r.json()).then(l => l.map(a => [a.title, a.command]))")
    client.start_stream(app=app_title, width=640, height=360, fps=30, bitrate_kbps=3000, codec="h264",
                        output_format="rgb24", ready_timeout=60.0, record_audio=False)
    streaming = [True]

    def watch():
        for _ in client.frames():
            if not streaming[0]:
                break
    watcher = threading.Thread(target=watch)
    watcher.start()
    page.wait_for_selector("#session-list canvas.plot.rate", timeout=30_000)
    points = lambda: int(page.get_attribute("#session-list canvas.plot.rate", "data-points"))
    first = points()
    b["plot_points"] = [first, until(points, lambda n: n >= first + 3, page)]
    b["session"] = page.inner_text("#session-list article.session")
    shot("3-session-plotted")
    streaming[0] = False
    watcher.join(30)
    client.stop_stream()
    remove = "#client-list li.client button.danger"
    page.click(remove)
    b["remove_asks"] = page.inner_text(remove)
    page.click(remove)
    page.wait_for_selector("#no-clients:not([hidden])", timeout=10_000)
    shot("4-removed")
    b["after_removal"] = https_status(client, server, "applist?uniqueid=0123456789ABCDEF")
    # A new password set on the host's command line ends the browser's login.
    r = subprocess.run([os.environ["PUNKTFUNK_BIN"], "console-password"], input=password + "!\n", capture_output=True,
                       text=True, timeout=60)
    b["cli_password"] = r.returncode
    page.reload()
    page.wait_for_selector('input[name="password"]', timeout=10_000)
    b["logged_out_by_new_password"] = True
    page.fill('input[name="password"]', password + "!")
    page.click('button[type="submit"]')
    page.wait_for_selector("#pairing")
    page.click("form.logout button")
    page.wait_for_selector('input[name="password"]', timeout=10_000)
    b["logged_out"] = True


if mode == "pair_only":
    # Asks to pair showing PIN and waits for the user to enter it wherever the test has them.
    try:
        client.pair(server, pin=sys.argv[6])
        out["pair"] = "paired"
    except Exception as e:
        out["pair"] = type(e).__name__
    print(json.dumps(out))
    sys.exit(0)

if mode == "console":
    console_port, password, shots = int(sys.argv[6]), sys.argv[7], sys.argv[8]
    out["browser"] = console_browser(console_port, password, shots)
    out["hostile"] = out["browser"].pop("hostile", None)
    print(json.dumps(out))
    sys.exit(0)

if mode == "audio":
    out["pair"] = pair(client, server, "4321", "4321")
    client.start_stream(app=app_title, width=640, height=360, fps=30, bitrate_kbps=4000, codec="h264",
                        output_format="rgb24", ready_timeout=30.0, record_audio=True)
    sub = client._stream_manager.subscribe_audio()
    pcm, deadline = [], time.monotonic() + 20
    # A second of the session's silence, then the app is told to start its tone, and the
    # first audible chunk's arrival is its onset here (µs of CLOCK_REALTIME).
    trigger, onset_us, silent_until = os.environ.get("PUNKTFUNK_TEST_ONSET_TRIGGER"), None, time.monotonic() + 1.0
    # Two seconds of sound (the client itself discards the first 500 ms it receives).
    while sum(len(c) for c in pcm) < 2 * 48000 and time.monotonic() < deadline:
        if trigger and time.monotonic() > silent_until and not os.path.exists(trigger):
            open(trigger, "w").close()
        chunk = sub.get(timeout=1.0)
        if chunk is None:
            continue
        if onset_us is None and float(np.abs(chunk.data).max(initial=0.0)) > 0.1:
            onset_us = time.time_ns() // 1000
        if onset_us is not None or not trigger:
            pcm.append(chunk.data)
    client._stream_manager.unsubscribe_audio(sub)
    data = np.concatenate(pcm) if pcm else np.zeros((0, 2), dtype=np.float32)
    out["audio"] = {"samples": int(data.shape[0]), "channels": int(data.shape[1]) if data.ndim == 2 else 0}
    if data.shape[0] >= 48000:
        # Per 100 ms window, so a scheduling hiccup on a loaded machine spoils one window,
        # not the verdict.
        out["audio"]["window_hz"] = loudest_hz(data)
        out["audio"]["first_hz"] = float(np.argmax(np.abs(np.fft.rfft(data[:4800, 0].astype(np.float64) * np.hanning(4800)))) * 10)
        out["audio"]["rms"] = float(np.sqrt(np.mean(data[-48000:, 0].astype(np.float64) ** 2)))
    out["audio"]["lost_packets"] = client._session._audio_lost_packets
    out["audio"]["onset_us"] = onset_us
    client.stop_stream()
    client.quit_app()
    time.sleep(0.5)
    out["status"] = requests.get(f"http://{HOST}:{api_port}/api/v1/status", headers=API, timeout=5).json()
    print(json.dumps(out))
    sys.exit(0)

out["serverinfo"] = {"appversion": server.app_version, "codecs": server.server_codec_mode_support, "paired": server.paired}

# An unpaired client gets nowhere: no app list, no launch.
out["unpaired_applist"] = https_status(client, server, "applist?uniqueid=0123456789ABCDEF")
out["unpaired_launch"] = https_status(client, server, "launch?uniqueid=0123456789ABCDEF&appid=1&mode=1280x720x60&rikey=00112233445566778899aabbccddeeff&rikeyid=1")

# A wrong PIN fails on both sides, then the right one pairs.
out["wrong_pin"] = pair(client, server, "1111", "2222")
# The right one pairs, though a third party tries to abort it between its stages.
meddling["on"] = True
out["right_pin"] = pair(client, server, "4321", "4321", cli="PUNKTFUNK_BIN" in os.environ)
meddling["on"] = False
out["meddled"] = meddling["answers"]
out["paired_serverinfo"] = https_status(client, server, "serverinfo?uniqueid=0123456789ABCDEF")
out["apps"] = [a.name for a in client.apps()]

# Launch and stream: start_stream returns once a decoded frame is not black.
t0 = time.monotonic()
client.start_stream(app=app_title, width=1280, height=720, fps=60, bitrate_kbps=10000, codec="h264",
                    output_format="rgb24", ready_timeout=30.0, record_audio=False)
out["launch_to_first_frame_ms"] = round((time.monotonic() - t0) * 1000)
# Latency from the app's draw (the pattern's stamp, CLOCK_MONOTONIC) to the decoded picture,
# and to the frame's first datagram reaching the client (on loopback: leaving the host).
# moonlight-common-c stamps that arrival on its own clock (microseconds since it started):
# read against CLOCK_MONOTONIC at once, it converts.


def latency_of(want):
    """Reads `want` frames: their (number, band), the latency figures of those stamped, and
    the last one's shape."""
    seen, to_decoded, to_first_datagram, shape = [], [], [], None
    for f in client.frames():
        now_us = time.monotonic_ns() // 1000
        common_c_to_monotonic = now_us - lib.LiGetMicroseconds()
        seen.append((f.frame_number, band(f)))
        shape = list(f.data.shape)
        drawn = stamp(f)
        if drawn:
            to_decoded.append(now_us - drawn[1])
            to_first_datagram.append(f.receive_time_us + common_c_to_monotonic - drawn[1])
        if len(seen) >= want:
            break
    # The whole stream, and after its first 30 frames (the first key frame, the encoder's
    # and the app's start).
    return seen, {"draw_to_decoded": percentiles(to_decoded), "draw_to_first_datagram": percentiles(to_first_datagram),
                  "after_30_frames": {"draw_to_decoded": percentiles(to_decoded[30:]),
                                      "draw_to_first_datagram": percentiles(to_first_datagram[30:])}}, shape


frames, out["latency_us"], _ = latency_of(90)
out["frames"] = len(frames)
# The launch key is one of the 16-byte draws of this launch (the newest that opens).
for key in reversed([k for k in drawn_keys if len(k) == 16]):
    try:
        out["rtsp_replay_seqs"] = rtsp_replay(key, port + 21)
        break
    except Exception as e:
        out["rtsp_replay_error"] = repr(e)
out["frame_numbers"] = [n for n, _ in frames]
out["band_before"] = frames[-1][1]

# Input through the real client library: a key press flips the band to the complement
# colour, a click flips it back; text, pointer position and scroll land in the app's log.
want_flipped = [255 - c for c in out["band_before"]]
# moonlight-qt sets bit 0x8000 on key codes (a negative short here); the host masks it.
vk_a = 0x8041 - 0x10000
out["send_key"] = [lib.LiSendKeyboardEvent(vk_a, 0x03, 0), lib.LiSendKeyboardEvent(vk_a, 0x04, 0)]
after_key = frames_until(client, want_flipped, 5)
out["band_after_key"] = after_key[-1][1]
out["send_click"] = [lib.LiSendMouseButtonEvent(0x07, 1), lib.LiSendMouseButtonEvent(0x08, 1)]
after_click = frames_until(client, out["band_before"], 5)
out["band_after_click"] = after_click[-1][1]
text = "hi".encode()
out["send_more"] = [lib.LiSendMousePositionEvent(640, 360, 1279, 719), lib.LiSendUtf8TextEvent(text, len(text)), lib.LiSendHighResScrollEvent(-120)]
time.sleep(1.0)
out["video_stats"] = video_stats()

# Leave without quitting (Moonlight's "disconnect"): the app keeps running, and starting the
# same app again resumes it (/resume) with fresh keys, here from a smaller screen.
client.stop_stream()
out["currentgame_after_leave"] = connect_to_server(HOST, client._identity, port).current_game
t0 = time.monotonic()
client.start_stream(app=app_title, width=1024, height=576, fps=30, bitrate_kbps=6000, codec="h264",
                    output_format="rgb24", ready_timeout=30.0, record_audio=False)
out["resume_first_frame_ms"] = round((time.monotonic() - t0) * 1000)
# The same latency figures at 30 fps, over the first 90 frames after the resume.
resumed, out["latency_us_30fps"], out["resume_shape"] = latency_of(90)
out["frames_after_resume"] = len(resumed)

# Quit: the session is torn down and the host says so.
client.stop_stream()
client.quit_app()
out["currentgame_after_quit"] = connect_to_server(HOST, client._identity, port).current_game
time.sleep(0.5)
out["status_after_quit"] = requests.get(f"http://{HOST}:{api_port}/api/v1/status", headers=API, timeout=5).json()

# An app that exits by itself ends the stream, and the client is told so (a graceful
# termination, not a timeout).
client.start_stream(app="Short", width=1280, height=720, fps=60, bitrate_kbps=10000, codec="h264",
                    output_format="rgb24", ready_timeout=30.0, record_audio=False)
t0 = time.monotonic()
# (Not through frames(): moonlight-python's frame wait is not woken by a termination.)
while not client._session.is_terminated and time.monotonic() - t0 < 20:
    time.sleep(0.1)
out["short_app"] = {"terminated": client._session.is_terminated, "error": client._session.termination_error,
                    "seconds": round(time.monotonic() - t0, 1)}
client.stop_stream()
out["currentgame_after_exit"] = connect_to_server(HOST, client._identity, port).current_game


def stream_pattern(codec, formats):
    """Streams the Pattern app asking for `formats` (VIDEO_FORMAT_* bits) as `codec`: what
    the client decoded."""
    CODEC_MAP[codec] = formats
    client.start_stream(app="Pattern", width=640, height=360, fps=30, bitrate_kbps=4000, codec=codec,
                        output_format="rgb24", ready_timeout=30.0, record_audio=False)
    seen = frames_until(client, out["band_before"], 10)
    ctx = client._decoder._codec_ctx
    status = requests.get(f"http://{HOST}:{api_port}/api/v1/status", headers=API, timeout=5).json()
    got = {"codec": ctx.name, "pix_fmt": ctx.pix_fmt, "profile": ctx.profile, "frames": len(seen),
           "band": seen[-1][1], "video_stats": video_stats(), "host_says": (status["sessions"] or [{}])[0].get("video")}
    client.stop_stream()
    return got


# What Moonlight asks for with its HDR switch (HEVC Main10), with "YUV 4:4:4" (H.264 High
# 4:4:4), and AV1, from a host that offers them. FFmpeg's own AV1 decoder wants a GPU:
# dav1d decodes here.
offered = server.server_codec_mode_support
if offered & 0x200:
    out["main10"] = stream_pattern("hevc", 0x0100 | 0x0200)  # VIDEO_FORMAT_H265 | _H265_MAIN10
if offered & 0x40000:
    out["yuv444"] = stream_pattern("h264", 0x0001 | 0x0004)  # VIDEO_FORMAT_H264 | _H264_HIGH8_444
if offered & 0x10000:
    moonlight_python.decoder.CODEC_NAMES["av1"] = "libdav1d"
    out["av1"] = stream_pattern("av1", 0x1000)  # VIDEO_FORMAT_AV1_MAIN8
if any(k in out for k in ("main10", "yuv444", "av1")):
    client.quit_app()


def launch_answer(app_id):
    """What /launch answers for an app that cannot run (its status and message)."""
    x = https_xml(client, server, f"launch?uniqueid=0123456789ABCDEF&appid={app_id}&mode=640x360x30"
                                  "&rikey=00112233445566778899aabbccddeeff&rikeyid=1&corever=1")
    return {"status": int(x.get("status_code")), "message": x.get("status_message")}


# Apps that cannot run: the launch says why, and leaves nothing running.
out["missing_launch"] = launch_answer(out["apps"].index("Missing") + 1)
out["quitter_launch"] = launch_answer(out["apps"].index("Quitter") + 1)
out["currentgame_after_failures"] = int(https_xml(client, server, "serverinfo").findtext("currentgame"))
print(json.dumps(out))
