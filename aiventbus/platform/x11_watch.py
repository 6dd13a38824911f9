"""Helper process: prints `changed` each time the X11 CLIPBOARD selection changes owner (XFixes), so the clipboard
producer reads only on a change instead of polling. Run as `python -m aiventbus.platform.x11_watch`.

It runs apart from the daemon because Xlib ends the whole process when the X server goes away.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import signal
import sys

SELECTION_OWNER_NOTIFY_MASK = 1  # XFixesSetSelectionOwnerNotifyMask
SELECTION_NOTIFY = 0  # XFixesSelectionNotify, relative to the extension's event base
PR_SET_PDEATHSIG = 1


@functools.cache
def library_available() -> bool:
    """Whether libX11 and libXfixes can be loaded here."""
    return ctypes.util.find_library("X11") is not None and ctypes.util.find_library("Xfixes") is not None


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main() -> int:
    _die_with_parent()
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    xfixes = ctypes.CDLL(ctypes.util.find_library("Xfixes") or "libXfixes.so.3")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    xfixes.XFixesQueryExtension.restype = ctypes.c_int
    xfixes.XFixesQueryExtension.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    xfixes.XFixesSelectSelectionInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    display = x11.XOpenDisplay(None)
    if not display:
        print("cannot open display", file=sys.stderr, flush=True)
        return 2
    event_base, error_base = ctypes.c_int(), ctypes.c_int()
    if not xfixes.XFixesQueryExtension(display, ctypes.byref(event_base), ctypes.byref(error_base)):
        print("the X server lacks the XFIXES extension", file=sys.stderr, flush=True)
        return 3
    root = x11.XDefaultRootWindow(display)
    clipboard = x11.XInternAtom(display, b"CLIPBOARD", 0)
    xfixes.XFixesSelectSelectionInput(display, root, clipboard, SELECTION_OWNER_NOTIFY_MASK)
    x11.XFlush(display)
    print("ready", flush=True)
    event = (ctypes.c_long * 24)()  # sizeof(XEvent) on LP64
    event_type = ctypes.cast(event, ctypes.POINTER(ctypes.c_int))
    while True:
        x11.XNextEvent(display, event)  # blocks in C: no CPU while nothing is copied
        if event_type[0] == event_base.value + SELECTION_NOTIFY:
            try:
                print("changed", flush=True)
            except BrokenPipeError:
                return 0


if __name__ == "__main__":
    sys.exit(main())
