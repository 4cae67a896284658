#!/bin/sh
# Makes the secrets docker-compose.yml reads (deploy/secrets/), once: an
# existing file is kept. The directory is 0700 (only you); the files are 0644
# so the containers' non-root users can read the ones mounted into them.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
chmod 700 secrets
make_secret() {
	if [ ! -s "secrets/$1" ]; then
		printf '%s' "$2" >"secrets/$1"
		echo "made secrets/$1"
	fi
	chmod 644 "secrets/$1"
}
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
make_secret oidc_client_secret "$(rand)"
make_secret s3_access_key "chaperone"
make_secret s3_secret_key "$(rand)"
make_secret demo_password "$(rand | cut -c1-16)"
make_secret keycloak_admin_password "$(rand | cut -c1-24)"
echo "The trial users' first password (they must change it): secrets/demo_password"
