#!/usr/bin/env bash
# Checks for the system libraries thagen needs (EGL + Mesa for headless rendering, libarchive for
# model archives) and says what to install.
set -u
missing=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1" || compgen -G "/usr/lib/*/$1*" >/dev/null; }
have_lib "libEGL.so.1" || missing+=(libegl1)
have_lib "libEGL_mesa.so.0" || have_lib "libEGL_nvidia.so.0" || missing+=(libegl-mesa0)
compgen -G "/usr/lib/*/dri/swrast_dri.so" >/dev/null || compgen -G "/usr/lib/*/dri/*_dri.so" >/dev/null \
  || have_lib "libEGL_nvidia.so.0" || missing+=(libgl1-mesa-dri)
have_lib "libarchive.so.13" || missing+=(libarchive13)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "thagen needs these Debian packages (EGL for headless OpenGL, libarchive for archives):" >&2
  echo "  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
