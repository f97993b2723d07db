#!/usr/bin/env bash
# Sets (or adds) one MQTT user's password in a mosquitto password file, hashed with mosquitto_passwd.
#
#   deploy/mosquitto/set-password.sh FILE USER [PASSWORD]
#
# Without PASSWORD a random one is generated and printed once: put it where the client reads it
# (MQTT_URL of the server, FOOTFALL_MQTT_PASSWORD of an agent). Uses the local mosquitto_passwd
# (Debian: apt-get install mosquitto) or, when that is missing, the one in the eclipse-mosquitto image.
#
# Example, a production password file for the compose stack:
#   deploy/mosquitto/set-password.sh deploy/mosquitto/prod.passwd footfall-server
#   deploy/mosquitto/set-password.sh deploy/mosquitto/prod.passwd healthcheck
#   deploy/mosquitto/set-password.sh deploy/mosquitto/prod.passwd entrance-north
#   MOSQUITTO_PASSWD_FILE=./deploy/mosquitto/prod.passwd docker compose up -d
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
file=$1
user=$2
password=${3:-}
if ! [[ $user =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; then
    echo "error: user name '$user' must be letters, digits, '_', '.', '-' (at most 64)" >&2
    exit 2
fi
generated=0
if [ -z "$password" ]; then
    # URL-safe characters only, so the password can go into an mqtt://user:password@host URL as it is.
    password=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    generated=1
fi

mkdir -p "$(dirname "$file")"
touch "$file"
if command -v mosquitto_passwd >/dev/null 2>&1; then
    mosquitto_passwd -b "$file" "$user" "$password"
elif command -v docker >/dev/null 2>&1; then
    dir=$(cd "$(dirname "$file")" && pwd)
    docker run --rm --user "$(id -u):$(id -g)" -v "$dir:/work" eclipse-mosquitto:2 \
        mosquitto_passwd -b "/work/$(basename "$file")" "$user" "$password"
else
    echo "error: neither mosquitto_passwd nor docker is installed (Debian: apt-get install mosquitto)" >&2
    exit 1
fi

if [ "$generated" -eq 1 ]; then
    echo "$user: password set in $file; generated password (shown once): $password"
else
    echo "$user: password set in $file"
fi
