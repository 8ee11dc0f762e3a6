-- fundledger: privileges on the ledger's tables, once they exist (README.md, step 3), on the
-- PRIMARY, as the postgres superuser:
--   sudo -u postgres psql -v ON_ERROR_STOP=1 -d fundledger -f grants.sql
-- The replica receives them with the WAL.
--
-- fundledger may read and append, never change or delete: no UPDATE, DELETE or TRUNCATE
-- privilege (the triggers refuse them anyway), and not being the owner it cannot drop or
-- disable those triggers. The append lock (pg_advisory_xact_lock) and the notifications
-- (pg_notify, LISTEN on fundledger_appended) need no privilege.

GRANT USAGE ON SCHEMA public TO fundledger, fundledger_reader;
GRANT SELECT, INSERT ON records TO fundledger;
GRANT SELECT ON fundledger_meta TO fundledger;
GRANT SELECT ON records, fundledger_meta TO fundledger_reader;
