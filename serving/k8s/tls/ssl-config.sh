#!/usr/bin/env bash
# Prints TF Serving's SSLConfig (tensorflow_serving/config/ssl_config.proto) in text
# format, for --ssl_config_file: the server's PEM key and certificate chain and,
# for mutual TLS, the CA that signs the clients' certificates (client_verify: true
# then refuses clients without one).
#
#   ssl-config.sh SERVER_CERT SERVER_KEY [CLIENT_CA] > ssl.config
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 SERVER_CERT SERVER_KEY [CLIENT_CA] > ssl.config" >&2
  exit 2
fi

# A text-format string: each line of the PEM file followed by an escaped newline.
# PEM holds base64, dashes and spaces only; refuse anything that would need quoting.
pem_string() {
  if ! grep -q -- '-----BEGIN ' "$1"; then
    echo "$0: expected a PEM file, received: $1" >&2
    exit 1
  fi
  if LC_ALL=C grep -q '["\\]' "$1"; then
    echo "$0: unexpected quote or backslash in PEM file: $1" >&2
    exit 1
  fi
  awk 'BEGIN { ORS = "" } { sub(/\r$/, ""); print $0 "\\n" }' "$1"
}

key=$(pem_string "$2")
cert=$(pem_string "$1")
printf 'server_key: "%s"\n' "$key"
printf 'server_cert: "%s"\n' "$cert"
if [[ $# -eq 3 ]]; then
  ca=$(pem_string "$3")
  printf 'custom_ca: "%s"\n' "$ca"
  printf 'client_verify: true\n'
fi
