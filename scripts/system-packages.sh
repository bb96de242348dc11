#!/usr/bin/env bash
# Debian/Ubuntu packages the app and its tests need: Qt WebEngine's X libraries, Xvfb
# and xdotool for GUI tests, a tray host, Chromium for viewer tests, sshd for tunnel
# tests (with PAM one-time codes and a private Slurm), xdg tools for file associations,
# and PyGObject's build dependencies.
# Installs only what is missing; needs root (or sudo) and apt-get.
set -euo pipefail

PACKAGES=(
  # Qt (PySide6 WebEngine) on X11
  libegl1 libgl1 libgl1-mesa-dri libglx-mesa0 libegl-mesa0 libgbm1 libxcb-cursor0
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libnss3
  libxcomposite1 libxdamage1 libxrandr2 libxtst6 libxkbfile1 libasound2 libfontconfig1
  fonts-dejavu-core libdbus-1-3
  # tray (pystray via GTK) and PyGObject's build
  trayer dbus dbus-x11 gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1
  libgirepository1.0-dev libcairo2-dev pkg-config gcc
  # GUI and browser tests
  xvfb xauth x11-utils xdotool imagemagick chromium
  # WebKitGTK, the closest engine here to macOS's WKWebView, for the viewer's WebKit tests
  gir1.2-webkit2-4.1
  # tunnel tests and file associations
  openssh-server openssh-client xdg-utils desktop-file-utils shared-mime-info
  # xdg-mime outside a desktop session asks `mimetype` (the shared MIME database, as file
  # managers do); without it, it falls back to `file`, which knows no .h5ad
  libfile-mimeinfo-perl
  # remote sign-in tests: an sshd asking for a password + one-time code (PAM with
  # pam_unix + pam_oath, codes from oathtool), and a private single-node Slurm (its own
  # munged, slurmctld and slurmd on loopback)
  libpam-oath oathtool munge slurmctld slurmd slurm-client
  # the Linux bundle build (PyInstaller's binary analysis) and `gio open` in its tests
  binutils libglib2.0-bin
  # chattr: a folder even root cannot write to, for the read-only-folder tests
  e2fsprogs
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
