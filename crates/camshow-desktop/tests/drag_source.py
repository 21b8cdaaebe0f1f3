"""A file manager's side of drag and drop, for the window tests.

Shows a small GTK window at X Y whose button offers FILE as a drag source
(text/uri-list over XDND, as Nautilus, Dolphin or Thunar do), prints
"ready" once it is on the screen, and runs until it is killed.

    python3 drag_source.py X Y FILE
"""

import sys

import gi

gi.require_version("Gdk", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gdk, Gio, GLib, Gtk  # noqa: E402


def main() -> None:
    x, y, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    uri = Gio.File.new_for_path(path).get_uri()

    win = Gtk.Window(title="camshow test drag source")
    win.set_decorated(False)
    win.set_default_size(100, 60)
    win.move(x, y)
    button = Gtk.Button(label="file")
    button.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
    button.drag_source_add_uri_targets()
    button.connect("drag-data-get", lambda _w, _c, data, _i, _t: data.set_uris([uri]))
    win.add(button)
    win.connect("destroy", Gtk.main_quit)
    win.show_all()

    def ready() -> bool:
        print("ready", flush=True)
        return False

    GLib.timeout_add(300, ready)
    Gtk.main()


if __name__ == "__main__":
    main()
