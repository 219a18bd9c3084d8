-- One database per service (database-per-service, DESIGN.md §3). Run once by the postgres
-- image on an empty data volume (/docker-entrypoint-initdb.d); each service then runs its own
-- Alembic migrations at start-up. Names follow ServiceSettings.db_url: everydoor_<service>.
CREATE DATABASE everydoor_registry;
CREATE DATABASE everydoor_eligibility;
CREATE DATABASE everydoor_disbursement;
CREATE DATABASE everydoor_supervision;
