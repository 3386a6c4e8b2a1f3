#!/usr/bin/env bash
# Debian packages the test suite talks to (real servers, started by the tests themselves).
# Installs only what is missing, so a second run costs nothing. binutils: PyInstaller (make binary)
# reads and strips the bundled libraries with objdump/strip. libseccomp2: the seccomp filter of
# function workers (loaded through ctypes; usually present already, systemd needs it).
# prometheus: the metrics test scrapes the server with the real Prometheus and loads the alert
# rules of deploy/observability/ (promtool checks them); the package's service is not needed.
# podman, runc, debootstrap: the container test builds and runs the Dockerfile's image (runc where
# crun refuses hybrid cgroups; debootstrap makes the debian:bookworm-slim base where no registry
# can be reached: scripts/container-base.sh). haproxy: the cluster test runs deploy/cluster/haproxy.cfg
# in front of real nodes (the package's service is not needed).
set -euo pipefail
packages=(chromium sqlite3 postgresql mariadb-server redis-server openssl curl binutils libseccomp2 prometheus podman runc debootstrap docker-registry haproxy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
