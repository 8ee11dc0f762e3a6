-- fundledger: roles and the database, on the PRIMARY, as the postgres superuser:
--   sudo -u postgres psql -v ON_ERROR_STOP=1 -f roles.sql
-- No password is written here: psql asks for each one (\password), and only its SCRAM hash
-- reaches the server.
--
--   fundledger_owner   owns the database and the ledger's tables, triggers and functions.
--                      Used once, to create the ledger (step 2 in README.md), and for
--                      migrations. Only the owner (or a superuser) can drop or disable the
--                      append-only triggers, so fundledger itself never runs as it.
--   fundledger         what `fundledger serve`, `apply` and `demo` log in as: SELECT and
--                      INSERT on the ledger, nothing else (step 3 below).
--   fundledger_reader  auditors and reporting: `verify`, `export`, `checkpoint`, `prove`,
--                      SELECT only; point it at the replica.
--   replicator         the replica's streaming connection.

CREATE ROLE fundledger_owner LOGIN;
\password fundledger_owner
CREATE ROLE fundledger LOGIN;
\password fundledger
CREATE ROLE fundledger_reader LOGIN;
\password fundledger_reader
CREATE ROLE replicator LOGIN REPLICATION;
\password replicator

CREATE DATABASE fundledger OWNER fundledger_owner ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE fundledger FROM PUBLIC;
GRANT CONNECT ON DATABASE fundledger TO fundledger_owner, fundledger, fundledger_reader;

-- Next: create the ledger as fundledger_owner, then run grants.sql (README.md, steps 2-3).
