#!/bin/bash
# One database and one login role per service (database-per-service, DESIGN.md §3), run once by
# the postgres image on an empty data volume (/docker-entrypoint-initdb.d). Each service's role
# owns its own database and can reach no other: CONNECT is revoked from PUBLIC and granted to the
# owner only, so a compromised service cannot read another's data. The superuser
# (POSTGRES_USER) is for the operator, never for a service. Each service then runs its own
# Alembic migrations at start-up as its role. Passwords come from <SERVICE>_DB_PASSWORD.
set -euo pipefail

for service in registry eligibility disbursement supervision; do
  var="${service^^}_DB_PASSWORD"
  password="${!var:?$var must be set}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
       -v role="$service" -v db="everydoor_$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
SQL
done
