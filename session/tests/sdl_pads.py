"""The game controllers SDL2 finds on this machine, as a game sees them: one JSON object per
controller (name, SDL's controller type, vendor and product ids, its motion sensors and
touchpads), printed as a list. Run by the gamepad tests on a real kernel; SDL2 comes from
PyPI (pysdl2 with the pysdl2-dll binaries)."""

import json
import os
import sys
import time

# No udev daemon where the tests run: SDL looks at /dev/input itself.
os.environ.setdefault("SDL_JOYSTICK_DISABLE_UDEV", "1")
import sdl2  # noqa: E402

TYPES = {
    sdl2.SDL_CONTROLLER_TYPE_XBOX360: "xbox360",
    sdl2.SDL_CONTROLLER_TYPE_XBOXONE: "xboxone",
    sdl2.SDL_CONTROLLER_TYPE_PS4: "ps4",
    sdl2.SDL_CONTROLLER_TYPE_PS5: "ps5",
    sdl2.SDL_CONTROLLER_TYPE_NINTENDO_SWITCH_PRO: "switch_pro",
}

want = int(sys.argv[1]) if len(sys.argv) > 1 else 1
if sdl2.SDL_Init(sdl2.SDL_INIT_GAMECONTROLLER | sdl2.SDL_INIT_SENSOR) != 0:
    sys.exit(f"SDL_Init: {sdl2.SDL_GetError().decode()}")
# Devices are found as SDL pumps its events: wait (bounded) for the ones the test made.
deadline = time.monotonic() + 10
while sdl2.SDL_NumJoysticks() < want and time.monotonic() < deadline:
    sdl2.SDL_PumpEvents()
    time.sleep(0.05)
found = []
for i in range(sdl2.SDL_NumJoysticks()):
    if not sdl2.SDL_IsGameController(i):
        found.append({"name": sdl2.SDL_JoystickNameForIndex(i).decode(), "controller": False})
        continue
    pad = sdl2.SDL_GameControllerOpen(i)
    sdl2.SDL_PumpEvents()
    found.append({
        "name": sdl2.SDL_GameControllerName(pad).decode(),
        "controller": True,
        "type": TYPES.get(sdl2.SDL_GameControllerGetType(pad), str(sdl2.SDL_GameControllerGetType(pad))),
        "ids": [sdl2.SDL_GameControllerGetVendor(pad), sdl2.SDL_GameControllerGetProduct(pad)],
        "accel": bool(sdl2.SDL_GameControllerHasSensor(pad, sdl2.SDL_SENSOR_ACCEL)),
        "gyro": bool(sdl2.SDL_GameControllerHasSensor(pad, sdl2.SDL_SENSOR_GYRO)),
        "touchpads": sdl2.SDL_GameControllerGetNumTouchpads(pad),
        "rumble": bool(sdl2.SDL_GameControllerHasRumble(pad)),
    })
print(json.dumps(found), flush=True)
# SDL's teardown can wait on its device threads; what was asked is said.
os._exit(0)
