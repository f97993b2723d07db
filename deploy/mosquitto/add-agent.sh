#!/usr/bin/env bash
# Lets one more agent publish: adds its ACL rule and its user to the broker's password file.
#
#   deploy/mosquitto/add-agent.sh SITE AGENT [PASSWD_FILE]
#
# The agent may then publish only under footfall/v1/SITE/AGENT/# (and read its receipts, its site's
# settings and the servers' online notices) and logs in as user AGENT with the
# password printed here (set it as FOOTFALL_MQTT_PASSWORD, or mqtt.password_env, in the agent's config).
# PASSWD_FILE defaults to $MOSQUITTO_PASSWD_FILE, else deploy/mosquitto/prod.passwd. Reload the broker
# afterwards: docker compose kill -s SIGHUP mosquitto
#
# Example:
#   deploy/mosquitto/add-agent.sh mall-north entrance-north
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
site=$1
agent=$2
passwd_file=${3:-${MOSQUITTO_PASSWD_FILE:-$here/prod.passwd}}
for id in "$site" "$agent"; do
    if ! [[ $id =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; then
        echo "error: '$id' is not a valid id (letters, digits, '_', '.', '-'; at most 64)" >&2
        exit 2
    fi
done
acl=$here/acl
if grep -qx "user $agent" "$acl"; then
    echo "error: $acl already has a rule for user $agent" >&2
    exit 2
fi
printf '\nuser %s\ntopic write footfall/v1/%s/%s/#\ntopic read footfall/v1/%s/%s/receipts\ntopic read footfall/v1/%s/settings\ntopic read footfall/v1/_servers/online\n' \
    "$agent" "$site" "$agent" "$site" "$agent" "$site" >>"$acl"
echo "$agent: may publish under footfall/v1/$site/$agent/# ($acl)"
"$here/set-password.sh" "$passwd_file" "$agent"
