#!/usr/bin/env bash
# Install and start the system parts the test suite needs, when missing:
# PostgreSQL and Redis on 127.0.0.1, Chromium for the browser tests, and
# for deployments the Docker engine, the registry, buildah, htpasswd and
# busybox-static (the base image's root filesystem). Safe to run again and
# again.
set -euo pipefail

say() { printf 'provision: %s\n' "$*"; }

if ! command -v apt-get >/dev/null 2>&1; then
  missing=()
  command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 || missing+=("PostgreSQL 15+ listening on 127.0.0.1:5432 with a 'postgres' role")
  command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || missing+=("Redis 7 listening on 127.0.0.1:6379")
  [ -x /usr/bin/chromium ] || missing+=("Chromium at /usr/bin/chromium (or set CHROMIUM to its path)")
  curl -fsS --max-time 5 --unix-socket /var/run/docker.sock http://engine/_ping >/dev/null 2>&1 || missing+=("the Docker engine answering on /var/run/docker.sock")
  for tool in buildah docker-registry htpasswd; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool on PATH")
  done
  [ -x /bin/busybox ] || missing+=("a static busybox at /bin/busybox")
  if [ ${#missing[@]} -eq 0 ]; then say "PostgreSQL, Redis and the Docker engine answer"; exit 0; fi
  say "this is not a Debian-like system; install and start these yourself:"
  for item in "${missing[@]}"; do say "  - $item"; done
  exit 1
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  say "installing PostgreSQL"
  apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1; then
  say "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
fi
pg_isready -q -h 127.0.0.1 || { say "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
if ! psql -h 127.0.0.1 -U postgres -tAc 'select 1' >/dev/null 2>&1; then
  say "PostgreSQL answers but the 'postgres' role cannot log in from 127.0.0.1;"
  say "allow it (trust or a password in DATABASE_URL) in pg_hba.conf"
  exit 1
fi

# Redis
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing Redis"
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/lessongraph.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { say "Redis does not answer on 127.0.0.1:6379"; exit 1; }

# Chromium, driven by Playwright in the browser tests. Playwright's own
# browser download needs the open internet; the distribution's build works.
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  say "installing Chromium"
  apt_install chromium
fi

# Deployments: the Docker engine, the CNCF registry, buildah, htpasswd
# (bcrypt) and a static busybox for the locally made base image. There is
# no systemd here, so dockerd is started in the background by hand.
# Debian's docker.io ships its own client; one already on PATH still works.
deployment_packages=()
command -v dockerd >/dev/null 2>&1 || deployment_packages+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || deployment_packages+=(docker-registry)
command -v buildah >/dev/null 2>&1 || deployment_packages+=(buildah)
command -v htpasswd >/dev/null 2>&1 || deployment_packages+=(apache2-utils)
[ -x /bin/busybox ] || deployment_packages+=(busybox-static)
command -v curl >/dev/null 2>&1 || deployment_packages+=(curl)
if [ ${#deployment_packages[@]} -gt 0 ]; then
  say "installing ${deployment_packages[*]}"
  apt_install "${deployment_packages[@]}"
fi
docker_answers() { curl -fsS --max-time 5 --unix-socket /var/run/docker.sock http://engine/_ping >/dev/null 2>&1; }
if ! docker_answers; then
  say "starting the Docker engine"
  as_root mkdir -p /var/log/docker
  # A session of its own: whatever stops the shell that started it (a
  # terminal closed, a job's process group killed) leaves the engine be.
  as_root setsid sh -c 'nohup dockerd >/var/log/docker/dockerd.log 2>&1 &' </dev/null
  for _ in $(seq 1 60); do docker_answers && break; sleep 1; done
fi
docker_answers || { say "the Docker engine does not answer on /var/run/docker.sock (see /var/log/docker/dockerd.log)"; exit 1; }

say "PostgreSQL and Redis answer on 127.0.0.1; Chromium is at ${CHROMIUM:-/usr/bin/chromium}; the Docker engine answers"
