#!/usr/bin/env bash
# First start of the PostgreSQL container (empty data directory): one database and one login
# role per service (and the console), each owning only its own database (a service never reads another's
# tables). Passwords come from the environment (deploy/compose/.env). On an existing data
# directory this does not run again: add a role by hand (deploy/README.md, "Backups").
set -euo pipefail

for db in orders consultation_routing sla_timer kpi notifier console; do
  var="${db^^}_DB_PASSWORD"
  password="${!var:?$var is not set}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v db="$db" -v password="$password" <<'SQL'
CREATE ROLE :"db" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"db";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
  echo "init-databases: database and role $db created"
done
